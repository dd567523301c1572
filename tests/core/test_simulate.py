"""The training-slide simulator."""

import numpy as np

from napari_stlnmf.core.simulate import (
    SimulationSettings,
    demo_reference,
    hex_grid,
    simulate_slide,
)


def test_same_seed_same_slide_and_valid_truth():
    ref = demo_reference(n_types=5, n_genes=80, cells_per_type=20, seed=1)
    coords = hex_grid(10, 12)
    regions = (coords[:, 0] > coords[:, 0].mean()).astype(int)
    a = simulate_slide(ref, coords, regions, seed=7)
    b = simulate_slide(ref, coords, regions, seed=7)
    c = simulate_slide(ref, coords, regions, seed=8)
    assert (a.counts != b.counts).nnz == 0
    np.testing.assert_array_equal(a.proportions, b.proportions)
    assert not np.array_equal(a.proportions, c.proportions)
    np.testing.assert_allclose(a.proportions.sum(1), 1.0)
    assert (a.cells.sum(1) >= 1).all()
    np.testing.assert_allclose(a.proportions, a.cells / a.cells.sum(1, keepdims=True))


def test_regions_differ_and_neighbours_are_similar():
    ref = demo_reference(n_types=6, n_genes=60, cells_per_type=10, seed=2)
    coords = hex_grid(30, 30)
    regions = (coords[:, 0] > coords[:, 0].mean()).astype(int)
    settings = SimulationSettings(mean_cells=30, concentration=0.3)
    s = simulate_slide(ref, coords, regions, seed=3, settings=settings)
    p = s.proportions
    between = np.abs(p[regions == 0].mean(0) - p[regions == 1].mean(0)).sum()
    assert between > 0.2
    # spatial smoothness: nearby spots are more alike than random pairs
    order = np.argsort(coords[:, 1] * 1e6 + coords[:, 0])
    near = np.abs(np.diff(p[order], axis=0)).sum(1).mean()
    far = np.abs(p - p[np.random.default_rng(0).permutation(len(p))]).sum(1).mean()
    assert near < far


def test_count_models_and_depth():
    ref = demo_reference(n_types=4, n_genes=50, cells_per_type=10, seed=4)
    coords = hex_grid(8, 8)
    deep = simulate_slide(ref, coords, seed=1, settings=SimulationSettings(depth=1.0))
    shallow = simulate_slide(ref, coords, seed=1, settings=SimulationSettings(depth=0.05))
    assert shallow.counts.sum() < 0.1 * deep.counts.sum()
    nb = simulate_slide(ref, coords, seed=1, settings=SimulationSettings(count_model="nb"))
    assert nb.counts.shape == (64, 50) and nb.counts.sum() > 0
    assert np.all(nb.counts.data >= 0) and np.all(nb.counts.data == np.round(nb.counts.data))


def test_region_prior_centres_compositions():
    ref = demo_reference(n_types=3, n_genes=40, cells_per_type=10, seed=5)
    coords = hex_grid(20, 20)
    prior = np.array([[0.9, 0.05, 0.05]])
    settings = SimulationSettings(prior_strength=200.0, field_strength=0.1, mean_cells=50)
    s = simulate_slide(ref, coords, None, seed=2, settings=settings, region_prior=prior)
    np.testing.assert_allclose(s.proportions.mean(0), prior[0], atol=0.06)


def test_split_cells_is_disjoint():
    ref = demo_reference(n_types=3, n_genes=30, cells_per_type=10, seed=6)
    a, b = ref.split_cells(0.5, np.random.default_rng(0))
    assert a.cells.shape[0] + b.cells.shape[0] == ref.cells.shape[0]
    assert a.cell_types == b.cell_types == ref.cell_types
    assert not np.allclose(a.signatures, b.signatures)


def test_auto_prior_reads_a_fixed_subset_of_large_regions(monkeypatch):
    """prior="auto" fits at most PRIOR_SPOTS_PER_REGION spots per region (a 650k-bin slide
    would otherwise cost more than training), always the same ones, and the region means
    stay what the whole slide gives."""
    import scipy.sparse as sp

    from napari_stlnmf.core import training_data as td
    from napari_stlnmf.core.simulate import demo_reference

    ref = demo_reference(n_types=3, n_genes=60, cells_per_type=20, seed=0)
    rng = np.random.default_rng(0)
    m = 3000
    region_idx = (np.arange(m) >= 2000).astype(np.int64)  # 2,000 and 1,000 spots
    mix = np.where(region_idx[:, None] == 0, [0.7, 0.2, 0.1], [0.1, 0.1, 0.8])
    x = sp.csr_matrix(rng.poisson(mix @ ref.signatures.T * 3.0))
    full = td.region_prior("auto", ref, x, region_idx, "cpu")
    monkeypatch.setattr(td, "PRIOR_SPOTS_PER_REGION", 400)
    rows = td._prior_rows(region_idx, 2)
    assert np.bincount(region_idx[rows]).tolist() == [400, 400]
    assert np.array_equal(rows, td._prior_rows(region_idx, 2))
    sub = td.region_prior("auto", ref, x, region_idx, "cpu")
    np.testing.assert_allclose(sub, full, atol=0.02)
    assert np.argmax(sub[0]) == 0 and np.argmax(sub[1]) == 2
    assert td._prior_rows(region_idx[:300], 2) is None  # small slides: every spot
