"""Broken ``.h5ad`` slides and counts + coordinates tables."""

from __future__ import annotations

import gzip
import json
import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.spatial import read_spatial
from tests.robustness.harness import Case, Cases, check_case

CASES = Cases()
# anndata's own warnings on the broken files (the CLI shows them as "stlnmf: warning:")
pytestmark = [
    pytest.mark.filterwarnings("ignore:Observation names are not unique"),
    pytest.mark.filterwarnings("ignore:Variable names are not unique"),
    pytest.mark.filterwarnings("ignore:Element '/matrix' was written without encoding"),
]


def _slide(ctx) -> ad.AnnData:
    """A copy of the hippocampus slide (313 spots x 276 genes, obsm + obs x/y)."""
    a = ctx.env.slide_adata.copy()
    a.uns = {}
    return a


def _write(ctx, a: ad.AnnData, name: str = "slide.h5ad"):
    path = ctx.tmp / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata on duplicated names
        a.write_h5ad(path)
    return path


def _h5ad_case(ctx, path, problem, ok=False) -> Case:
    return Case(
        argv=["--spatial", path, "--reference", ctx.env.ref, "--method", "plainkl"],
        needle=path.name,
        problem=problem,
        api=lambda: read_spatial(path),
        ok=ok,
    )


def _cut(path, rng, lo=0.02, hi=0.98, at=None):
    data = path.read_bytes()
    n = at if at is not None else int(rng.integers(int(lo * len(data)), int(hi * len(data))))
    path.write_bytes(data[:n])


def _dense(a) -> np.ndarray:
    return a.X.toarray() if sp.issparse(a.X) else np.asarray(a.X)


# --- .h5ad slides ---------------------------------------------------------------------
@CASES("h5ad-truncated", n=4)
def _(ctx):
    path = _write(ctx, _slide(ctx))
    _cut(path, ctx.rng)
    return _h5ad_case(ctx, path, r"truncated|corrupt")


@CASES("h5ad-random-bytes")
def _(ctx):
    path = ctx.tmp / "slide.h5ad"
    path.write_bytes(ctx.rng.bytes(5000))
    return _h5ad_case(ctx, path, r"truncated|corrupt")


@CASES("h5ad-plain-hdf5")
def _(ctx):
    """An HDF5 file that is not an AnnData."""
    path = ctx.tmp / "slide.h5ad"
    with h5py.File(path, "w") as h:
        h["matrix"] = ctx.rng.integers(0, 5, size=(10, 4))
    return _h5ad_case(ctx, path, r"truncated|corrupt|empty|coordinates")


@CASES("h5ad-no-coordinates")
def _(ctx):
    a = _slide(ctx)
    del a.obsm["spatial"]
    a.obs = a.obs.drop(columns=["x", "y"])
    return _h5ad_case(ctx, _write(ctx, a), r"no spot coordinates")


@CASES("h5ad-obsm-spatial-nan", n=2)
def _(ctx):
    a = _slide(ctx)
    xy = np.asarray(a.obsm["spatial"], dtype=np.float64).copy()
    xy[ctx.rng.integers(a.n_obs), ctx.k] = [np.nan, np.inf][ctx.k]
    a.obsm["spatial"] = xy
    return _h5ad_case(ctx, _write(ctx, a), r"NaN or infinite")


@CASES("h5ad-obsm-spatial-wrong-shape", n=2)
def _(ctx):
    a = _slide(ctx)
    xy = np.asarray(a.obsm["spatial"])
    a.obsm["spatial"] = xy[:, :1] if ctx.k == 0 else np.hstack([xy, xy[:, :1]])
    return _h5ad_case(ctx, _write(ctx, a), r"shape")


@CASES("h5ad-obs-xy-nan")
def _(ctx):
    a = _slide(ctx)
    del a.obsm["spatial"]
    a.obs["x"] = a.obs["x"].astype(float)
    a.obs.iloc[int(ctx.rng.integers(a.n_obs)), a.obs.columns.get_loc("x")] = np.nan
    return _h5ad_case(ctx, _write(ctx, a), r"NaN or infinite")


