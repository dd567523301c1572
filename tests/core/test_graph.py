"""The sparse spot graph against a dense reference implementation."""

import numpy as np
import torch

from napari_stlnmf.core.graph import build_graph, spot_pitch
from napari_stlnmf.core.simulate import hex_grid


def dense_adjacency(coords, regions, radius, sigma1, sigma2):
    pitch = spot_pitch(coords)
    c = coords / pitch
    d2 = ((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    z = np.eye(regions.max() + 1)[regions]  # one-hot regions, as in the paper's eq. 1
    l1 = np.abs(z[:, None, :] - z[None, :, :]).sum(-1)
    a = np.exp(-d2 / sigma1**2 - l1**2 / sigma2**2)
    a[d2 > radius**2] = 0.0
    np.fill_diagonal(a, 0.0)
    return a


def test_sparse_graph_equals_dense_reference():
    rng = np.random.default_rng(0)
    coords = hex_grid(9, 11, pitch=137.0) + rng.normal(0, 3.0, size=(99, 2))
    regions = (coords[:, 0] > 600).astype(int) + (coords[:, 1] > 500).astype(int)
    sigma1, sigma2 = 1.3, 0.8
    g = build_graph(coords, regions, radius=2.1, dtype=torch.float64)
    w = g.weights(
        torch.tensor(sigma1, dtype=torch.float64), torch.tensor(sigma2, dtype=torch.float64)
    )
    dense = dense_adjacency(coords, regions, 2.1, sigma1, sigma2)
    u = torch.as_tensor(rng.uniform(size=(99, 4)))
    np.testing.assert_allclose(g.propagate(w, u).numpy(), dense @ u.numpy(), rtol=1e-10)
    np.testing.assert_allclose((g.csr(w) @ u).numpy(), dense @ u.numpy(), rtol=1e-10)
    np.testing.assert_allclose(g.degree(w).numpy(), dense.sum(1), rtol=1e-10)
    assert (g.src != g.dst).all()  # no self loops
    assert g.n_edges == int((dense > 0).sum())


def test_pitch_is_the_unit_of_sigma1():
    coords = hex_grid(6, 6, pitch=100.0)
    g_px = build_graph(coords)
    g_um = build_graph(coords * 0.65)
    assert abs(g_px.pitch - 100.0) < 1e-9
    torch.testing.assert_close(g_px.dist2, g_um.dist2)
    # hexagonal grid, radius 1.5 pitches: interior spots have exactly 6 neighbours
    deg = torch.bincount(g_px.src, minlength=36)
    assert deg.max().item() == 6
    np.testing.assert_allclose(g_px.dist2.numpy(), 1.0, rtol=1e-9)


def test_sigmas_get_gradients_and_no_regions_means_one_region():
    coords = hex_grid(5, 5)
    g = build_graph(coords, regions=None)
    assert float(g.cross.sum()) == 0.0
    g2 = build_graph(coords, regions=np.arange(25) % 2)
    s1 = torch.tensor(1.0, requires_grad=True)
    s2 = torch.tensor(1.0, requires_grad=True)
    g2.weights(s1, s2).sum().backward()
    assert s1.grad.abs() > 0 and s2.grad.abs() > 0


def test_single_spot_and_coincident_spots():
    g = build_graph(np.array([[1.0, 2.0]]))
    assert g.n_edges == 0 and g.n_nodes == 1
    assert spot_pitch(np.zeros((3, 2))) == 1.0
