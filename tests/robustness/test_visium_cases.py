"""Broken Space Ranger ``outs/`` folders: matrix, positions, scale factors, images."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.spatial import read_spatial
from tests.io.visium_fixtures import GENE_IDS, GENE_NAMES, make_outs
from tests.robustness.harness import Case, Cases, check_case, png_bomb_header

CASES = Cases()
H5 = "filtered_feature_bc_matrix.h5"
POS = "tissue_positions.csv"
SF = "scalefactors_json.json"


def _outs(ctx, **kw):
    o = make_outs(ctx.tmp, **kw)
    return o


def _case(ctx, o, needle, problem, **kw) -> Case:
    argv = ["--spatial", o.outs, "--reference", ctx.env.ref, "--method", "plainkl"]
    return Case(
        argv=argv + kw.pop("extra", []),
        needle=needle,
        problem=problem,
        api=kw.pop("api", lambda: read_spatial(o.outs)),
        **kw,
    )


def _cut(path, rng, lo: float = 0.05, hi: float = 0.95, at: int | None = None) -> int:
    data = path.read_bytes()
    n = at if at is not None else int(rng.integers(int(lo * len(data)), int(hi * len(data))))
    path.write_bytes(data[:n])
    return n


def _write_h5(path, data, indices, indptr, shape, barcodes, ids=None, names=None):
    """A v3 10x HDF5 matrix written as is (no checks), genes x spots CSC."""
    ids = GENE_IDS if ids is None else ids
    names = GENE_NAMES if names is None else names
    path.unlink(missing_ok=True)
    with h5py.File(path, "w") as h:
        g = h.create_group("matrix")
        g["barcodes"] = np.array([b.encode() for b in barcodes], dtype="S")
        g["data"] = data
        g["indices"] = np.asarray(indices, dtype=np.int64)
        g["indptr"] = np.asarray(indptr, dtype=np.int64)
        g["shape"] = np.asarray(shape, dtype=np.int32)
        f = g.create_group("features")
        f["id"] = np.array([s.encode() for s in ids], dtype="S")
        f["name"] = np.array([s.encode() for s in names], dtype="S")
        f["feature_type"] = np.array([b"Gene Expression"] * len(ids), dtype="S")


def _rewrite_h5(o, data=None, barcodes=None):
    """The fixture's matrix, rewritten with other data values or barcodes."""
    m = sp.csc_matrix(o.counts.T)  # genes x spots
    values = m.data if data is None else data(m.data)
    bcs = list(o.barcodes) if barcodes is None else barcodes
    _write_h5(o.outs / H5, values, m.indices, m.indptr, m.shape, bcs)


# --- the count matrix -----------------------------------------------------------------
@CASES("h5-truncated", n=5)
def _(ctx):
    o = _outs(ctx)
    _cut(o.outs / H5, ctx.rng)
    return _case(ctx, o, H5, r"truncated|corrupt")


@CASES("h5-truncated-superblock")
def _(ctx):
    o = _outs(ctx)
    _cut(o.outs / H5, ctx.rng, at=int(ctx.rng.integers(1, 64)))
    return _case(ctx, o, H5, r"truncated|corrupt")


@CASES("h5-random-bytes")
def _(ctx):
    o = _outs(ctx)
    (o.outs / H5).write_bytes(ctx.rng.bytes(4096))
    return _case(ctx, o, H5, r"truncated|corrupt")


@CASES("h5-not-a-10x-matrix")
def _(ctx):
    o = _outs(ctx)
    (o.outs / H5).unlink()
    with h5py.File(o.outs / H5, "w") as h:
        h["something"] = np.arange(10)
    return _case(ctx, o, H5, r"not a 10x matrix")


@CASES("h5-nan-data")
def _(ctx):
    o = _outs(ctx)

    def nan(d):
        d = d.astype(np.float64)
        d[ctx.rng.integers(len(d))] = np.nan
        return d

    _rewrite_h5(o, data=nan)
    return _case(ctx, o, H5, r"NaN")


