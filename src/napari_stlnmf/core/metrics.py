"""Accuracy metrics for proportion matrices (spots x types, rows summing to 1)."""

from __future__ import annotations

import numpy as np

__all__ = ["rmse", "mean_jsd", "mean_pearson", "score", "truth_metrics"]


def _valid(pred: np.ndarray, truth: np.ndarray):
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} != truth shape {truth.shape}")
    ok = np.isfinite(pred).all(1) & np.isfinite(truth).all(1)
    return pred[ok], truth[ok]


def rmse(pred, truth) -> float:
    """RMSE over all spot x type entries (spots with NaN rows are skipped)."""
    p, t = _valid(pred, truth)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mean_jsd(pred, truth) -> float:
    """Mean Jensen-Shannon divergence (base 2, in [0, 1]) per spot."""
    p, t = _valid(pred, truth)
    p = p / p.sum(1, keepdims=True)
    t = t / t.sum(1, keepdims=True)
    mid = 0.5 * (p + t)

    def kl(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log2(a / b), 0.0)
        return terms.sum(1)

    return float(np.mean(0.5 * kl(p, mid) + 0.5 * kl(t, mid)))


def mean_pearson(pred, truth) -> float:
    """Mean over types of the Pearson correlation across spots (constant types skipped)."""
    p, t = _valid(pred, truth)
    rs = []
    for j in range(p.shape[1]):
        if p[:, j].std() > 0 and t[:, j].std() > 0:
            rs.append(np.corrcoef(p[:, j], t[:, j])[0, 1])
    return float(np.mean(rs)) if rs else float("nan")


def score(pred, truth) -> dict:
    """All three metrics as a dict."""
    return {
        "rmse": rmse(pred, truth),
        "jsd": mean_jsd(pred, truth),
        "pearson": mean_pearson(pred, truth),
    }


def truth_metrics(proportions, truth, cell_types=None) -> dict:
    """Scores of a run's proportions against ground truth: the one rule behind ``run.json``
    (``stlnmf deconvolve --sample``) and ``benchmarks/bench_accuracy.py``.

    Parameters
    ----------
    proportions : DataFrame
        Spots (index) x cell types, as :attr:`DeconvolutionResult.proportions`.
    truth : DataFrame
        Spots (index, each one also in ``proportions``) x cell types.
    cell_types : list of str, optional
        The types to score; default: the truth's columns.

    Rules
    -----
    - Spots are the truth's, matched by index.
    - A type the prediction lacks (e.g. left out of the reference for having too few
      cells) is scored as predicted 0 everywhere.
    - A spot whose predicted row is NaN (no counts on the genes used: the run's
      ``n_spots_nan``) or whose truth row is NaN is left out of every metric (see
      :func:`score`), never counted as 0.

    Returns
    -------
    dict
        ``{"rmse", "jsd", "pearson"}`` as floats.
    """
    types = list(truth.columns if cell_types is None else cell_types)
    pred = proportions.reindex(columns=types, fill_value=0.0).loc[truth.index]
    s = score(pred.to_numpy(dtype=np.float64), truth[types].to_numpy(dtype=np.float64))
    return {k: float(v) for k, v in s.items()}