@CASES("h5ad-obs-xy-text")
def _(ctx):
    a = _slide(ctx)
    del a.obsm["spatial"]
    a.obs["x"] = [f"p{i}" for i in range(a.n_obs)]
    return _h5ad_case(ctx, _write(ctx, a), r"not numeric")


@CASES("h5ad-negative-counts")
def _(ctx):
    a = _slide(ctx)
    x = _dense(a).astype(np.int64)
    x[ctx.rng.integers(a.n_obs), ctx.rng.integers(a.n_vars)] = -3
    a.X = sp.csr_matrix(x)
    return _h5ad_case(ctx, _write(ctx, a), r"negative")


@CASES("h5ad-nan-counts", n=2)
def _(ctx):
    a = _slide(ctx)
    x = _dense(a).astype(np.float32)
    x[ctx.rng.integers(a.n_obs), ctx.rng.integers(a.n_vars)] = [np.nan, np.inf][ctx.k]
    a.X = sp.csr_matrix(x) if ctx.k == 0 else x
    return _h5ad_case(ctx, _write(ctx, a), r"NaN or infinite")


@CASES("h5ad-log-normalised-counts")
def _(ctx):
    a = _slide(ctx)
    x = _dense(a).astype(np.float64)
    a.X = sp.csr_matrix(np.log1p(x / np.maximum(x.sum(1, keepdims=True), 1) * 1e4))
    return _h5ad_case(ctx, _write(ctx, a), r"non-integer")


@CASES("h5ad-duplicated-barcodes", n=2)
def _(ctx):
    a = _slide(ctx)
    names = list(a.obs_names)
    for _ in range(ctx.k + 1):
        i, j = ctx.rng.choice(a.n_obs, size=2, replace=False)
        names[j] = names[i]
    a.obs_names = names
    return _h5ad_case(ctx, _write(ctx, a), r"duplicated")


@CASES("h5ad-duplicated-genes-made-unique")
def _(ctx):
    """Duplicated gene symbols are made unique (Gene, Gene-1), as for Space Ranger's own
    duplicated symbols: accepted, not an error."""
    a = _slide(ctx)
    names = list(a.var_names)
    i, j = ctx.rng.choice(a.n_vars, size=2, replace=False)
    names[j] = names[i]
    a.var_names = names
    path = _write(ctx, a)
    case = _h5ad_case(ctx, path, "", ok=True)
    case.api = lambda: _check_unique(read_spatial(path), names[i])
    return case


def _check_unique(a, gene):
    assert a.var_names.is_unique and f"{gene}-1" in a.var_names


@CASES("h5ad-zero-spots")
def _(ctx):
    return _h5ad_case(ctx, _write(ctx, _slide(ctx)[:0].copy()), r"empty")


@CASES("h5ad-zero-genes")
def _(ctx):
    return _h5ad_case(ctx, _write(ctx, _slide(ctx)[:, :0].copy()), r"empty")


@CASES("h5ad-missing-file")
def _(ctx):
    return _h5ad_case(ctx, ctx.tmp / "absent.h5ad", r"no such file")


# --- counts + coordinates tables ------------------------------------------------------
N_SPOTS, N_GENES = 24, 15


def _tables(ctx, counts_name="counts.csv"):
    """A small spots x genes counts CSV and a barcode,x,y coordinates CSV."""
    rng = ctx.rng
    spots = [f"spot{i:03d}" for i in range(N_SPOTS)]
    genes = [f"Gene{i}" for i in range(N_GENES)]
    counts = pd.DataFrame(rng.integers(0, 9, size=(N_SPOTS, N_GENES)), index=spots, columns=genes)
    coords = pd.DataFrame(
        {"barcode": spots, "x": rng.uniform(0, 500, N_SPOTS), "y": rng.uniform(0, 500, N_SPOTS)}
    )
    return counts, coords, ctx.tmp / counts_name, ctx.tmp / "coords.csv"


def _save(counts, coords, cpath, kpath):
    if counts is not None:
        counts.to_csv(cpath)
    if coords is not None:
        coords.to_csv(kpath, index=False)


def _table_case(ctx, cpath, kpath, needle, problem) -> Case:
    return Case(
        argv=["--spatial", cpath, "--coords", kpath, "--reference", ctx.env.ref],
        needle=needle,
        problem=problem,
        api=lambda: read_spatial(cpath, coords=kpath),
    )