@CASES("h5-inf-data")
def _(ctx):
    o = _outs(ctx)

    def inf(d):
        d = d.astype(np.float32)
        d[ctx.rng.integers(len(d))] = np.inf
        return d

    _rewrite_h5(o, data=inf)
    return _case(ctx, o, H5, r"infinite")


@CASES("h5-negative-counts")
def _(ctx):
    o = _outs(ctx)

    def neg(d):
        d = d.astype(np.int32)
        d[ctx.rng.integers(len(d))] = -int(ctx.rng.integers(1, 100))
        return d

    _rewrite_h5(o, data=neg)
    return _case(ctx, o, H5, r"negative")


@CASES("h5-string-data")
def _(ctx):
    o = _outs(ctx)
    _rewrite_h5(o, data=lambda d: np.array([str(v).encode() for v in d], dtype="S"))
    return _case(ctx, o, H5, r"numeric|corrupt")


@CASES("h5-zero-spots")
def _(ctx):
    o = _outs(ctx)
    _write_h5(o.outs / H5, np.zeros(0, np.int32), [], [0], (len(GENE_IDS), 0), [])
    return _case(ctx, o, H5, r"empty")


@CASES("h5-zero-genes")
def _(ctx):
    o = _outs(ctx)
    n = len(o.barcodes)
    _write_h5(o.outs / H5, np.zeros(0, np.int32), [], [0] * (n + 1), (0, n), o.barcodes, [], [])
    return _case(ctx, o, H5, r"empty")


@CASES("h5-duplicated-barcodes", n=2)
def _(ctx):
    o = _outs(ctx)
    bcs = list(o.barcodes)
    i, j = ctx.rng.choice(len(bcs), size=2, replace=False)
    bcs[j] = bcs[i]
    _rewrite_h5(o, barcodes=bcs)
    return _case(ctx, o, H5, r"duplicated")


@CASES("h5-indices-out-of-range")
def _(ctx):
    o = _outs(ctx)
    m = sp.csc_matrix(o.counts.T)
    idx = m.indices.astype(np.int64)
    idx[ctx.rng.integers(len(idx))] = len(GENE_IDS) + int(ctx.rng.integers(0, 1000))
    _write_h5(o.outs / H5, m.data, idx, m.indptr, m.shape, o.barcodes)
    return _case(ctx, o, H5, r"corrupt")


@CASES("h5-shape-mismatch")
def _(ctx):
    o = _outs(ctx)
    m = sp.csc_matrix(o.counts.T)
    _write_h5(o.outs / H5, m.data, m.indices, m.indptr, m.shape, o.barcodes[:-1])
    return _case(ctx, o, H5, r"does not match")


@CASES("matrix-missing")
def _(ctx):
    o = _outs(ctx)
    (o.outs / H5).unlink()
    return _case(ctx, o, "outs", r"no count matrix")


@CASES("mtx-truncated", n=2)
def _(ctx):
    o = _outs(ctx, matrix="mtx")
    _cut(o.outs / "filtered_feature_bc_matrix" / "matrix.mtx.gz", ctx.rng, 0.2, 0.9)
    return _case(ctx, o, "matrix.mtx.gz", r"truncated|corrupt")


@CASES("mtx-gzip-corrupt")
def _(ctx):
    o = _outs(ctx, matrix="mtx")
    f = o.outs / "filtered_feature_bc_matrix" / "matrix.mtx.gz"
    data = bytearray(f.read_bytes())
    for i in ctx.rng.integers(20, len(data) - 10, size=8):
        data[i] ^= 0xFF
    f.write_bytes(bytes(data))
    return _case(ctx, o, "matrix.mtx.gz", r"truncated|corrupt")


# --- positions ------------------------------------------------------------------------
def _positions(o) -> pd.DataFrame:
    return pd.read_csv(o.spatial / POS)


