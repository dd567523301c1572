"""The fused CPU kernel (core/_fused.py) against the torch updates it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from napari_stlnmf.core import _fused
from napari_stlnmf.core.data_terms import FrobeniusData, make_data_term
from napari_stlnmf.core.graph import build_graph
from napari_stlnmf.core.network import NetConfig, STLNMFNet, plain_updates

pytestmark = pytest.mark.skipif(not _fused.available(), reason="numba not installed")


def _slide(m=900, n=400, k=5, depth=150.0, seed=0, zero_rows=(3, 17)):
    rng = np.random.default_rng(seed)
    sig = rng.gamma(0.3, 1.0, size=(n, k)) + 1e-3
    side = int(np.ceil(np.sqrt(m)))
    coords = np.column_stack(np.divmod(np.arange(m), side)).astype(float) * 100.0
    truth = rng.dirichlet(np.full(k, 0.5), size=m)
    mean = truth @ (sig / sig.sum(0)).T * depth
    x = sp.csr_matrix(rng.poisson(mean).astype(np.float64))
    x = x.tolil()
    for r in zero_rows:
        x[r, :] = 0
    regions = (coords[:, 0] > coords[:, 0].mean()).astype(np.int64)
    return x.tocsr(), sig, coords, regions, rng.uniform(0.3, 1.5, size=n)


def _net(k, tied=True, group="region", seed=0):
    torch.manual_seed(seed)
    cfg = NetConfig(n_types=k, n_regions=2, n_layers=12, tied=tied, group=group, warm_start=20)
    net = STLNMFNet(cfg)
    with torch.no_grad():  # move the parameters off their initial values
        net.log_lambda.add_(torch.randn_like(net.log_lambda) * 0.5)
        net.log_sigma.add_(torch.randn_like(net.log_sigma) * 0.2)
        net.omega_raw.add_(torch.randn_like(net.omega_raw))
    return net.eval()


def _forward(net, x, sig, coords, regions, weights, monkeypatch, fused: str):
    monkeypatch.setenv(_fused.ENV_SWITCH, fused)
    data = make_data_term(x, sig, "kl", "cpu", torch.float32, weights)
    graph = build_graph(coords, regions, radius=1.5)
    ridx = torch.as_tensor(regions)
    with torch.no_grad():
        return net(data, graph, ridx).numpy(), data


@pytest.mark.parametrize(
    ("k", "tied", "group", "n_genes"),
    [
        (5, True, "region", 400),  # sparse counts, k padded to 8
        (8, False, "region", 400),  # one parameter set per layer, no padding
        (3, True, "none", 400),
        (5, True, "region", 40),  # dense counts (DenseKLData)
    ],
)
def test_fused_forward_matches_torch(monkeypatch, k, tied, group, n_genes):
    x, sig, coords, regions, weights = _slide(n=n_genes, k=k)
    net = _net(k, tied=tied, group=group)
    ref, data_t = _forward(net, x, sig, coords, regions, weights, monkeypatch, "0")
    got, data_f = _forward(net, x, sig, coords, regions, weights, monkeypatch, "1")
    assert _fused.fused_for(data_f) is not None  # the fused path did run
    assert type(data_t).__name__ == ("DenseKLData" if n_genes == 40 else "KLData")
    np.testing.assert_allclose(got, ref, atol=2e-5)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    # and it is a real fit, not a copy of the start
    assert np.abs(got - 1.0 / k).max() > 0.1


def test_fused_plain_updates_match_torch(monkeypatch):
    x, sig, _, _, weights = _slide()
    data = make_data_term(x, sig, "kl", "cpu", torch.float32, weights)
    u0 = torch.full((x.shape[0], sig.shape[1]), 1.0 / sig.shape[1])
    monkeypatch.setenv(_fused.ENV_SWITCH, "0")
    ref = plain_updates(u0, data, 50).numpy()
    monkeypatch.setenv(_fused.ENV_SWITCH, "1")
    got = plain_updates(u0, data, 50).numpy()
    np.testing.assert_allclose(got, ref, atol=2e-5)


def test_fused_threads_give_identical_rows():
    """Rows are independent within an update (Jacobi), so the split into chunks and
    threads does not change a single bit."""
    x, sig, coords, regions, weights = _slide(m=3000)
    data = make_data_term(x, sig, "kl", "cpu", torch.float32, weights)
    fused = _fused.fused_for(data)
    graph = build_graph(coords, regions, radius=1.5)
    adj = graph.csr(graph.weights(torch.tensor(1.0), torch.tensor(1.0)))
    g = (adj.crow_indices().numpy(), adj.col_indices().numpy(), adj.values().numpy())
    u = np.full((x.shape[0], sig.shape[1]), 0.2, np.float32)
    kw = dict(graph=g, deg=np.ones(x.shape[0]), lambdas=(0.05, 0.01, 0.0))
    one = _fused.run_updates(fused, u, 15, threads=1, **kw)
    two = _fused.run_updates(fused, u, 15, threads=2, **kw)
    four = _fused.run_updates(fused, u, 15, threads=4, **kw)
    assert np.array_equal(one, two) and np.array_equal(one, four)
    plain1 = _fused.run_updates(fused, u, 15, threads=1)
    plain2 = _fused.run_updates(fused, u, 15, threads=3)
    assert np.array_equal(plain1, plain2)


def test_zero_count_rows_as_in_torch(monkeypatch):
    """A spot with no counts has nothing pulling its row (the estimator leaves such spots
    out and reports NaN); the kernel must still give torch's numbers, finite."""
    x, sig, _, _, weights = _slide()
    data = make_data_term(x, sig, "kl", "cpu", torch.float32, weights)
    u = np.random.default_rng(1).dirichlet(np.ones(sig.shape[1]), size=x.shape[0])
    u = u.astype(np.float32)
    out = _fused.run_updates(_fused.fused_for(data), u, 30)
    monkeypatch.setenv(_fused.ENV_SWITCH, "0")
    ref = plain_updates(torch.from_numpy(u), data, 30).numpy()
    np.testing.assert_allclose(out[[3, 17]], ref[[3, 17]], atol=1e-7)
    assert np.isfinite(out).all()


