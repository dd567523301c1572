"""Supervised training of the unrolled network on simulated (X, V) pairs."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .data_terms import DataTerm
from .graph import SpotGraph
from .network import STLNMFNet

__all__ = ["TrainingSlide", "TrainingProgress", "TrainingCancelled", "train_network"]


class TrainingCancelled(RuntimeError):
    """Raised when ``should_stop`` asked training to stop; the caller's model is untouched."""


@dataclass
class TrainingSlide:
    """One prepared simulated slide: data term, graph, region indices and true fractions.

    ``start``, when given, is the network's starting point (its warm start, which has no
    parameter, computed once per slide instead of at every pass)."""

    data: DataTerm
    graph: SpotGraph
    region_idx: torch.Tensor
    truth: torch.Tensor
    start: torch.Tensor | None = None


@dataclass
class TrainingProgress:
    """What a progress callback receives after every epoch."""

    epoch: int
    n_epochs: int
    train_rmse: float
    val_rmse: float
    best_val_rmse: float
    seconds: float


def _rmse_loss(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Root mean squared error over all spot x type entries (the training loss; the numpy
    metric for reports is :func:`napari_stlnmf.core.metrics.rmse`)."""
    return torch.sqrt(torch.mean((pred - truth) ** 2))


def _evaluate(net: STLNMFNet, slides: Sequence[TrainingSlide]) -> float:
    with torch.no_grad():
        errs = [
            _rmse_loss(net(s.data, s.graph, s.region_idx, u0=s.start), s.truth).item()
            for s in slides
        ]
    return float(sum(errs) / len(errs))


def train_network(
    net: STLNMFNet,
    train: Sequence[TrainingSlide] | Callable[[int], Sequence[TrainingSlide]],
    val: Sequence[TrainingSlide],
    epochs: int = 30,
    lr: float = 0.05,
    patience: int = 6,
    callback: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[STLNMFNet, list[dict]]:
    """Train a copy of ``net`` with Adam on the RMSE of the predicted fractions.

    Parameters
    ----------
    net : STLNMFNet
        Initial network; it is not modified.
    train : sequence of TrainingSlide, or callable ``epoch -> sequence``
        A callable draws fresh slides every epoch (no slide is seen twice, so the
        per-region weights cannot memorise one draw of region compositions).
    val : sequence of TrainingSlide
    epochs : int
        Maximum number of passes over ``train`` (one optimiser step per slide).
    lr : float
        Adam learning rate (parameters live on a log scale, so this is a relative step).
    patience : int
        Stop after this many epochs without a better validation RMSE.
    callback : callable, optional
        Called with a :class:`TrainingProgress` after every epoch (epoch 0 = untrained).
    should_stop : callable, optional
        Polled between slides; when it returns True, :class:`TrainingCancelled` is raised.

    Returns
    -------
    net : STLNMFNet
        The copy with the best validation RMSE.
    history : list of dict
        ``epoch``, ``train_rmse``, ``val_rmse``, ``seconds`` per epoch.
    """
    net = copy.deepcopy(net)
    draw = train if callable(train) else (lambda epoch: train)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    start = time.perf_counter()
    best = _evaluate(net, val)
    best_state = copy.deepcopy(net.state_dict())
    history = [
        {
            "epoch": 0,
            "train_rmse": _evaluate(net, draw(0)),
            "val_rmse": best,
            "seconds": time.perf_counter() - start,
        }
    ]
    if callback is not None:
        callback(
            TrainingProgress(0, epochs, history[0]["train_rmse"], best, best, history[0]["seconds"])
        )
    stale = 0
    for epoch in range(1, epochs + 1):
        losses = []
        for slide in draw(epoch):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"training cancelled at epoch {epoch}")
            opt.zero_grad()
            pred = net(slide.data, slide.graph, slide.region_idx, u0=slide.start)
            loss = _rmse_loss(pred, slide.truth)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss.item()} at epoch {epoch}")
            loss.backward()
            # an overflowing gradient (a fitted value near 0 under a count) skips one step
            # instead of poisoning the parameters
            if all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters()):
                opt.step()
            losses.append(loss.item())
        val_rmse = _evaluate(net, val)
        if val_rmse < best - 1e-6:
            best, stale = val_rmse, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
        row = {
            "epoch": epoch,
            "train_rmse": float(sum(losses) / len(losses)),
            "val_rmse": val_rmse,
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        if callback is not None:
            callback(
                TrainingProgress(epoch, epochs, row["train_rmse"], val_rmse, best, row["seconds"])
            )
        if stale >= patience:
            break
    net.load_state_dict(best_state)
    return net, history