def _write_pos(o, df) -> None:
    df.to_csv(o.spatial / POS, index=False)


def _matrix_rows(o, df) -> np.ndarray:
    """Row numbers of ``df`` whose barcode is a (kept, in-tissue) matrix barcode."""
    keep = set(np.asarray(o.barcodes)[o.in_tissue])
    return np.flatnonzero(df["barcode"].isin(keep).to_numpy())


@CASES("positions-duplicated-barcodes", n=2)
def _(ctx):
    o = _outs(ctx)
    df = _positions(o)
    row = df.iloc[[ctx.rng.choice(_matrix_rows(o, df))]].copy()
    row["pxl_row_in_fullres"] += 7
    _write_pos(o, pd.concat([df, row]).sample(frac=1.0, random_state=int(ctx.rng.integers(99))))
    return _case(ctx, o, POS, r"duplicated")


@CASES("positions-missing-barcodes", n=3)
def _(ctx):
    o = _outs(ctx)
    df = _positions(o)
    rows = _matrix_rows(o, df)
    drop = ctx.rng.choice(rows, size=int(ctx.rng.integers(1, len(rows))), replace=False)
    _write_pos(o, df.drop(index=drop))
    return _case(ctx, o, POS, r"no position")


@CASES("positions-all-out-of-tissue")
def _(ctx):
    o = _outs(ctx)
    df = _positions(o)
    df["in_tissue"] = 0
    _write_pos(o, df)
    return _case(ctx, o, POS, r"in tissue")


@CASES("positions-outside-image", n=3)
def _(ctx):
    o = _outs(ctx)
    df = _positions(o)
    row = ctx.rng.choice(_matrix_rows(o, df))
    col = ["pxl_row_in_fullres", "pxl_col_in_fullres"][ctx.k % 2]
    df[col] = df[col].astype(float)
    df.loc[row, col] = df[col].max() * float(ctx.rng.uniform(3, 50))
    _write_pos(o, df)
    return _case(ctx, o, POS, r"outside")


@CASES("positions-all-scaled-off-image")
def _(ctx):
    """Coordinates in hires pixels ... times 40: every spot far outside the image."""
    o = _outs(ctx)
    df = _positions(o)
    df[["pxl_row_in_fullres", "pxl_col_in_fullres"]] *= 40
    _write_pos(o, df)
    return _case(ctx, o, POS, r"outside")


@CASES("positions-nan-coordinates", n=2)
def _(ctx):
    o = _outs(ctx)
    df = _positions(o)
    col = ["pxl_row_in_fullres", "pxl_col_in_fullres"][ctx.k]
    df[col] = df[col].astype(float)
    df.loc[ctx.rng.choice(_matrix_rows(o, df)), col] = np.nan
    _write_pos(o, df)
    return _case(ctx, o, POS, r"NaN")


@CASES("positions-negative-coordinates")
def _(ctx):
    o = _outs(ctx)
    df = _positions(o)
    df.loc[ctx.rng.choice(_matrix_rows(o, df)), "pxl_col_in_fullres"] = -50
    _write_pos(o, df)
    return _case(ctx, o, POS, r"negative")


@CASES("positions-non-numeric")
def _(ctx):
    o = _outs(ctx)
    df = _positions(o).astype({"in_tissue": object})
    df.loc[ctx.rng.choice(_matrix_rows(o, df)), "in_tissue"] = "yes"
    _write_pos(o, df)
    return _case(ctx, o, POS, r"non-numeric")


@CASES("positions-missing-column")
def _(ctx):
    o = _outs(ctx)
    _write_pos(o, _positions(o).drop(columns=["array_col"]))
    return _case(ctx, o, POS, r"missing columns")


