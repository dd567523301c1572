"""Marker-gene selection: the genes that tell cell types apart.

A gene is a marker of type t when its mean normalised expression in t is high against the
other types. As RCTD does, we rank genes per type by the log fold change of the type's mean
over the mean of the other types, keep those expressed at least ``min_expression`` in the
type with a fold change of at least ``min_log_fold``, and take the union of the top
``n_per_type`` of every type. (Against the *largest* other type instead, a curated panel of
124 genes over 17 types kept only 31 genes: genes shared by two related types, which still
separate them from the rest, matter.)
"""

from __future__ import annotations

import numpy as np

__all__ = ["select_markers"]


def select_markers(
    profiles: np.ndarray,
    n_per_type: int = 100,
    min_expression: float = 0.1,
    min_log_fold: float = 0.5,
    min_genes: int = 20,
) -> np.ndarray:
    """Indices (sorted) of marker genes.

    Parameters
    ----------
    profiles : ndarray of shape (n_genes, n_types)
        Mean normalised expression of each type (counts per 10,000 of each cell's total,
        averaged over the cells of the type).
    n_per_type : int, default 100
        Top genes kept per type.
    min_expression : float, default 0.1
        A marker's mean expression in its type, in counts per 10,000.
    min_log_fold : float, default 0.5
        Minimum natural-log fold change over the mean of the other types.
    min_genes : int, default 20
        If fewer genes qualify, every gene is returned (too few markers would leave the
        data term blind; tiny panels are already marker panels).

    Returns
    -------
    ndarray of int
    """
    p = np.asarray(profiles, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"profiles must be (genes x types) with >= 2 types, got {p.shape}")
    n, k = p.shape
    if n_per_type < 1:
        raise ValueError(f"n_per_type must be >= 1, got {n_per_type}")
    eps = 1e-3
    others = (p.sum(1, keepdims=True) - p) / (k - 1)
    lfc = np.log(p + eps) - np.log(others + eps)
    chosen = np.zeros(n, dtype=bool)
    for t in range(k):
        ok = np.flatnonzero((p[:, t] >= min_expression) & (lfc[:, t] >= min_log_fold))
        best = ok[np.argsort(-lfc[ok, t], kind="stable")[:n_per_type]]
        chosen[best] = True
    idx = np.flatnonzero(chosen)
    if idx.size < min(min_genes, n):
        return np.arange(n)
    return idx
