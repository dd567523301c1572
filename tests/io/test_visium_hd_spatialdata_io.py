"""spatialdata-io's Visium HD reader and ours read the same bins; its zarr store reads
as our bins too.

spatialdata-io comes with the ``spatialdata`` extra, which CI installs; without it these
tests skip. Passed with spatialdata-io 0.7.1 / spatialdata 0.7.3 / anndata 0.12 on
2026-12-04 (2, 8 and 16 µm). Segmented cells are not compared: the test folder's cells
include a MultiPolygon, which spatialdata-io 0.7.1 does not take.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.visium_hd import read_visium_hd
from tests.extras import optional
from tests.io.hd_folder import make_hd_outs, scalefactors, write_feature_slice

sdio = optional("spatialdata_io")


@pytest.mark.parametrize("size", [2, 8, 16])
def test_spatialdata_io_reads_the_same_bins(tmp_path, size):
    hd = make_hd_outs(tmp_path, sizes=(2, 8, 16))
    write_feature_slice(hd.outs, np.eye(3), np.eye(3))
    # Space Ranger also writes the run's scale factors in outs/spatial/
    (hd.outs / "spatial" / "scalefactors_json.json").write_text(json.dumps(scalefactors(2)))
    ours = read_visium_hd(hd.outs, bin_size=size, in_tissue_only=False)
    sdata = sdio.visium_hd(
        hd.outs, dataset_id="hdsample", bin_size=size, load_segmentations_only=False
    )
    theirs = sdata.tables[f"square_{size:03d}um"]
    # spatialdata-io keeps every barcode of the filtered matrix; we keep the same when
    # in_tissue_only=False (in_tissue_only=True drops the extra off-tissue rows)
    assert sorted(theirs.obs_names) == sorted(ours.obs_names)
    theirs = theirs[list(ours.obs_names)]
    assert list(theirs.var["gene_ids"]) == list(ours.var["gene_ids"])
    a, b = ours.X, theirs.X
    np.testing.assert_array_equal(
        a.toarray() if sp.issparse(a) else a, b.toarray() if sp.issparse(b) else b
    )
    np.testing.assert_allclose(ours.obsm["spatial"], np.asarray(theirs.obsm["spatial"], float))
    np.testing.assert_array_equal(ours.obs["array_row"], theirs.obs["array_row"])
    np.testing.assert_array_equal(ours.obs["array_col"], theirs.obs["array_col"])


@pytest.mark.parametrize("size", [8, 16])
def test_a_spatialdata_io_store_reads_as_our_bins(tmp_path, size):
    """spatialdata-io's Visium HD store, written to zarr and read back by --spatial:
    the same bins, counts and positions as our reader of the outs/ folder."""
    from napari_stlnmf.io.spatial import read_spatial

    hd = make_hd_outs(tmp_path, sizes=(2, 8, 16))
    write_feature_slice(hd.outs, np.eye(3), np.eye(3))
    (hd.outs / "spatial" / "scalefactors_json.json").write_text(json.dumps(scalefactors(2)))
    ours = read_visium_hd(hd.outs, bin_size=size, in_tissue_only=False)
    sdata = sdio.visium_hd(hd.outs, dataset_id="hd", bin_size=[8, 16])
    store = tmp_path / "hd.zarr"
    sdata.write(store)
    theirs = read_spatial(store, bin_size=size if size != 8 else None)
    assert sorted(theirs.obs_names) == sorted(ours.obs_names)
    theirs = theirs[list(ours.obs_names)]
    np.testing.assert_array_equal(theirs.X.toarray(), ours.X.toarray())
    np.testing.assert_allclose(theirs.obsm["spatial"], ours.obsm["spatial"], atol=1e-6)