def _edit_line(path, rng, edit):
    """Apply ``edit(fields) -> fields`` to one random data line of a CSV."""
    lines = path.read_text().splitlines()
    i = int(rng.integers(1, len(lines)))
    lines[i] = ",".join(edit(lines[i].split(","), rng))
    path.write_text("\n".join(lines) + "\n")


@CASES("table-ragged-long-row", n=2)
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    _save(c, k, cp, kp)
    _edit_line(cp, ctx.rng, lambda f, r: f + ["7"] * int(r.integers(1, 4)))
    return _table_case(ctx, cp, kp, cp.name, r"truncated|corrupt|fields")


@CASES("table-ragged-short-row", n=2)
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    _save(c, k, cp, kp)
    _edit_line(cp, ctx.rng, lambda f, r: f[: int(r.integers(2, len(f) - 1))])
    return _table_case(ctx, cp, kp, cp.name, r"NaN|missing|fields")


@CASES("table-non-numeric-cell", n=2)
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    c = c.astype(object)
    c.iloc[int(ctx.rng.integers(N_SPOTS)), int(ctx.rng.integers(N_GENES))] = ["abc", "1,5"][ctx.k]
    _save(c, k, cp, kp)
    return _table_case(ctx, cp, kp, cp.name, r"non-numeric|truncated|corrupt")


@CASES("table-nan-cell", n=2)
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    c = c.astype(float)
    c.iloc[int(ctx.rng.integers(N_SPOTS)), int(ctx.rng.integers(N_GENES))] = [np.nan, np.inf][ctx.k]
    _save(c, k, cp, kp)
    return _table_case(ctx, cp, kp, cp.name, r"NaN or infinite")


@CASES("table-negative-count")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    c.iloc[int(ctx.rng.integers(N_SPOTS)), int(ctx.rng.integers(N_GENES))] = -1
    _save(c, k, cp, kp)
    return _table_case(ctx, cp, kp, cp.name, r"negative")


@CASES("table-fractional-count")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    c = c.astype(float)
    c.iloc[int(ctx.rng.integers(N_SPOTS)), int(ctx.rng.integers(N_GENES))] = 2.5
    _save(c, k, cp, kp)
    return _table_case(ctx, cp, kp, cp.name, r"non-integer")


