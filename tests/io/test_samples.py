"""The bundled samples load, agree with their ground truth and stay small."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.regions import read_label_image, read_regions
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
    assert sorted(brain.regions.unique()) == list(range(1, 12))


ANATOMY = {
    1: "cortex",
    2: "fibre_tracts",
    3: "hippocampal_neuropil",
    4: "CA1_layer",
    5: "CA3_layer",
    6: "dentate_granule_layer",
    7: "thalamus",
    8: "ventricle_choroid_plexus",
    9: "striatum",
    10: "hypothalamus",
    11: "amygdala",
}

# the type that must dominate the mean true fraction of each region, and by how much
DOMINANT = {
    "cortex": ("Entorihinal", 0.3),
    "fibre_tracts": ("Oligodendrocyte", 0.45),
    "CA1_layer": ("CA1", 0.45),
    "CA3_layer": ("CA3", 0.45),
    "dentate_granule_layer": ("Denate", 0.45),
    "thalamus": ("Neuron.Slc17a6", 0.35),
    "ventricle_choroid_plexus": ("Choroid", 0.5),
    "striatum": ("Interneuron", 0.4),
}


def test_mouse_brain_anatomical_regions(brain):
    assert brain.region_names == ANATOMY
    region = brain.regions
    sizes = region.value_counts()
    assert (sizes >= 10).all(), sizes  # every anatomical region has spots
    assert sizes[1] == sizes.max()  # cortex is the largest
    means = brain.truth.groupby(region).mean()
    ids = {v: k for k, v in ANATOMY.items()}
    for name, (cell_type, at_least) in DOMINANT.items():
        row = means.loc[ids[name]]
        assert row.idxmax() == cell_type, (name, row.sort_values().tail(3))
        assert row[cell_type] > at_least, (name, row[cell_type])
    # principal hippocampal cells only where the hippocampus is, choroid cells only at the
    # ventricle or beside it, no cortical neurons in the thalamus
    hippocampus = region.isin([ids[n] for n in ANATOMY.values() if "layer" in n or "hipp" in n])
    for cell_type in ("CA1", "CA3", "Denate", "Neurogenesis"):
        assert brain.truth.loc[~hippocampus, cell_type].max() == 0.0, cell_type
    assert (brain.truth.loc[region == ids["thalamus"], "Entorihinal"] == 0).mean() > 0.95
    assert (brain.truth.loc[region == ids["cortex"], "Neuron.Slc17a6"] == 0).mean() > 0.95
    assert (brain.truth.loc[region != ids["ventricle_choroid_plexus"], "Choroid"] > 0).sum() < 30


def test_mouse_brain_label_image_gives_the_regions(brain):
    path = sample_path("mouse_brain")
    labels = read_label_image(path / "anatomy_labels.png")
    assert labels.shape == brain.spatial.uns["spatial"]["mouse_brain"]["images"]["hires"].shape[:2]
    assert set(np.unique(labels)) == set(range(12))
    key = pd.read_csv(path / "region_names.csv")
    assert list(key["region"]) == list(ANATOMY) and list(key["name"]) == list(ANATOMY.values())
    at_centre = read_regions(path / "anatomy_labels.png", brain.spatial)
    labelled = at_centre > 0  # spots over the ventricle lumen or the edge took the nearest
    assert labelled.mean() > 0.9
    np.testing.assert_array_equal(at_centre[labelled], brain.regions.to_numpy()[labelled])


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
    assert hippo.region_names is None
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
