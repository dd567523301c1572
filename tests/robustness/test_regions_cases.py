"""Broken region files: barcode,region tables and painted label images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from napari_stlnmf.io.regions import read_regions
from napari_stlnmf.io.spatial import read_spatial
from tests.io.visium_fixtures import FULLRES_H, FULLRES_W, HIRES, make_outs
from tests.robustness.harness import Case, Cases, check_case, png_bomb_header

CASES = Cases()
HIRES_SHAPE = (round(FULLRES_H * HIRES), round(FULLRES_W * HIRES))


def _csv_case(ctx, path, problem) -> Case:
    """Regions for the hippocampus .h5ad slide."""
    return Case(
        argv=["--spatial", ctx.env.slide, "--reference", ctx.env.ref, "--method", "plainkl"]
        + ["--regions", path],
        needle=path.name,
        problem=problem,
        api=lambda: read_regions(path, ctx.env.slide_adata),
    )


def _image_case(ctx, path, problem) -> Case:
    """A label image for a Space Ranger outs/ folder with hires and lowres images."""
    o = make_outs(ctx.tmp)
    return Case(
        argv=["--spatial", o.outs, "--reference", ctx.env.ref, "--method", "plainkl"]
        + ["--regions", path],
        needle=path.name,
        problem=problem,
        api=lambda: read_regions(path, read_spatial(o.outs)),
    )


def _table(ctx) -> pd.DataFrame:
    a = ctx.env.slide_adata
    return pd.DataFrame({"barcode": a.obs_names, "region": ctx.rng.integers(1, 4, a.n_obs)})


def _labels(ctx, shape=HIRES_SHAPE, dtype=np.uint8) -> np.ndarray:
    return ctx.rng.integers(0, 4, size=shape).astype(dtype)


# --- tables ---------------------------------------------------------------------------
@CASES("regions-csv-missing-spots", n=3)
def _(ctx):
    t = _table(ctx)
    drop = ctx.rng.choice(len(t), size=int(ctx.rng.integers(1, len(t))), replace=False)
    path = ctx.tmp / "regions.csv"
    t.drop(index=drop).to_csv(path, index=False)
    return _csv_case(ctx, path, r"no region for")


@CASES("regions-csv-duplicated-barcodes", n=2)
def _(ctx):
    t = _table(ctx)
    extra = t.iloc[ctx.rng.choice(len(t), size=ctx.k + 1, replace=False)].copy()
    extra["region"] = 9
    path = ctx.tmp / "regions.csv"
    pd.concat([t, extra]).sample(frac=1.0, random_state=ctx.k).to_csv(path, index=False)
    return _csv_case(ctx, path, r"more than once")


@CASES("regions-csv-one-column")
def _(ctx):
    path = ctx.tmp / "regions.csv"
    _table(ctx)[["barcode"]].to_csv(path, index=False)
    return _csv_case(ctx, path, r"two columns|without a barcode and a region")


@CASES("regions-csv-short-row")
def _(ctx):
    path = ctx.tmp / "regions.csv"
    lines = _table(ctx).to_csv(index=False).splitlines()
    i = int(ctx.rng.integers(1, len(lines)))
    lines[i] = lines[i].split(",")[0]
    path.write_text("\n".join(lines) + "\n")
    return _csv_case(ctx, path, r"without a barcode and a region|not a readable")


@CASES("regions-csv-empty")
def _(ctx):
    path = ctx.tmp / "regions.csv"
    path.write_bytes(b"")
    return _csv_case(ctx, path, r"not a readable table")


@CASES("regions-csv-binary-garbage")
def _(ctx):
    path = ctx.tmp / "regions.csv"
    path.write_bytes(b"\xff\xfe\x00" + ctx.rng.bytes(2000))
    return _csv_case(ctx, path, r"not a readable table|two columns|no region")


@CASES("regions-file-missing", n=2)
def _(ctx):
    path = ctx.tmp / ["absent.csv", "absent.tif"][ctx.k]
    return _csv_case(ctx, path, r"not found")


# --- label images ---------------------------------------------------------------------
@CASES("regions-image-wrong-size", n=3)
def _(ctx):
    h, w = HIRES_SHAPE
    shape = [(h + 1, w), (h, w - 7), tuple(int(v) for v in ctx.rng.integers(10, 900, 2))][ctx.k]
    path = ctx.tmp / "labels.tif"
    tifffile.imwrite(path, _labels(ctx, shape))
    return _image_case(ctx, path, r"matches none of the slide's images")


@CASES("regions-image-negative-labels")
def _(ctx):
    lab = _labels(ctx, dtype=np.int16)
    lab[ctx.rng.integers(HIRES_SHAPE[0]), ctx.rng.integers(HIRES_SHAPE[1])] = -1
    path = ctx.tmp / "labels.tif"
    tifffile.imwrite(path, lab)
    return _image_case(ctx, path, r"negative")


@CASES("regions-image-float-labels", n=2)
def _(ctx):
    lab = _labels(ctx, dtype=np.float32)
    lab[ctx.rng.integers(HIRES_SHAPE[0]), ctx.rng.integers(HIRES_SHAPE[1])] = [1.5, np.nan][ctx.k]
    path = ctx.tmp / "labels.tif"
    tifffile.imwrite(path, lab)
    return _image_case(ctx, path, r"integer labels")


@CASES("regions-image-rgb")
def _(ctx):
    path = ctx.tmp / "labels.png"
    Image.fromarray(_labels(ctx, (*HIRES_SHAPE, 3))).save(path)
    return _image_case(ctx, path, r"one 2-D channel")


@CASES("regions-image-corrupt", n=2)
def _(ctx):
    path = ctx.tmp / ["labels.tif", "labels.png"][ctx.k]
    path.write_bytes(ctx.rng.bytes(int(ctx.rng.integers(50, 4000))))
    return _image_case(ctx, path, r"not readable")


@CASES("regions-image-png-claims-huge-size")
def _(ctx):
    path = ctx.tmp / "labels.png"
    side = int(ctx.rng.integers(40_000, 60_000))
    path.write_bytes(png_bomb_header(side, side))
    return _image_case(ctx, path, r"not readable")


@CASES("regions-image-truncated")
def _(ctx):
    path = ctx.tmp / "labels.tif"
    tifffile.imwrite(path, _labels(ctx))
    data = path.read_bytes()
    path.write_bytes(data[: int(ctx.rng.integers(16, len(data) // 2))])
    return _image_case(ctx, path, r"not readable")


@CASES("regions-image-on-slide-without-images")
def _(ctx):
    path = ctx.tmp / "labels.tif"
    tifffile.imwrite(path, _labels(ctx))
    return _csv_case(ctx, path, r"none loaded")


@pytest.mark.parametrize("case_id", CASES.ids)
def test_bad_regions(case_id, env, tmp_path, capsys, monkeypatch):
    check_case(CASES.build(case_id, tmp_path, env, monkeypatch), tmp_path, capsys)


def test_control_label_image_reads(tmp_path):
    o = make_outs(tmp_path)
    path = tmp_path / "labels.tif"
    tifffile.imwrite(path, np.full(HIRES_SHAPE, 2, np.uint8))
    regions = read_regions(path, read_spatial(o.outs))
    assert (regions == 2).all()
