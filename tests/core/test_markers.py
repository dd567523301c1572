import numpy as np
import pytest
import scipy.sparse as sp

from napari_stlnmf.core.markers import select_markers


def test_markers_pick_type_specific_genes_and_skip_flat_and_faint_ones():
    rng = np.random.default_rng(0)
    k, n_markers = 4, 30
    flat = rng.uniform(5, 10, size=(50, 1)) * np.ones((1, k))
    blocks = []
    for t in range(k):
        b = np.full((n_markers, k), 1.0)
        b[:, t] = rng.uniform(20, 40, size=n_markers)
        blocks.append(b)
    faint = np.full((10, k), 0.001)
    faint[:, 0] = 0.05  # large fold change but below min_expression
    profiles = np.vstack([flat, *blocks, faint])
    idx = select_markers(profiles, n_per_type=10, min_expression=0.1)
    assert idx.size == 4 * 10
    assert idx.min() >= 50 and idx.max() < 50 + k * n_markers
    # 10 per type, each from its own block
    per_block = np.bincount((idx - 50) // n_markers, minlength=k)
    assert per_block.tolist() == [10] * k


def test_too_few_markers_fall_back_to_all_genes():
    profiles = np.ones((30, 3))
    assert np.array_equal(select_markers(profiles), np.arange(30))


def test_bad_shapes():
    with pytest.raises(ValueError, match="types"):
        select_markers(np.ones((5, 1)))


def _panel(rng, k=4, n_markers=30, n_flat=400):
    """Profiles with ``n_markers`` markers per type and many flat, highly expressed genes."""
    flat = rng.uniform(5, 10, size=(n_flat, 1)) * np.ones((1, k))
    blocks = []
    for t in range(k):
        b = np.full((n_markers, k), 0.5)
        b[:, t] = rng.uniform(20, 40, size=n_markers)
        blocks.append(b)
    return np.vstack([flat, *blocks])


@pytest.mark.parametrize("depth, expect_all", [(20_000.0, False), (150.0, True)])
def test_gene_choice_follows_the_depth_of_the_spots(depth, expect_all):
    from napari_stlnmf.core.markers import select_genes_for_depth

    rng = np.random.default_rng(1)
    profiles = _panel(rng)
    mix = rng.dirichlet(np.ones(4), size=200)
    mean = mix @ profiles.T
    counts = rng.poisson(mean / mean.sum(1, keepdims=True) * depth)
    idx = select_genes_for_depth(profiles, sp.csr_matrix(counts), n_per_type=10)
    markers = select_markers(profiles, n_per_type=10)
    if expect_all:
        # markers hold ~25 % of a shallow spot's ~150 counts: every gene is kept
        assert np.array_equal(idx, np.arange(profiles.shape[0]))
    else:
        # deep spots hold > 500 counts on the markers: the marker set is enough
        assert np.array_equal(idx, markers)


def test_gene_choice_stops_once_markers_hold_most_counts():
    from napari_stlnmf.core.markers import select_genes_for_depth

    rng = np.random.default_rng(2)
    profiles = _panel(rng, n_flat=3)  # almost a marker panel
    counts = rng.poisson(np.full((50, profiles.shape[0]), 0.5))
    idx = select_genes_for_depth(profiles, sp.csr_matrix(counts), n_per_type=30)
    assert np.array_equal(idx, select_markers(profiles, n_per_type=30))


def test_gene_choice_keeps_within_a_nonzero_budget():
    """On a shallow slide every gene would be kept; a work budget stops the growth at the
    largest marker set whose nonzeros fit, and the first set is kept whatever its size."""
    from napari_stlnmf.core.markers import select_genes_for_depth

    rng = np.random.default_rng(1)
    profiles = _panel(rng)
    mix = rng.dirichlet(np.ones(4), size=200)
    mean = mix @ profiles.T
    counts = sp.csr_matrix(rng.poisson(mean / mean.sum(1, keepdims=True) * 150))
    gene_nnz = np.bincount(counts.indices, minlength=counts.shape[1])
    unlimited = select_genes_for_depth(profiles, counts, n_per_type=10)
    assert unlimited.size == profiles.shape[0]
    sets = [select_markers(profiles, n_per_type=10 * f) for f in (1, 2, 4)]
    budget = int(gene_nnz[sets[1]].sum())  # the x2 set fits exactly, the x4 one not
    assert gene_nnz[sets[2]].sum() > budget
    got = select_genes_for_depth(profiles, counts, n_per_type=10, max_nonzeros=budget)
    assert np.array_equal(got, sets[1])
    assert gene_nnz[got].sum() <= budget
    tiny = select_genes_for_depth(profiles, counts, n_per_type=10, max_nonzeros=1)
    assert np.array_equal(tiny, sets[0])
    # a budget larger than every gene's nonzeros changes nothing
    roomy = select_genes_for_depth(profiles, counts, n_per_type=10, max_nonzeros=10**9)
    assert np.array_equal(roomy, unlimited)
