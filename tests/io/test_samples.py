"""The bundled samples load, agree with their ground truth and stay small."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.samples import SAMPLES, load_sample, sample_path


@pytest.fixture(scope="module")
def brain():
    return load_sample("mouse_brain")


@pytest.fixture(scope="module")
def hippo():
    return load_sample("hippocampus")


def test_mouse_brain_shapes_and_genes(brain):
    s = brain.spatial
    assert s.n_obs == 2310
    assert sp.issparse(s.X) and np.issubdtype(s.X.dtype, np.integer)
    assert list(brain.reference.var_names) == list(s.var_names)
    assert list(s.var["gene_ids"]) == list(s.var_names)  # symbols used as ids
    assert s.obsm["spatial"].shape == (2310, 2)
    assert brain.label_key == "cell_type"
    assert brain.attribution


def test_mouse_brain_truth(brain):
    t = brain.truth
    assert list(t.index) == list(brain.spatial.obs_names)
    np.testing.assert_allclose(t.sum(axis=1).to_numpy(), 1.0, atol=1e-12)
    assert (t.to_numpy() >= 0).all()
    assert (brain.n_cells >= 1).all() and list(brain.n_cells.index) == list(t.index)
    counts = t.to_numpy() * brain.n_cells.to_numpy()[:, None]
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    assert list(brain.regions.index) == list(t.index)
    assert sorted(brain.regions.unique()) == [1, 2, 3, 4, 5]


def test_mouse_brain_reference_disjoint_from_spot_pool(brain):
    ref = brain.reference
    pool = (sample_path("mouse_brain") / "spot_pool_cells.txt").read_text().split()
    assert len(pool) == len(set(pool)) == 255
    assert not set(pool) & set(ref.obs_names)
    per_type = ref.obs["cell_type"].value_counts()
    assert set(per_type.index) == set(brain.truth.columns)
    assert (per_type == 15).all() and len(per_type) == 17
    assert sp.issparse(ref.X) and ref.X.dtype == np.int32


def test_mouse_brain_spots_lie_on_tissue(brain):
    lib = brain.spatial.uns["spatial"]["mouse_brain"]
    img = lib["images"]["hires"].astype(float)
    grey = img.mean(axis=2) if img.ndim == 3 else img
    xy = np.rint(brain.spatial.obsm["spatial"] * lib["scalefactors"]["tissue_hires_scalef"])
    x, y = xy[:, 0].astype(int), xy[:, 1].astype(int)
    assert (x >= 0).all() and (x < grey.shape[1]).all()
    assert (y >= 0).all() and (y < grey.shape[0]).all()
    glass = np.concatenate([grey[:40].ravel(), grey[-40:].ravel()]).mean()
    assert grey[y, x].mean() < glass - 25


def test_hippocampus(hippo):
    assert hippo.spatial.n_obs == 313
    assert len(hippo.spatial.var_names.intersection(hippo.reference.var_names)) == 124
    assert hippo.spatial.obsm["spatial"].shape == (313, 2)
    assert hippo.reference.obs["cell_type"].nunique() == 17
    assert hippo.truth is None and hippo.regions is None and hippo.n_cells is None
    assert hippo.attribution


def test_unknown_sample_lists_names():
    with pytest.raises(InputError) as e:
        load_sample("nope")
    for name in SAMPLES:
        assert name in str(e.value)


def test_samples_folder_small():
    root = sample_path("mouse_brain").parent
    files = [f for f in root.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    total = sum(f.stat().st_size for f in files)
    assert total < 5_000_000, total
