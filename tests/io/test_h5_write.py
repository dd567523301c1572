"""Parallel-deflated HDF5 datasets read back as h5py's own gzip datasets do."""

from __future__ import annotations

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.io import h5_write
from napari_stlnmf.io.export import proportions_table, write_result_h5ad


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 5432])
@pytest.mark.parametrize("dtype", ["<i4", "<i8", "<f4", "<f8"])
def test_write_array_round_trips(tmp_path, monkeypatch, n, dtype):
    monkeypatch.setattr(h5_write, "CHUNK", 1000)  # several chunks and a partial last one
    values = (np.random.default_rng(n).random(n) * 1000).astype(dtype)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        h5_write.write_array(f, "x", values, level=1)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        ds = f["x"]
        np.testing.assert_array_equal(ds[:], values)
        if n:
            assert ds.compression == "gzip" and ds.chunks == (min(n, 1000),)


def test_write_array_rejects_2d(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f, pytest.raises(ValueError, match="1-D"):
        h5_write.write_array(f, "x", np.zeros((3, 3)))


def _slide(m=300, n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = sp.random(m, n, density=0.2, format="csr", random_state=seed, dtype=np.float64)
    x.data = np.ceil(x.data * 5).astype(np.float32)
    a = ad.AnnData(
        X=x.astype(np.int32),
        obs=pd.DataFrame(index=[f"s{i}" for i in range(m)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(n)]),
    )
    a.obsm["spatial"] = rng.random((m, 2)) * 1000
    a.uns["spatial"] = {"lib": {"images": {"hires": np.zeros((5, 5, 3), np.uint8)}}}
    a.layers["counts"] = a.X.copy()
    a.raw = a.copy()
    props = rng.dirichlet(np.ones(3), size=m)
    table = proportions_table(a.obs_names, a.obsm["spatial"], np.zeros(m, int), props, list("ABC"))
    return a, table


@pytest.mark.parametrize("dense", [False, True])
def test_result_h5ad_keeps_every_part_of_the_slide(tmp_path, monkeypatch, dense):
    monkeypatch.setattr(h5_write, "CHUNK", 1000)
    a, table = _slide()
    if dense:
        a.X = a.X.toarray()
    before = a.X.copy()
    path = write_result_h5ad(tmp_path / "r.h5ad", a, table, list("ABC"), {"k": 1})
    b = ad.read_h5ad(path)
    got = b.X.toarray() if sp.issparse(b.X) else b.X
    want = before.toarray() if sp.issparse(before) else before
    np.testing.assert_array_equal(got, want)
    assert sp.issparse(b.X) != dense
    np.testing.assert_array_equal(b.layers["counts"].toarray(), a.layers["counts"].toarray())
    assert b.raw is not None and b.raw.shape == a.shape
    np.testing.assert_allclose(b.obsm["stlnmf_proportions"].to_numpy(), table[list("ABC")])
    assert b.uns["stlnmf"]["k"] == 1 and "hires" in b.uns["spatial"]["lib"]["images"]
    # the slide itself is untouched
    assert "stlnmf" not in a.uns and "stlnmf_proportions" not in a.obsm
    assert "stlnmf_region" not in a.obs
    if not dense:
        with h5py.File(path, "r") as f:
            assert f["X"].attrs["encoding-type"] == "csr_matrix"
            assert f["X/indices"].compression == "gzip"
