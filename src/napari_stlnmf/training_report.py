"""What a training run did, in plain words for the dock's status line (no Qt).

A run keeps the network of its best validation epoch (``core.train.train_network``); when
validation never improved that is the untrained network, which a bare "trained in 28.8 s"
would hide. :func:`training_outcome` reads the model's ``history_`` and says which one was
kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["TrainingSummary", "summarise_history", "training_outcome"]

#: ``train_network`` keeps a new state only when the validation RMSE drops by more than
#: this (see the ``val_rmse < best - 1e-6`` test there); the same rule is replayed here so
#: the reported best epoch is the one whose parameters the model holds.
MIN_IMPROVEMENT = 1e-6


@dataclass(frozen=True)
class TrainingSummary:
    """The validation story of one training run.

    Attributes
    ----------
    epochs_run : int
        Training epochs done (epoch 0, the untrained network, not counted).
    epochs_planned : int or None
        Epochs asked for (``model.epochs``), when known.
    start_rmse : float
        Validation RMSE of the untrained network (epoch 0).
    best_rmse : float
        Validation RMSE of the kept network.
    best_epoch : int
        Epoch of the kept network; 0 means the untrained network was kept.
    """

    epochs_run: int
    epochs_planned: int | None
    start_rmse: float
    best_rmse: float
    best_epoch: int

    @property
    def improved(self) -> bool:
        """True when a trained epoch beat the untrained network on validation."""
        return self.best_epoch > 0

    @property
    def stopped_early(self) -> bool:
        """True when training stopped (no gain for ``patience`` epochs) before the plan."""
        return self.epochs_planned is not None and self.epochs_run < self.epochs_planned


def summarise_history(history: list[dict], epochs_planned: int | None = None):
    """Replay the best-epoch rule of ``train_network`` on a model's ``history_``.

    Parameters
    ----------
    history : list of dict
        Rows with ``epoch`` and ``val_rmse``; row 0 is the untrained network.
    epochs_planned : int, optional
        The run's ``epochs`` setting (to tell an early stop).

    Returns
    -------
    TrainingSummary or None
        None for an empty history (no training: ``epochs=0``) or one without validation
        numbers (e.g. a model file from elsewhere).
    """
    rows = [h for h in history or [] if _finite(h.get("val_rmse"))]
    if not rows:
        return None
    best = start = float(rows[0]["val_rmse"])
    best_epoch = int(rows[0].get("epoch", 0))
    for h in rows[1:]:
        v = float(h["val_rmse"])
        if v < best - MIN_IMPROVEMENT:
            best, best_epoch = v, int(h.get("epoch", 0))
    epochs_run = max(int(h.get("epoch", i)) for i, h in enumerate(rows))
    return TrainingSummary(epochs_run, epochs_planned, start, best, best_epoch)


def training_outcome(model, seconds: float | None = None) -> str:
    """One plain sentence on what training produced and which network the model keeps.

    Parameters
    ----------
    model : fitted estimator
        An :class:`~napari_stlnmf.core.estimator.STLNMF` (reads ``history_`` and
        ``epochs``); other estimators get a plain "trained in … s".
    seconds : float, optional
        Wall time of the run; left out of the sentence when None (e.g. a loaded model).

    Returns
    -------
    str
        e.g. ``"trained in 28.8 s: validation RMSE 0.084 → 0.079 (best at epoch 7 of
        20)"`` or ``"validation did not improve in 20 epochs: the untrained network is
        kept (28.8 s)"``.
    """
    took = f" ({seconds:.1f} s)" if seconds is not None else ""
    planned = getattr(model, "epochs", None)
    planned = int(planned) if isinstance(planned, int | float) else None
    history = getattr(model, "history_", None)
    if history is None:  # not a trainable network (PlainKL, NNLS)
        return f"trained in {seconds:.1f} s" if seconds is not None else "trained"
    summary = summarise_history(history, planned)
    if summary is None:
        if planned == 0 or not history:
            return f"epochs=0: untrained network (plain STL NMF updates){took}"
        return f"trained{took}"
    n = summary.epochs_run
    if not summary.improved:
        return (
            f"validation did not improve in {n} epoch{'s' if n != 1 else ''} (RMSE "
            f"{_fmt(summary.start_rmse)}): the untrained network is kept{took}"
        )
    a, b = _pair(summary.start_rmse, summary.best_rmse)
    head = f"trained in {seconds:.1f} s" if seconds is not None else "trained"
    text = f"{head}: validation RMSE {a} → {b} (best at epoch {summary.best_epoch} of {n})"
    if summary.stopped_early:
        text += f"; stopped early, no gain after epoch {summary.best_epoch}"
    return text


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}"


def _pair(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with 3 decimals, or more until they differ (a real gain of 0.0004
    must not read "0.084 → 0.084")."""
    for digits in range(3, 7):
        sa, sb = _fmt(a, digits), _fmt(b, digits)
        if sa != sb:
            return sa, sb
    return sa, sb
