"""The baselines reuse the engine's pieces and keep their numbers."""

import warnings

import numpy as np
import pytest
import torch

from napari_stlnmf.core import ZeroCountSpotsWarning
from napari_stlnmf.core.baselines import PlainKL
from napari_stlnmf.core.data_terms import make_data_term
from napari_stlnmf.core.simulate import SimulationSettings, simulate_demo_slide


def _own_kl_loop(est, X):
    """PlainKL.transform as it was before it reused ``plain_updates``: the classic KL
    multiplicative update, normalised per spot, no floor."""
    x, sig, _, valid = est._split(X)
    data = make_data_term(x, sig, "kl", "cpu", torch.float32)
    with torch.no_grad():
        u = torch.full((data.n_spots, data.n_types), 1.0 / data.n_types, dtype=torch.float32)
        for _ in range(est.n_iter):
            _, b, _, c = data.pieces(u)
            u = u * c / b.clamp_min(1e-30)
            u = u / u.sum(1, keepdim=True).clamp_min(1e-30)
    return est._merge(u.double().numpy(), valid)


def test_plain_kl_is_the_warm_start_update_with_the_same_numbers():
    for seed in (0, 1):
        d = simulate_demo_slide(
            n_rows=10,
            n_cols=12,
            n_types=5,
            n_genes=100,
            seed=seed,
            settings=SimulationSettings(depth=0.05),
        )
        X = d["counts"].tolil()
        X[4, :] = 0  # a spot without counts keeps its NaN row
        est = PlainKL(device="cpu").fit(d["reference"])
        with pytest.warns(ZeroCountSpotsWarning, match="1 of 120"):
            new = est.transform(X.tocsr())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ZeroCountSpotsWarning)
            old = _own_kl_loop(est, X.tocsr())
        assert np.isnan(new[4]).all() and np.isnan(old[4]).all()
        # float32 rounding (the update's factors are grouped differently) and the
        # network's 1e-8 floor on fractions
        np.testing.assert_allclose(new, old, rtol=0, atol=1e-6)