@CASES("coords-missing-spots", n=3)
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    drop = ctx.rng.choice(N_SPOTS, size=int(ctx.rng.integers(1, N_SPOTS // 2)), replace=False)
    _save(c, k.drop(index=drop), cp, kp)
    return _table_case(ctx, cp, kp, [kp.name, cp.name], r"no coordinates")


@CASES("table-duplicated-barcodes")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    names = list(c.index)
    i, j = ctx.rng.choice(N_SPOTS, size=2, replace=False)
    names[j] = names[i]
    c.index = names
    _save(c, k, cp, kp)
    return _table_case(ctx, cp, kp, cp.name, r"duplicated row names")


@CASES("coords-duplicated-barcodes")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    extra = k.iloc[[int(ctx.rng.integers(N_SPOTS))]]
    _save(c, pd.concat([k, extra]), cp, kp)
    return _table_case(ctx, cp, kp, kp.name, r"duplicated barcodes")


@CASES("table-duplicated-genes", n=2)
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    genes = list(c.columns)
    i, j = ctx.rng.choice(N_GENES, size=2, replace=False)
    genes[j] = genes[i]
    c.columns = genes
    if ctx.k == 1:  # genes x spots orientation
        c = c.T
    _save(c, k, cp, kp)
    return _table_case(ctx, cp, kp, cp.name, r"duplicated (row|column) names")


@CASES("table-empty-file")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    _save(None, k, cp, kp)
    cp.write_bytes(b"")
    return _table_case(ctx, cp, kp, cp.name, r"empty|truncated|corrupt")


@CASES("table-header-only")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    _save(c.iloc[:0], k, cp, kp)
    return _table_case(ctx, cp, kp, cp.name, r"empty")


@CASES("coords-empty-file")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    _save(c, None, cp, kp)
    kp.write_bytes(b"")
    return _table_case(ctx, cp, kp, kp.name, r"empty|truncated|corrupt")


@CASES("coords-nan")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    k.loc[int(ctx.rng.integers(N_SPOTS)), "y"] = np.nan
    _save(c, k, cp, kp)
    return _table_case(ctx, cp, kp, kp.name, r"NaN or infinite")


@CASES("coords-no-xy-columns")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    _save(c, k.rename(columns={"x": "col", "y": "row"}), cp, kp)
    return _table_case(ctx, cp, kp, kp.name, r"no coordinate columns")


@CASES("table-binary-garbage")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    _save(None, k, cp, kp)
    cp.write_bytes(b"\xff\xfe" + ctx.rng.bytes(3000))
    return _table_case(ctx, cp, kp, cp.name, r"truncated|corrupt")


@CASES("table-gzip-truncated", n=2)
def _(ctx):
    c, k, cp, kp = _tables(ctx, "counts.csv.gz")
    _save(None, k, cp, kp)
    with gzip.open(cp, "wt") as fh:
        c.to_csv(fh)
    _cut(cp, ctx.rng, 0.3, 0.95)
    return _table_case(ctx, cp, kp, cp.name, r"truncated|corrupt")


@CASES("table-gzip-corrupt")
def _(ctx):
    c, k, cp, kp = _tables(ctx, "counts.csv.gz")
    _save(None, k, cp, kp)
    with gzip.open(cp, "wt") as fh:
        c.to_csv(fh)
    data = bytearray(cp.read_bytes())
    for i in ctx.rng.integers(20, len(data) - 10, size=8):
        data[i] ^= 0xFF
    cp.write_bytes(bytes(data))
    return _table_case(ctx, cp, kp, cp.name, r"truncated|corrupt")


@CASES("table-without-coords")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    _save(c, k, cp, kp)
    return Case(
        argv=["--spatial", cp, "--reference", ctx.env.ref],
        needle=[cp.name, "--coords"],
        problem=r"needs spot coordinates",
        api=lambda: read_spatial(cp),
    )


@CASES("coords-missing-file")
def _(ctx):
    c, k, cp, kp = _tables(ctx)
    _save(c, None, cp, kp)
    return _table_case(ctx, cp, kp, kp.name, r"no such file")


@CASES("table-orientation-ambiguous")
def _(ctx):
    """No row or column name is a barcode of the coordinates."""
    c, k, cp, kp = _tables(ctx)
    k["barcode"] = [f"other{i}" for i in range(N_SPOTS)]
    _save(c, k, cp, kp)
    return _table_case(ctx, cp, kp, cp.name, r"which axis")


@CASES("spatial-unsupported-file-type")
def _(ctx):
    path = ctx.tmp / "slide.xlsx"
    path.write_bytes(ctx.rng.bytes(100))
    return _h5ad_case(ctx, path, r"unsupported file type")


@CASES("spatial-bare-10x-h5")
def _(ctx):
    path = ctx.tmp / "filtered_feature_bc_matrix.h5"
    path.write_bytes(ctx.rng.bytes(100))
    return _h5ad_case(ctx, path, r"no spot positions")


@CASES("spatial-json-instead-of-slide")
def _(ctx):
    path = ctx.tmp / "slide.json"
    path.write_text(json.dumps({"spots": 3}))
    return _h5ad_case(ctx, path, r"unsupported file type")


@pytest.mark.parametrize("case_id", CASES.ids)
def test_bad_slide_file(case_id, env, tmp_path, capsys, monkeypatch):
    check_case(CASES.build(case_id, tmp_path, env, monkeypatch), tmp_path, capsys)


def test_control_tables_read(env, tmp_path, monkeypatch):
    """The unbroken tables read (the cases above fail for their own reason)."""
    from tests.robustness.harness import Ctx

    ctx = Ctx("control", 0, np.random.default_rng(0), tmp_path, env, monkeypatch)
    c, k, cp, kp = _tables(ctx)
    _save(c, k, cp, kp)
    a = read_spatial(cp, coords=kp)
    assert a.shape == (N_SPOTS, N_GENES)