def test_fused_only_where_it_applies(monkeypatch):
    x, sig, _, _, weights = _slide()
    frob = make_data_term(x, sig, "frobenius", "cpu", torch.float32)
    assert isinstance(frob, FrobeniusData) and _fused.fused_for(frob) is None
    double = make_data_term(x, sig, "kl", "cpu", torch.float64, weights)
    assert _fused.fused_for(double) is None
    monkeypatch.setenv(_fused.ENV_SWITCH, "0")
    single = make_data_term(x, sig, "kl", "cpu", torch.float32, weights)
    assert _fused.fused_for(single) is None
    # the paper's ratio rule and the literal group term stay on the torch path
    assert not _net(5, group="literal")._fusable()
    ratio = STLNMFNet(NetConfig(n_types=5, update="ratio"))
    assert not ratio._fusable()


def test_worker_exception_reaches_the_caller():
    x, sig, _, _, weights = _slide()
    data = make_data_term(x, sig, "kl", "cpu", torch.float32, weights)
    fused = _fused.fused_for(data)
    bad = np.full((x.shape[0], sig.shape[1]), 0.2, np.float32)
    with pytest.raises(Exception):  # noqa: B017 - any error, as long as it is not lost
        _fused.run_updates(fused, bad, 2, group_weights=np.ones((5, 5)), threads=2)


def test_thread_count_follows_the_cpus_and_the_environment(monkeypatch):
    import os

    monkeypatch.delenv(_fused.ENV_THREADS, raising=False)
    cpus = len(os.sched_getaffinity(0))
    assert _fused.worker_count() == min(64, _fused.THREADS_PER_CPU * cpus)
    monkeypatch.setenv(_fused.ENV_THREADS, "1")
    assert _fused.worker_count() == 1
    monkeypatch.setenv(_fused.ENV_THREADS, "not a number")
    assert _fused.worker_count() == min(64, _fused.THREADS_PER_CPU * cpus)
