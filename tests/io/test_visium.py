"""Space Ranger readers: synthetic outs/ folders in real layouts, plus the real test data."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.spatial import read_spatial
from napari_stlnmf.io.tenx import read_10x_h5, read_10x_mtx, write_10x_h5
from napari_stlnmf.io.visium import (
    image_scale,
    read_image,
    read_positions,
    read_scalefactors,
    read_visium,
    spot_diameter,
)
from tests.io.visium_fixtures import GENE_IDS, GENE_NAMES, make_outs

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _library(adata):
    (lib,) = adata.uns["spatial"].values()
    return lib


def _check_basic(adata, fx, in_tissue_only=True):
    keep = fx.in_tissue if in_tissue_only else np.ones(len(fx.barcodes), bool)
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.int32
    np.testing.assert_array_equal(adata.X.toarray(), fx.counts[keep])
    assert list(adata.obs_names) == [b for b, k in zip(fx.barcodes, keep) if k]
    assert list(adata.var_names) == ["Actb", "Gapdh", "Actb-1", "Sox2", "Mbp"]
    assert list(adata.var["gene_symbols"]) == GENE_NAMES
    assert list(adata.var["gene_ids"]) == GENE_IDS
    assert adata.obsm["spatial"].dtype == np.float64
    np.testing.assert_array_equal(adata.obsm["spatial"], fx.xy[keep])
    assert {"in_tissue", "array_row", "array_col"} <= set(adata.obs.columns)


def _check_dots(adata, fx, key):
    img = _library(adata)["images"][key]
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    s = image_scale(adata, key)
    for bc, colour in fx.dots.items():
        x, y = np.round(adata.obsm["spatial"][adata.obs_names.get_loc(bc)] * s).astype(int)
        assert tuple(img[y, x]) == colour, (key, bc)


def test_read_visium_h5_layout(tmp_path):
    fx = make_outs(tmp_path)
    adata = read_visium(fx.outs)
    _check_basic(adata, fx)
    assert list(adata.var["feature_types"].unique()) == ["Gene Expression"]
    assert list(adata.uns["spatial"]) == ["sampleA"]
    lib = _library(adata)
    assert set(lib["images"]) == {"hires", "lowres"}
    assert lib["scalefactors"] == fx.scalefactors
    assert lib["metadata"]["source"] == "spaceranger"
    assert lib["metadata"]["path"] == str(fx.outs)
    _check_dots(adata, fx, "hires")
    _check_dots(adata, fx, "lowres")
    assert image_scale(adata, "fullres") == 1.0
    assert image_scale(adata, "lowres") == 0.08
    assert spot_diameter(adata) == fx.scalefactors["spot_diameter_fullres"]


def test_read_visium_options_and_dispatch(tmp_path):
    fx = make_outs(tmp_path, images=("lowres",))
    adata = read_visium(fx.outs, library_id="s1", load_images=("hires",), in_tissue_only=False)
    _check_basic(adata, fx, in_tissue_only=False)
    assert list(adata.uns["spatial"]) == ["s1"] and _library(adata)["images"] == {}
    # the folder holding outs/, and the spatial/ folder, both find the same outs
    for p in (fx.outs.parent, fx.spatial):
        assert read_spatial(p).n_obs == fx.in_tissue.sum()
    with pytest.raises(InputError, match="unknown image"):
        read_visium(fx.outs, load_images=("medres",))


def test_headerless_positions_list(tmp_path):
    fx = make_outs(tmp_path, positions="list")
    adata = read_visium(fx.outs)
    _check_basic(adata, fx)
    _check_dots(adata, fx, "lowres")


def test_mtx_folder_gz(tmp_path):
    fx = make_outs(tmp_path, matrix="mtx")
    adata = read_visium(fx.outs)
    _check_basic(adata, fx)
    assert "feature_types" in adata.var


def test_h5_v2_layout(tmp_path):
    fx = make_outs(tmp_path, matrix="h5v2")
    _check_basic(read_visium(fx.outs), fx)


def test_h5_without_root_attributes(tmp_path):
    fx = make_outs(tmp_path)
    with h5py.File(fx.outs / "filtered_feature_bc_matrix.h5", "a") as h:
        for k in list(h.attrs):
            del h.attrs[k]
    _check_basic(read_visium(fx.outs), fx)


def test_fullres_tiff(tmp_path):
    fx = make_outs(tmp_path, fullres=True)
    for arg in (fx.fullres, "auto"):
        adata = read_visium(fx.outs, fullres_image=arg)
        assert _library(adata)["metadata"]["source_image_path"] == str(fx.fullres)
        assert _library(adata)["images"]["fullres"].shape == (1000, 1200, 3)
        _check_dots(adata, fx, "fullres")


def test_fullres_tiff_wrong_size(tmp_path):
    import tifffile

    fx = make_outs(tmp_path)
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((300, 250, 3), np.uint8))  # the hires size, not fullres
    with pytest.raises(InputError, match="small.tif.*full-resolution"):
        read_visium(fx.outs, fullres_image=small)
    big = tmp_path / "big.tif"
    tifffile.imwrite(big, np.zeros((1500, 1800, 3), np.uint8))  # covers spots, wrong scale
    with pytest.raises(InputError, match="big.tif.*hires image"):
        read_visium(fx.outs, fullres_image=big)


def test_missing_files(tmp_path):
    fx = make_outs(tmp_path, positions="none")
    with pytest.raises(InputError, match="tissue_positions.csv, tissue_positions_list.csv"):
        read_visium(fx.outs)
    fx = make_outs(tmp_path / "b", matrix="none")
    with pytest.raises(InputError, match="filtered_feature_bc_matrix.h5"):
        read_visium(fx.outs)
    with pytest.raises(InputError, match="no such file or folder"):
        read_visium(tmp_path / "nope")
    with pytest.raises(InputError, match="no spatial/ folder"):
        read_visium(tmp_path)


def test_barcode_mismatch(tmp_path):
    fx = make_outs(tmp_path)
    file = fx.spatial / "tissue_positions.csv"
    pos = pd.read_csv(file)
    pos[~pos.barcode.isin(fx.barcodes[:2])].to_csv(file, index=False)
    with pytest.raises(InputError, match=rf"tissue_positions.csv: 2 of .*{fx.barcodes[0]}"):
        read_visium(fx.outs)


def test_nan_and_negative_coordinates(tmp_path):
    fx = make_outs(tmp_path)
    file = fx.spatial / "tissue_positions.csv"
    pos = pd.read_csv(file)
    pos.loc[pos.barcode == fx.barcodes[0], "pxl_row_in_fullres"] = -5
    pos.to_csv(file, index=False)
    with pytest.raises(InputError, match="negative"):
        read_visium(fx.outs)
    pos.loc[pos.barcode == fx.barcodes[0], "pxl_row_in_fullres"] = np.nan
    pos.to_csv(file, index=False)
    with pytest.raises(InputError, match="NaN"):
        read_visium(fx.outs)


def test_truncated_files(tmp_path):
    fx = make_outs(tmp_path)
    h5 = fx.outs / "filtered_feature_bc_matrix.h5"
    h5.write_bytes(h5.read_bytes()[:600])
    with pytest.raises(InputError, match="filtered_feature_bc_matrix.h5"):
        read_visium(fx.outs)
    png = fx.spatial / "tissue_hires_image.png"
    png.write_bytes(png.read_bytes()[:200])
    with pytest.raises(InputError, match="tissue_hires_image.png"):
        read_image(png)
    csv = fx.spatial / "tissue_positions.csv"
    csv.write_bytes(b"barcode,in_tissue,array_row\nAAA,1,zz\n")
    with pytest.raises(InputError, match="tissue_positions.csv"):
        read_positions(fx.outs)


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"tissue_hires_scalef": 0.25,', "invalid JSON"),
        ('{"tissue_hires_scalef": 0.25, "tissue_lowres_scalef": 0.08}', "spot_diameter_fullres"),
        (
            '{"tissue_hires_scalef": -1, "tissue_lowres_scalef": 0.08, "spot_diameter_fullres": 9}',
            "positive",
        ),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_scalefactors(tmp_path, text, match):
    fx = make_outs(tmp_path)
    (fx.spatial / "scalefactors_json.json").write_text(text)
    with pytest.raises(InputError, match=rf"scalefactors_json.json.*{match}"):
        read_visium(fx.outs)


def test_parquet_needs_pyarrow(tmp_path):
    pytest.importorskip("pandas")
    try:
        import pyarrow  # noqa: F401

        pytest.skip("pyarrow is installed")
    except ImportError:
        pass
    fx = make_outs(tmp_path, positions="none")
    (fx.spatial / "tissue_positions.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError, match="pip install pyarrow"):
        read_visium(fx.outs)


def test_tenx_roundtrip_and_empty(tmp_path):
    counts = sp.random(7, 4, density=0.5, format="csr", random_state=0) * 10
    counts.data = np.round(counts.data)
    file = write_10x_h5(tmp_path / "m.h5", counts, list("abcdefg"), list("1234"), list("WXYZ"))
    m, barcodes, var = read_10x_h5(file)
    np.testing.assert_array_equal(m.toarray(), counts.toarray())
    assert barcodes == list("abcdefg") and list(var["gene_ids"]) == list("1234")
    empty = write_10x_h5(tmp_path / "e.h5", np.zeros((0, 4)), [], list("1234"), list("WXYZ"))
    with pytest.raises(InputError, match="e.h5: empty"):
        read_10x_h5(empty)
    with pytest.raises(InputError, match="not a 10x MTX folder.*matrix.mtx"):
        read_10x_mtx(tmp_path)


def test_dispatcher_errors(tmp_path):
    fx = make_outs(tmp_path)
    with pytest.raises(InputError, match="no such file or folder"):
        read_spatial(tmp_path / "missing.h5ad")
    with pytest.raises(InputError, match="outs/ folder"):
        read_spatial(fx.outs / "filtered_feature_bc_matrix.h5")
    (tmp_path / "counts.csv").write_text("gene,a\nG,1\n")
    with pytest.raises(InputError, match="--coords"):
        read_spatial(tmp_path / "counts.csv")
    (tmp_path / "x.loom").write_text("")
    with pytest.raises(InputError, match="unsupported"):
        read_spatial(tmp_path / "x.loom")


# --- real Space Ranger data, when ../shared is present --------------------------------------


def _shared(name: str) -> Path:
    path = SHARED / name / "outs"
    if not path.is_dir():
        pytest.skip(f"{path} not available")
    return path


def test_real_seurat_anterior():
    outs = _shared("visium_mouse_brain_anterior_seurat_testdata")
    adata = read_visium(outs)
    assert adata.shape == (2695, 100) and adata.X.dtype == np.int32
    assert adata.X.nnz == 50355 and adata.X.sum() == 132231
    assert (adata.obs["in_tissue"] == 1).all()
    lib = _library(adata)
    assert set(lib["images"]) == {"lowres"} and lib["images"]["lowres"].shape == (599, 600, 3)
    grey = lib["images"]["lowres"].mean(axis=2)
    x, y = np.round(adata.obsm["spatial"] * image_scale(adata, "lowres")).astype(int).T
    assert grey[y, x].mean() < 160  # tissue is darker than the glass (~186)
    assert read_spatial(outs.parent).shape == (2695, 100)


def test_real_cytassist_helpers():
    outs = _shared("visium_mouse_brain_cytassist_ffpe_hires_only")
    pos = read_positions(outs)
    assert pos.shape == (4992, 5) and int(pos["in_tissue"].sum()) == 2310
    sf = read_scalefactors(outs)
    assert sf["tissue_hires_scalef"] == pytest.approx(0.05793743)
    img = read_image(outs / "spatial" / "tissue_hires_image.png")
    assert img.shape == (2000, 1872, 3)
    grey = img.mean(axis=2)
    xy = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy() * sf["tissue_hires_scalef"]
    x, y = np.round(xy).astype(int).T
    inside = pos["in_tissue"].to_numpy() == 1
    assert grey[y[inside], x[inside]].mean() < grey[y[~inside], x[~inside]].mean() - 20
    with pytest.raises(InputError, match="no count matrix"):
        read_visium(outs)


def test_scalefactors_json_roundtrip(tmp_path):
    fx = make_outs(tmp_path)
    assert read_scalefactors(fx.spatial / "scalefactors_json.json") == json.loads(
        (fx.spatial / "scalefactors_json.json").read_text()
    )


def test_fullres_tiff_grey_uint16(tmp_path):
    import tifffile

    fx = make_outs(tmp_path)
    grey = np.zeros((1000, 1200), np.uint16)
    grey[500:, :] = 4000
    tifffile.imwrite(tmp_path / "grey.tif", grey)
    img = _library(read_visium(fx.outs, fullres_image=tmp_path / "grey.tif"))["images"]["fullres"]
    assert img.shape == (1000, 1200) and img.dtype == np.uint8
    assert img[0, 0] == 0 and img[-1, -1] == 255
