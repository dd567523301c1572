import numpy as np
import pytest

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
