"""Test oracles: one regularised update with explicit parameters and the objective it
decreases. The tests check the network against them (monotone descent, fixed points,
gradients); the engine itself never calls them."""

from __future__ import annotations

import torch

from .data_terms import DataTerm
from .graph import SpotGraph
from .network import _group_weights, apply_step, layer_terms

__all__ = ["multiplicative_step", "objective"]


def multiplicative_step(
    u: torch.Tensor,
    data: DataTerm,
    graph: SpotGraph,
    w: torch.Tensor,
    region_idx: torch.Tensor,
    omega: torch.Tensor,
    lam1: torch.Tensor,
    lam2: torch.Tensor,
    lam3: torch.Tensor,
    group: str = "region",
    update: str = "mm",
) -> torch.Tensor:
    """One update with explicit parameters: what every layer of the network computes
    (test oracle)."""
    terms = layer_terms(graph, w, region_idx, omega, lam1, lam2, lam3, group, u.shape[0])
    return apply_step(u, data, terms, group, update)


def objective(
    u: torch.Tensor,
    data: DataTerm,
    graph: SpotGraph,
    w: torch.Tensor,
    region_idx: torch.Tensor,
    omega: torch.Tensor,
    lam1: float,
    lam2: float,
    lam3: float,
    group: str = "region",
    **data_kw,
) -> torch.Tensor:
    """The STL NMF objective (per spot), matching :func:`multiplicative_step`'s gradient
    (test oracle: the update must never increase it)."""
    m = u.shape[0]
    diff = u[graph.src] - u[graph.dst]
    lap = 0.25 * (w[:, None] * diff * diff).sum()  # 1/2 Tr(U^T L U); edges listed twice
    s2o = 0.5 * ((u.sum(1) - 1.0) ** 2).sum()
    gw = _group_weights(omega, region_idx, group, m)
    if gw is None:
        grp = u.new_zeros(())
    elif group == "region":
        grp = 0.5 * (gw * u * u).sum()
    else:
        grp = 0.5 * ((u @ gw) * u).sum()
    return (data.value(u, **data_kw) + lam1 * lap + lam2 * s2o + lam3 * grp) / m
