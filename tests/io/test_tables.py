"""Counts + coordinates tables and .h5ad inputs."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.spatial import read_spatial
from napari_stlnmf.io.tables import read_h5ad_spatial, read_tables
from tests.io.visium_fixtures import make_outs

SPOTS = [f"spot{i}" for i in range(5)]
GENES = ["G1", "G2", "G3"]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(rng.integers(0, 9, size=(5, 3)), index=SPOTS, columns=GENES)
    coords = pd.DataFrame(
        {"barcode": SPOTS[::-1], "x": [10.0, 20, 30, 40, 50], "y": [5.0, 4, 3, 2, 1]}
    )
    return counts, coords


def _expected_xy(coords):
    return coords.set_index("barcode").loc[SPOTS, ["x", "y"]].to_numpy()


def _check(adata, counts, coords):
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.int32
    np.testing.assert_array_equal(adata.X.toarray(), counts.to_numpy())
    assert list(adata.obs_names) == SPOTS and list(adata.var_names) == GENES
    assert list(adata.var["gene_symbols"]) == GENES
    assert adata.obsm["spatial"].dtype == np.float64
    np.testing.assert_array_equal(adata.obsm["spatial"], _expected_xy(coords))
    (lib,) = adata.uns["spatial"].values()
    assert lib["images"] == {} and lib["metadata"]["source"] == "tables"


@pytest.mark.parametrize("transpose", [False, True])
def test_orientation_detected(tmp_path, data, transpose):
    counts, coords = data
    (counts.T if transpose else counts).to_csv(tmp_path / "counts.csv")
    coords.to_csv(tmp_path / "coords.csv", index=False)
    adata = read_tables(tmp_path / "counts.csv", tmp_path / "coords.csv")
    _check(adata, counts, coords)
    assert read_spatial(tmp_path / "counts.csv", coords=tmp_path / "coords.csv").shape == (5, 3)


def test_explicit_orientation_tsv_and_column_names(tmp_path, data):
    counts, coords = data
    counts.T.to_csv(tmp_path / "counts.tsv", sep="\t")
    coords = coords.rename(columns={"barcode": "Spot_ID", "x": "imagecol", "y": "imagerow"})
    coords.insert(0, "n", range(5))  # barcode column found by name, not position
    coords.to_csv(tmp_path / "coords.txt", sep="\t", index=False)
    adata = read_tables(tmp_path / "counts.tsv", tmp_path / "coords.txt", "genes_x_spots")
    np.testing.assert_array_equal(adata.X.toarray(), counts.to_numpy())
    expected = coords.set_index("Spot_ID").loc[SPOTS, ["imagecol", "imagerow"]].to_numpy()
    np.testing.assert_array_equal(adata.obsm["spatial"], expected)
    with pytest.raises(InputError, match="have no coordinates"):
        read_tables(tmp_path / "counts.tsv", tmp_path / "coords.txt", "spots_x_genes")


def test_spaceranger_positions_as_coords(tmp_path):
    fx = make_outs(tmp_path)
    pos = fx.positions
    inside = pos.barcode[pos.in_tissue == 1].tolist()
    pd.DataFrame(np.ones((len(inside), 2), int), index=inside, columns=["A", "B"]).to_csv(
        tmp_path / "c.csv"
    )
    adata = read_tables(tmp_path / "c.csv", fx.spatial / "tissue_positions.csv")
    expected = pos.set_index("barcode").loc[inside, ["pxl_col_in_fullres", "pxl_row_in_fullres"]]
    np.testing.assert_array_equal(adata.obsm["spatial"], expected.to_numpy())
    assert (adata.obs["in_tissue"] == 1).all()


def test_missing_coords(tmp_path, data):
    counts, coords = data
    counts.to_csv(tmp_path / "counts.csv")
    coords.iloc[1:].to_csv(tmp_path / "coords.csv", index=False)
    with pytest.raises(InputError, match=r"coords.csv: 1 of 5 spots .*'spot4'"):
        read_tables(tmp_path / "counts.csv", tmp_path / "coords.csv")
    coords.rename(columns={"x": "u"}).to_csv(tmp_path / "noxy.csv", index=False)
    with pytest.raises(InputError, match="noxy.csv: no coordinate columns"):
        read_tables(tmp_path / "counts.csv", tmp_path / "noxy.csv")


def test_orientation_undecidable(tmp_path, data):
    counts, coords = data
    counts.to_csv(tmp_path / "counts.csv")
    coords.assign(barcode=[f"other{i}" for i in range(5)]).to_csv(
        tmp_path / "coords.csv", index=False
    )
    with pytest.raises(InputError, match="pass orientation"):
        read_tables(tmp_path / "counts.csv", tmp_path / "coords.csv")


def test_duplicates_and_bad_values(tmp_path, data):
    counts, coords = data
    coords.to_csv(tmp_path / "coords.csv", index=False)
    dup_spot = counts.rename(index={"spot1": "spot0"})
    dup_spot.to_csv(tmp_path / "a.csv")
    with pytest.raises(InputError, match="a.csv: duplicated row names 'spot0'"):
        read_tables(tmp_path / "a.csv", tmp_path / "coords.csv", "spots_x_genes")
    counts.rename(columns={"G2": "G1"}).to_csv(tmp_path / "b.csv")
    with pytest.raises(InputError, match="b.csv: duplicated column names 'G1'"):
        read_tables(tmp_path / "b.csv", tmp_path / "coords.csv")
    coords.assign(barcode=["spot0"] * 5).to_csv(tmp_path / "dc.csv", index=False)
    with pytest.raises(InputError, match="dc.csv: duplicated barcodes 'spot0'"):
        read_tables(tmp_path / "b.csv", tmp_path / "dc.csv")
    (counts - 3).to_csv(tmp_path / "neg.csv")
    with pytest.raises(InputError, match="neg.csv: counts has negative"):
        read_tables(tmp_path / "neg.csv", tmp_path / "coords.csv")
    (counts / 7).to_csv(tmp_path / "frac.csv")
    with pytest.raises(InputError, match="frac.csv: counts has non-integer"):
        read_tables(tmp_path / "frac.csv", tmp_path / "coords.csv")


# --- h5ad ----------------------------------------------------------------------------------


def _adata(counts, coords):
    a = ad.AnnData(X=counts.to_numpy().astype(np.float32))
    a.obs_names, a.var_names = SPOTS, GENES
    a.obsm["spatial"] = _expected_xy(coords)
    return a


def test_h5ad_with_obsm_spatial(tmp_path, data):
    counts, coords = data
    a = _adata(counts, coords)
    a.uns["spatial"] = {"lib": {"images": {}, "scalefactors": {"spot_diameter_fullres": 3.0}}}
    a.write_h5ad(tmp_path / "a.h5ad")
    b = read_spatial(tmp_path / "a.h5ad")
    assert sp.isspmatrix_csr(b.X)
    np.testing.assert_array_equal(b.X.toarray(), counts.to_numpy())
    np.testing.assert_array_equal(b.obsm["spatial"], _expected_xy(coords))
    assert b.uns["spatial"]["lib"]["scalefactors"]["spot_diameter_fullres"] == 3.0


def test_h5ad_xy_columns_and_missing(tmp_path, data):
    counts, coords = data
    a = _adata(counts, coords)
    del a.obsm["spatial"]
    a.obs["X"], a.obs["Y"] = _expected_xy(coords).T
    a.write_h5ad(tmp_path / "xy.h5ad")
    b = read_h5ad_spatial(tmp_path / "xy.h5ad")
    np.testing.assert_array_equal(b.obsm["spatial"], _expected_xy(coords))
    assert list(b.uns["spatial"]) == ["xy"] and b.uns["spatial"]["xy"]["images"] == {}
    del a.obs["X"], a.obs["Y"]
    a.write_h5ad(tmp_path / "none.h5ad")
    with pytest.raises(InputError, match=r"none.h5ad: no spot coordinates.*obsm\['spatial'\]"):
        read_h5ad_spatial(tmp_path / "none.h5ad")
    a.obsm["spatial"] = np.full((5, 2), np.nan)
    a.write_h5ad(tmp_path / "nan.h5ad")
    with pytest.raises(InputError, match="nan.h5ad: .*NaN"):
        read_h5ad_spatial(tmp_path / "nan.h5ad")


def test_h5ad_normalised_x_uses_counts_layer(tmp_path, data):
    counts, coords = data
    a = _adata(counts, coords)
    a.layers["counts"] = sp.csr_matrix(counts.to_numpy())
    a.X = np.log1p(a.X / a.X.sum(axis=1, keepdims=True) * 1e4)
    a.write_h5ad(tmp_path / "norm.h5ad")
    b = read_h5ad_spatial(tmp_path / "norm.h5ad")
    np.testing.assert_array_equal(b.X.toarray(), counts.to_numpy())
    del a.layers["counts"]
    a.write_h5ad(tmp_path / "onlynorm.h5ad")
    with pytest.raises(InputError, match="onlynorm.h5ad: X has non-integer"):
        read_h5ad_spatial(tmp_path / "onlynorm.h5ad")
    (tmp_path / "bad.h5ad").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="bad.h5ad"):
        read_h5ad_spatial(tmp_path / "bad.h5ad")