@CASES("positions-truncated", n=4)
def _(ctx):
    """Cut anywhere before the last row of a matrix barcode: some spot loses its row."""
    o = _outs(ctx)
    f = o.spatial / POS
    lines = f.read_bytes().splitlines(keepends=True)
    df = _positions(o)
    last = _matrix_rows(o, df).max() + 1  # line number (after the header)
    start_of_last = sum(len(x) for x in lines[:last])
    _cut(f, ctx.rng, at=int(ctx.rng.integers(len(lines[0]), start_of_last + 1)))
    return _case(ctx, o, POS, r"no position|NaN|truncated|corrupt")


@CASES("positions-truncated-header")
def _(ctx):
    o = _outs(ctx)
    f = o.spatial / POS
    _cut(f, ctx.rng, at=int(ctx.rng.integers(3, len(f.read_bytes().splitlines()[0]))))
    return _case(ctx, o, POS, r"missing columns|no position|truncated|corrupt")


@CASES("positions-empty-file")
def _(ctx):
    o = _outs(ctx)
    (o.spatial / POS).write_bytes(b"")
    return _case(ctx, o, POS, r"truncated|corrupt|empty")


@CASES("positions-binary-garbage")
def _(ctx):
    o = _outs(ctx)
    (o.spatial / POS).write_bytes(ctx.rng.bytes(2000))
    return _case(ctx, o, POS, r"truncated|corrupt")


@CASES("positions-missing-file")
def _(ctx):
    o = _outs(ctx)
    (o.spatial / POS).unlink()
    return _case(ctx, o, "spatial", r"no spot positions")


@CASES("positions-list-wrong-column-count", n=4)
def _(ctx):
    """Headerless Space Ranger 1 list with 4, 5, 7 or 8 columns instead of 6."""
    o = _outs(ctx, positions="list")
    f = o.spatial / "tissue_positions_list.csv"
    df = pd.read_csv(f, header=None)
    n = [4, 5, 7, 8][ctx.k]
    if n < 6:
        df = df.iloc[:, :n]
    else:
        for j in range(n - 6):
            df[6 + j] = ctx.rng.integers(0, 1000, size=len(df))
    df.to_csv(f, index=False, header=False)
    return _case(ctx, o, "tissue_positions_list.csv", r"column")


@CASES("spatial-folder-missing")
def _(ctx):
    o = _outs(ctx)
    for p in o.spatial.iterdir():
        p.unlink()
    o.spatial.rmdir()
    return _case(ctx, o, "outs", r"no spatial")


# --- scale factors --------------------------------------------------------------------
@CASES("scalefactors-truncated", n=3)
def _(ctx):
    o = _outs(ctx)
    _cut(o.spatial / SF, ctx.rng, 0.02, 0.98)
    return _case(ctx, o, SF, r"invalid JSON")


@CASES("scalefactors-not-json", n=2)
def _(ctx):
    o = _outs(ctx)
    junk = [b"tissue_hires_scalef = 0.25\n", ctx.rng.bytes(300)][ctx.k]
    (o.spatial / SF).write_bytes(junk)
    return _case(ctx, o, SF, r"invalid JSON")


@CASES("scalefactors-not-an-object")
def _(ctx):
    o = _outs(ctx)
    (o.spatial / SF).write_text("[0.25, 0.08, 90.0]")
    return _case(ctx, o, SF, r"JSON object")


@CASES("scalefactors-missing-key", n=3)
def _(ctx):
    o = _outs(ctx)
    sf = dict(o.scalefactors)
    key = ["tissue_hires_scalef", "tissue_lowres_scalef", "spot_diameter_fullres"][ctx.k]
    del sf[key]
    (o.spatial / SF).write_text(json.dumps(sf))
    return _case(ctx, o, [SF, key], r"missing keys")


@CASES("scalefactors-bad-value", n=5)
def _(ctx):
    o = _outs(ctx)
    key = str(ctx.rng.choice(["tissue_hires_scalef", "tissue_lowres_scalef"]))
    bad = ["0", "-0.25", '"0.25"', "NaN", "null"][ctx.k]
    text = json.dumps(o.scalefactors).replace(f'"{key}": {o.scalefactors[key]}', f'"{key}": {bad}')
    (o.spatial / SF).write_text(text)
    return _case(ctx, o, [SF, key], r"positive number")


