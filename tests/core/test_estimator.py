"""STLNMF and baselines end to end on simulated slides."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from napari_stlnmf import NNLS, STLNMF, PlainKL, Reference, ZeroCountSpotsWarning
from napari_stlnmf.core.metrics import rmse
from napari_stlnmf.core.simulate import SimulationSettings, simulate_demo_slide
from napari_stlnmf.core.train import TrainingCancelled


@pytest.fixture(scope="module")
def noisy_slide():
    """Hex slide, 3 regions, counts summed from held-out cells, platform effect 0.3,
    low depth (count noise): the setting where spatial terms should pay."""
    settings = SimulationSettings(depth=0.02, platform_sigma=0.3)
    return simulate_demo_slide(n_rows=30, n_cols=40, seed=1, settings=settings)


@pytest.fixture(scope="module")
def small_slide():
    return simulate_demo_slide(n_rows=12, n_cols=14, n_types=5, n_genes=120, seed=2)


def _args(d):
    return d["reference"], d["coords"], d["regions"]


def test_training_beats_untrained_nnls_and_plain_kl(noisy_slide):
    d = noisy_slide
    ref, coords, regions = _args(d)
    X, truth = d["counts"], d["proportions"]
    trained = STLNMF(epochs=12, random_state=0).fit(ref, coords, regions, X=X)
    scores = {
        "trained": rmse(trained.transform(X, coords, regions), truth),
        "untrained": rmse(
            STLNMF(epochs=0).fit(ref, coords, regions).transform(X, coords, regions), truth
        ),
        "plain_kl": rmse(PlainKL().fit(ref).transform(X), truth),
        "nnls": rmse(NNLS().fit(ref).transform(X), truth),
    }
    print("held-out RMSE:", {k: round(v, 4) for k, v in scores.items()})
    assert trained.history_[-1]["epoch"] >= 1
    assert scores["trained"] < scores["untrained"]
    assert scores["trained"] < scores["plain_kl"]
    assert scores["trained"] < scores["nnls"]
    assert scores["trained"] < 0.08


def test_transform_rows_sum_to_one_and_same_seed_same_result(small_slide):
    ref, coords, regions = _args(small_slide)
    X = small_slide["counts"]
    a = STLNMF(epochs=2, random_state=3).fit(ref, coords, regions, X=X)
    b = STLNMF(epochs=2, random_state=3).fit(ref, coords, regions, X=X)
    pa, pb = a.transform(X, coords, regions), b.transform(X, coords, regions)
    assert pa.shape == (X.shape[0], ref.n_types)
    np.testing.assert_allclose(pa.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(pa, pb)
    assert a.learned_parameters() == b.learned_parameters()


def test_zero_count_spot_gets_nan_row_and_warning(small_slide, data_term):
    ref, coords, regions = _args(small_slide)
    X = small_slide["counts"].tolil()
    X[5, :] = 0
    X[17, :] = 0
    est = STLNMF(epochs=0, data_term=data_term).fit(ref, coords, regions)
    with pytest.warns(ZeroCountSpotsWarning, match="2 of"):
        props = est.transform(X.tocsr(), coords, regions)
    assert np.isnan(props[[5, 17]]).all()
    rest = np.delete(props, [5, 17], axis=0)
    assert np.isfinite(rest).all()
    np.testing.assert_allclose(rest.sum(1), 1.0, atol=1e-5)


def test_genes_absent_from_reference_are_harmless(small_slide):
    ref, coords, regions = _args(small_slide)
    sig = ref.signatures.copy()
    sig[:10] = 0.0  # ten genes the reference never expresses
    ref0 = Reference.from_signatures(sig, ref.genes, ref.cell_types)
    props = (
        STLNMF(epochs=0)
        .fit(ref0, coords, regions)
        .transform(small_slide["counts"], coords, regions)
    )
    assert np.isfinite(props).all()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda X: X.multiply(-1), "negative"),
        (lambda X: sp.csr_matrix(np.where(np.arange(X.shape[1]) == 3, np.nan, X.toarray())), "NaN"),
        (lambda X: X[:, :-1], "genes"),
        (lambda X: np.ones(5), "2-D"),
    ],
)
def test_bad_counts_raise_clear_errors(small_slide, mutate, message):
    ref, coords, regions = _args(small_slide)
    est = STLNMF(epochs=0).fit(ref, coords, regions)
    with pytest.raises(ValueError, match=message):
        est.transform(mutate(small_slide["counts"]), coords, regions)


def test_bad_geometry_raises_clear_errors(small_slide):
    ref, coords, regions = _args(small_slide)
    X = small_slide["counts"]
    est = STLNMF(epochs=0).fit(ref, coords, regions)
    dup = coords.copy()
    dup[3] = dup[4]
    with pytest.raises(ValueError, match="duplicated coordinates.*spots 3 and 4"):
        est.transform(X, dup, regions)
    with pytest.raises(ValueError, match="coords have 10 spots"):
        est.transform(X, coords[:10], regions)
    with pytest.raises(ValueError, match="regions must have shape"):
        est.transform(X, coords, regions[:-1])
    with pytest.raises(ValueError, match="duplicated coordinates"):
        STLNMF(epochs=0).fit(ref, dup, regions)


def test_reference_errors():
    with pytest.raises(ValueError, match="at least 2 cell types"):
        Reference.from_signatures(np.ones((4, 1)), list("abcd"), ["T"])
    with pytest.raises(ValueError, match="negative"):
        Reference.from_signatures(-np.ones((4, 2)), list("abcd"), ["T", "U"])
    with pytest.raises(ValueError, match="duplicated gene"):
        Reference.from_signatures(np.ones((3, 2)), ["a", "a", "b"], ["T", "U"])
    with pytest.raises(ValueError, match="4 cells but 3 labels"):
        Reference.from_cells(np.ones((4, 3)), ["A", "B", "A"], ["g1", "g2", "g3"])
    with pytest.raises(ValueError, match="at least 2 cell types"):
        Reference.from_cells(np.ones((4, 3)), ["A"] * 4, ["g1", "g2", "g3"])
    with pytest.raises(TypeError, match="Reference"):
        STLNMF(epochs=0).fit(np.ones((3, 2)), np.zeros((2, 2)))


def test_cancel_leaves_estimator_unchanged(small_slide):
    ref, coords, regions = _args(small_slide)
    X = small_slide["counts"]
    est = STLNMF(epochs=0).fit(ref, coords, regions)
    before = est.transform(X, coords, regions)
    calls = []
    est.epochs = 5
    with pytest.raises(TrainingCancelled):
        est.fit(
            ref, coords, regions, X=X, callback=calls.append, should_stop=lambda: len(calls) >= 2
        )
    assert len(calls) == 2
    np.testing.assert_array_equal(est.transform(X, coords, regions), before)


def test_progress_callback_and_history(small_slide):
    ref, coords, regions = _args(small_slide)
    seen = []
    est = STLNMF(epochs=3, patience=10).fit(
        ref, coords, regions, X=small_slide["counts"], callback=seen.append
    )
    assert [p.epoch for p in seen] == [0, 1, 2, 3]
    assert len(est.history_) == 4
    assert all(np.isfinite(h["val_rmse"]) for h in est.history_)
    params = est.learned_parameters()
    assert set(params) == {"lambda1", "lambda2", "lambda3", "sigma1", "sigma2", "omega"}
    assert len(params["omega"]) == 3


def test_unseen_region_and_new_scale(small_slide):
    ref, coords, regions = _args(small_slide)
    X = small_slide["counts"]
    est = STLNMF(epochs=0).fit(ref, coords, regions)
    base = est.transform(X, coords, regions)
    # same slide in other units (micrometres vs pixels): same answer
    np.testing.assert_allclose(est.transform(X, coords * 0.37, regions), base, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        props = est.transform(X, coords, regions + 10)  # regions never seen in fit
    assert np.isfinite(props).all()


def test_cuda_request_without_cuda_is_a_clear_error(small_slide):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        STLNMF(epochs=0, device="cuda").fit(*_args(small_slide))


def test_randomised_simulation_draws_each_slide_within_its_ranges():
    from napari_stlnmf.core.training_data import randomised

    base = SimulationSettings(depth=0.3, platform_sigma=0.1)
    gen = np.random.default_rng(0)
    draws = [randomised(base, gen) for _ in range(200)]
    scale = np.array([d.field_scale for d in draws])
    strength = np.array([d.field_strength for d in draws])
    cells = np.array([d.mean_cells for d in draws])
    assert scale.min() >= 1.0 and scale.max() <= 6.0 and np.ptp(scale) > 4.0
    assert strength.min() >= 0.0 and strength.max() <= 1.5 and np.ptp(strength) > 1.2
    assert cells.min() >= 2.0 and cells.max() <= 10.0 and np.ptp(cells) > 6.0
    # what is not randomised (the calibrated depth, the platform effect) is kept
    assert {d.depth for d in draws} == {0.3} and {d.platform_sigma for d in draws} == {0.1}
    assert STLNMF().randomise is True
