"""Per-spot 90 % intervals: the calibration table, and the intervals of a trained model on
a simulated slide it has not seen."""

from __future__ import annotations

import numpy as np
import pytest

from napari_stlnmf import STLNMF
from napari_stlnmf.core.simulate import (
    SimulationSettings,
    demo_reference,
    hex_grid,
    simulate_demo_slide,
    simulate_slide,
)
from napari_stlnmf.core.uncertainty import N_DEPTH_BANDS, IntervalCalibration


def _draw(rng, n, k=4):
    """Estimates and truths with a known error: truth = estimate + noise whose spread
    grows with depth falling, clipped to [0, 1]."""
    est = rng.dirichlet(np.full(k, 0.6), size=n)
    depth = rng.uniform(50, 2000, size=n)
    sd = 0.02 + 2.0 / np.sqrt(depth)
    truth = np.clip(est + rng.normal(0, 1, size=est.shape) * sd[:, None], 0, 1)
    return est, truth, depth


def test_calibrated_intervals_cover_90_percent_of_fresh_draws():
    rng = np.random.default_rng(0)
    cal = IntervalCalibration.fit(*_draw(rng, 20_000))
    est, truth, depth = _draw(rng, 20_000)
    lo, hi = cal.intervals(est, depth)
    inside = (truth >= lo - 1e-12) & (truth <= hi + 1e-12)
    assert 0.87 <= inside.mean() <= 0.93
    for t in range(est.shape[1]):
        assert 0.85 <= inside[:, t].mean() <= 0.95
    # depth matters: shallow spots get wider intervals than deep ones
    shallow, deep = depth < 200, depth > 1500
    assert (hi - lo)[shallow].mean() > 1.5 * (hi - lo)[deep].mean()
    # bounds are fractions around the estimate
    assert (lo >= 0).all() and (hi <= 1).all() and (lo <= est).all() and (est <= hi).all()


def test_nan_rows_stay_nan_and_the_arrays_round_trip():
    rng = np.random.default_rng(1)
    cal = IntervalCalibration.fit(*_draw(rng, 3000))
    est, _, depth = _draw(rng, 10)
    est[3] = np.nan
    depth[3] = np.nan
    lo, hi = cal.intervals(est, depth)
    assert np.isnan(lo[3]).all() and np.isnan(hi[3]).all()
    assert np.isfinite(lo[[0, 1, 2, 4]]).all()
    again = IntervalCalibration.from_arrays(cal.to_arrays(), 4)
    np.testing.assert_array_equal(again.intervals(est, depth)[0], lo)
    assert IntervalCalibration.from_arrays({}, 4) is None
    bad = cal.to_arrays()
    bad["interval_lower"] = bad["interval_lower"][:, :1]
    with pytest.raises(ValueError, match="interval_lower"):
        IntervalCalibration.from_arrays(bad, 4)
    with pytest.raises(ValueError, match="shape"):
        IntervalCalibration.from_arrays(cal.to_arrays(), 5)


def test_sparse_cells_borrow_from_pooled_residuals():
    """A type seen only a few times still gets finite, sensible bounds."""
    rng = np.random.default_rng(2)
    est, truth, depth = _draw(rng, 300, k=3)
    cal = IntervalCalibration.fit(est, truth, depth)
    assert cal.lower.shape == (3, N_DEPTH_BANDS, cal.lower.shape[2])
    assert np.isfinite(cal.lower).all() and np.isfinite(cal.upper).all()
    assert (cal.lower <= 1e-12).all() and (cal.upper >= -1e-12).all()


@pytest.fixture(scope="module")
def trained():
    """A model trained on one simulated slide (its geometry and depth)."""
    settings = SimulationSettings(depth=0.05)
    d = simulate_demo_slide(n_rows=20, n_cols=24, n_types=5, n_genes=150, seed=4, settings=settings)
    model = STLNMF(epochs=3, n_layers=10, random_state=0).fit(
        d["reference"], d["coords"], d["regions"], X=d["counts"]
    )
    return model, settings


def test_a_trained_model_covers_90_percent_of_an_unseen_simulated_slide(trained):
    model, settings = trained
    # another slide of the same tissue: the same held-out cells as simulate_demo_slide's,
    # new compositions and counts
    rng = np.random.default_rng(4)
    _, cells = demo_reference(5, 150, seed=4).split_cells(0.5, rng)
    coords = hex_grid(20, 24)
    regions = np.minimum((coords[:, 0] / (coords[:, 0].max() + 1e-9) * 3).astype(int), 2)
    slide = simulate_slide(cells, coords, regions, np.random.default_rng(99), settings)
    props, lo, hi = model.transform_intervals(slide.counts, coords, regions)
    np.testing.assert_array_equal(props, model.transform(slide.counts, coords, regions))
    truth = slide.proportions
    inside = (truth >= lo - 1e-9) & (truth <= hi + 1e-9)
    print("coverage", inside.mean(), "per type", inside.mean(0), "width", (hi - lo).mean())
    assert 0.85 <= inside.mean() <= 0.95
    assert (lo <= props + 1e-12).all() and (props <= hi + 1e-12).all()
    assert 0.01 < (hi - lo).mean() < 0.5


def test_no_intervals_when_switched_off(trained):
    model, _ = trained
    d = simulate_demo_slide(n_rows=8, n_cols=8, n_types=5, n_genes=150, seed=4)
    off = STLNMF(epochs=0, interval_slides=0).fit(d["reference"], d["coords"], d["regions"])
    assert off.intervals_ is None
    with pytest.raises(ValueError, match="no interval calibration"):
        off.transform_intervals(d["counts"], d["coords"], d["regions"])