@CASES("scalefactors-missing-file")
def _(ctx):
    o = _outs(ctx)
    (o.spatial / SF).unlink()
    return _case(ctx, o, "spatial", r"no scale factors")


# --- images ---------------------------------------------------------------------------
@CASES("image-corrupt-png", n=2)
def _(ctx):
    o = _outs(ctx)
    name = ["tissue_hires_image.png", "tissue_lowres_image.png"][ctx.k]
    (o.spatial / name).write_bytes(ctx.rng.bytes(int(ctx.rng.integers(10, 5000))))
    return _case(ctx, o, name, r"cannot read image")


@CASES("image-truncated-png", n=3)
def _(ctx):
    o = _outs(ctx)
    name = "tissue_hires_image.png"
    _cut(o.spatial / name, ctx.rng, 0.01, 0.7)
    return _case(ctx, o, name, r"cannot read image")


@CASES("image-bit-flipped-png")
def _(ctx):
    """A PNG whose compressed pixel data was damaged."""
    o = _outs(ctx)
    f = o.spatial / "tissue_hires_image.png"
    data = bytearray(f.read_bytes())
    start = data.index(b"IDAT") + 8
    for i in ctx.rng.integers(start, start + 200, size=16):
        data[i] ^= 0x5A
    f.write_bytes(bytes(data))
    return _case(ctx, o, f.name, r"cannot read image")


@CASES("image-png-claims-huge-size")
def _(ctx):
    """A decompression-bomb header (billions of pixels): refused, not a crash."""
    o = _outs(ctx)
    side = int(ctx.rng.integers(40_000, 60_000))
    (o.spatial / "tissue_hires_image.png").write_bytes(png_bomb_header(side, side))
    return _case(ctx, o, "tissue_hires_image.png", r"cannot read image")


@CASES("fullres-image-corrupt")
def _(ctx):
    o = _outs(ctx)
    tif = ctx.tmp / "fullres.tif"
    tif.write_bytes(b"II*\x00" + ctx.rng.bytes(3000))
    return _case(
        ctx,
        o,
        "fullres.tif",
        r"cannot read TIFF",
        extra=["--fullres-image", tif],
        api=lambda: read_spatial(o.outs, fullres_image=tif),
    )


@CASES("fullres-image-missing")
def _(ctx):
    o = _outs(ctx)
    tif = ctx.tmp / "nowhere.tif"
    return _case(
        ctx,
        o,
        "nowhere.tif",
        r"no such file",
        extra=["--fullres-image", tif],
        api=lambda: read_spatial(o.outs, fullres_image=tif),
    )


@CASES("fullres-image-wrong-size")
def _(ctx):
    import tifffile

    o = _outs(ctx)
    tif = ctx.tmp / "small.tif"
    tifffile.imwrite(tif, ctx.rng.integers(0, 255, size=(120, 150, 3), dtype=np.uint8))
    return _case(
        ctx,
        o,
        "small.tif",
        r"not the full-resolution image",
        extra=["--fullres-image", tif],
        api=lambda: read_spatial(o.outs, fullres_image=tif),
    )


@pytest.mark.parametrize("case_id", CASES.ids)
def test_bad_space_ranger_outs(case_id, env, tmp_path, capsys, monkeypatch):
    check_case(CASES.build(case_id, tmp_path, env, monkeypatch), tmp_path, capsys)


def test_control_outs_reads(tmp_path):
    """The unbroken fixture reads: the cases above fail for their own reason."""
    o = make_outs(tmp_path)
    assert read_spatial(o.outs).n_obs == int(o.in_tissue.sum())
    o2 = make_outs(tmp_path / "list", positions="list")
    assert read_spatial(o2.outs).n_obs == int(o2.in_tissue.sum())
