"""Reference signatures and the per-gene weights of the KL data term."""

import numpy as np
import pytest
import scipy.sparse as sp

from napari_stlnmf.core.reference import Reference


def test_fano_weights_by_hand():
    # type a: 4 cells; type b: 3 cells; type c: 1 cell (no within-type variance: left out)
    counts = np.array(
        [
            # g0  g1  g2
            [0, 3, 0],
            [0, 3, 0],
            [0, 3, 0],
            [8, 3, 0],
            [1, 5, 0],
            [1, 5, 0],
            [4, 5, 0],
            [50, 0, 0],
        ],
        dtype=float,
    )
    labels = ["a"] * 4 + ["b"] * 3 + ["c"]
    ref = Reference.from_cells(counts, labels, ["g0", "g1", "g2"])
    # g0: squared deviations a: 3*2^2 + 6^2 = 48, b: 2*1^2 + 2^2 = 6; sum of cell means 4*2 + 3*2
    np.testing.assert_allclose(ref.gene_weights[0], 14.0 / 54.0)
    assert ref.gene_weights[1] == 1.0  # constant within types: Fano 0, floored at 1
    assert ref.gene_weights[2] == 1.0  # never expressed
    sub = ref.subset_genes(["g2", "g0"])
    np.testing.assert_allclose(sub.gene_weights, ref.gene_weights[[2, 0]])


def test_poisson_cells_get_weights_near_one_and_bursty_genes_less():
    rng = np.random.default_rng(0)
    means = rng.uniform(0.5, 20, size=(3, 40))
    labels = np.repeat([0, 1, 2], 400)
    counts = rng.poisson(means[labels]).astype(float)
    # gene 0 bursty: negative binomial with dispersion 1 (Fano 1 + mean)
    counts[:, 0] = rng.poisson(rng.gamma(1.0, means[labels, 0]))
    ref = Reference.from_cells(counts, labels.astype(str), [f"g{i}" for i in range(40)])
    assert np.all(ref.gene_weights[1:] > 0.85)
    assert ref.gene_weights[0] < 0.3


def test_signature_references_weigh_every_gene_equally_and_bad_weights_fail():
    sig = np.array([[1.0, 2.0], [3.0, 0.5]])
    ref = Reference.from_signatures(sig, ["g0", "g1"], ["a", "b"])
    assert ref.gene_weights is None
    np.testing.assert_array_equal(ref.weights, [1.0, 1.0])
    with pytest.raises(ValueError, match="gene_weights must be 2 positive"):
        Reference(sig, ["g0", "g1"], ["a", "b"], gene_weights=np.array([1.0, 0.0]))


def test_library_sizes_default_given_checked_and_kept():
    sig = np.array([[1.0, 2.0], [3.0, 0.5], [0.0, 1.5]])
    genes, types = ["g0", "g1", "g2"], ["a", "b"]
    ref = Reference.from_signatures(sig, genes, types)
    np.testing.assert_array_equal(ref.library_sizes, [4.0, 4.0])  # default: column sums
    ref = Reference.from_signatures(sig, genes, types, library_sizes=[40, 10])
    np.testing.assert_array_equal(ref.library_sizes, [40.0, 10.0])
    assert ref.library_sizes.dtype == np.float64
    # over all genes: subsetting the genes keeps them
    np.testing.assert_array_equal(ref.subset_genes(["g1"]).library_sizes, [40.0, 10.0])
    cells = Reference.from_cells(np.ones((4, 3)), list("aabb"), genes, library_sizes=[7, 8])
    np.testing.assert_array_equal(cells.library_sizes, [7.0, 8.0])
    for bad in ([1.0], [1.0, 0.0], [1.0, np.nan], [1.0, -2.0], ["x", "y"], [[1.0, 2.0]]):
        with pytest.raises(ValueError, match="library_sizes must be 2 positive finite numbers"):
            Reference(sig, genes, types, library_sizes=bad)


def test_depth_adapted_weights_thin_the_fano_factor():
    from napari_stlnmf.core.reference import depth_adapted_weights
    from napari_stlnmf.core.training_data import depth_ratio

    w = np.array([1.0, 0.5, 0.1])  # Fano factors 1, 2, 10
    assert np.allclose(depth_adapted_weights(w, 1.0), w)
    assert np.allclose(depth_adapted_weights(w, 0.0), 1.0)
    # thinning to p leaves a Fano factor 1 + (F - 1) p
    assert np.allclose(depth_adapted_weights(w, 0.25), 1 / np.array([1.0, 1.25, 3.25]))
    sig = np.array([[50.0, 10.0], [50.0, 90.0]])  # 100 counts per cell of each type
    x = sp.csr_matrix(np.array([[200.0, 200.0], [100.0, 100.0], [0.0, 0.0]]))
    # median spot (empty ones left out): 300 counts, against 8 cells of 100 counts
    assert depth_ratio(x, sig, cells=8) == pytest.approx(300 / 800)
    assert depth_ratio(x * 100, sig) == 1.0  # capped: spots deeper than whole cells


def test_depth_adapted_weights_match_the_fano_factor_of_thinned_cells():
    """Counts with Fano factor F, binomially thinned to p, have Fano 1 + (F - 1) p."""
    from napari_stlnmf.core.reference import depth_adapted_weights

    rng = np.random.default_rng(0)
    theta, mu, p = 2.0, 40.0, 0.1
    cells = rng.negative_binomial(theta, theta / (theta + mu), size=200_000)
    fano = cells.var() / cells.mean()
    thinned = rng.binomial(cells, p)
    expected = depth_adapted_weights(np.array([1 / fano]), p)[0]
    assert thinned.var() / thinned.mean() == pytest.approx(1 / expected, rel=0.03)
