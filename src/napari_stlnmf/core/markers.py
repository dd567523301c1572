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
import scipy.sparse as sp

__all__ = [
    "select_markers",
    "select_genes_for_depth",
    "CPU_NONZERO_BUDGET",
    "ENOUGH_MARKER_COUNTS",
    "ENOUGH_MARKER_SHARE",
]


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


#: A marker set is enough once the median spot holds this many counts on it...
ENOUGH_MARKER_COUNTS = 500.0
#: ...or this share of its counts on the shared genes.
ENOUGH_MARKER_SHARE = 0.8
_GROWTH = (1, 2, 4, 8, 16)
#: On the CPU the genes of ``--genes auto`` stop growing before the slide's nonzero counts
#: on them pass this (benchmarks/bench_visium_hd.py: at ~5 ns per nonzero and 160 updates,
#: 30 M nonzeros are ~25 s of fitting on 2 cores). Slides up to ~150k Visium HD bins, and
#: every standard Visium slide, stay under it with every gene.
CPU_NONZERO_BUDGET = 30_000_000


def select_genes_for_depth(
    profiles: np.ndarray,
    counts,
    n_per_type: int = 100,
    enough_counts: float = ENOUGH_MARKER_COUNTS,
    enough_share: float = ENOUGH_MARKER_SHARE,
    max_nonzeros: int | None = None,
) -> np.ndarray:
    """Marker genes when the spots are deep enough, more genes (up to all) when shallow.

    On shallow spots (60–300 UMIs: Visium HD bins, Slide-seq beads) the fit is limited by
    how many counts it sees: 100 markers per type of a 10,000-gene panel hold under 10 % of
    a spot's counts, so most of the evidence would be thrown away. On deep spots markers
    lose little information and leave out genes that differ between platforms. The marker
    set grows (``n_per_type`` x 1, 2, 4, 8, 16) until the median spot holds
    ``enough_counts`` counts or ``enough_share`` of its counts on it; if it never does,
    every gene is used. No ground truth is involved: only the slide's counts.

    Parameters
    ----------
    profiles : ndarray (n_genes, n_types)
        As for :func:`select_markers`.
    counts : sparse or dense (n_spots, n_genes)
        The slide's counts on the same genes.
    max_nonzeros : int, optional
        A work budget: a fit costs time in proportion to the slide's nonzero counts on
        the genes it uses, so the set stops growing before it would hold more than this
        many (the first marker set is kept whatever its size). None: no budget.

    Returns
    -------
    ndarray of int
        Sorted gene indices.
    """
    if sp.issparse(counts):
        x = counts.tocsr()
        gene_nnz = np.bincount(x.indices, minlength=x.shape[1])
    else:
        x = np.asarray(counts)
        gene_nnz = (x != 0).sum(0)
    spot_total = np.asarray(x.sum(1)).ravel()
    nonzero = spot_total > 0
    if not nonzero.any():
        return select_markers(profiles, n_per_type=n_per_type)
    n = profiles.shape[0]
    previous = None
    for factor in _GROWTH:
        keep = select_markers(profiles, n_per_type=n_per_type * factor)
        over = max_nonzeros is not None and gene_nnz[keep].sum() > max_nonzeros
        if over and previous is not None:
            return previous
        if keep.size == n or (previous is not None and keep.size == previous.size):
            break
        previous = keep
        # counts on the set per spot: one sparse matrix-vector product, no column slicing
        mask = np.zeros(n, dtype=np.float64)
        mask[keep] = 1.0
        on_markers = np.asarray(x @ mask).ravel()[nonzero]
        share = on_markers / spot_total[nonzero]
        if over or np.median(on_markers) >= enough_counts or np.median(share) >= enough_share:
            return keep
    if max_nonzeros is not None and gene_nnz.sum() > max_nonzeros and previous is not None:
        return previous
    return np.arange(n)
