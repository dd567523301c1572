"""Cell-type reference: signatures (mean raw counts per cell of each type) and, when
available, the single cells they came from (used to simulate training slides)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .validation import check_finite_nonnegative

__all__ = ["Reference", "fano_weights", "depth_adapted_weights"]


@dataclass
class Reference:
    """A cell-type reference over a fixed gene list.

    Attributes
    ----------
    signatures : ndarray of shape (n_genes, n_types)
        Mean raw counts per cell of each type (so fitted amounts are cells).
    genes : list of str
    cell_types : list of str
    cells : scipy.sparse.csr_matrix of shape (n_cells, n_genes), optional
        Raw counts of single cells, for simulation.
    labels : ndarray of shape (n_cells,) of int, optional
        Index into ``cell_types`` of each cell.
    n_cells_per_type : ndarray of shape (n_types,), optional
    gene_weights : ndarray of shape (n_genes,), optional
        Per-gene weight of the KL data term, ``1 / Fano factor`` of the gene's counts within
        a cell type (see :func:`fano_weights`); computed from the cells by
        :meth:`from_cells`, all ones when only signatures are known.
    library_sizes : ndarray of shape (n_types,), optional
        Mean total counts per cell of each type over *all* the genes measured in the
        reference (not only the genes kept here), to turn cell fractions into mRNA
        fractions. Default: the column sums of ``signatures``, i.e. over the reference's
        genes. Kept by :meth:`subset_genes` and saved with a fitted model.
    """

    signatures: np.ndarray
    genes: list[str]
    cell_types: list[str]
    cells: sp.csr_matrix | None = None
    labels: np.ndarray | None = None
    n_cells_per_type: np.ndarray | None = field(default=None)
    gene_weights: np.ndarray | None = field(default=None)
    library_sizes: np.ndarray | None = field(default=None)

    def __post_init__(self):
        sig = np.asarray(self.signatures, dtype=np.float64)
        if sig.ndim != 2:
            raise ValueError(f"signatures must be 2-D (genes x types), got shape {sig.shape}")
        n, k = sig.shape
        if len(self.genes) != n:
            raise ValueError(f"signatures have {n} genes (rows) but {len(self.genes)} gene names")
        if len(self.cell_types) != k:
            raise ValueError(
                f"signatures have {k} types (columns) but {len(self.cell_types)} type names"
            )
        if k < 2:
            raise ValueError(f"a reference needs at least 2 cell types, got {k}")
        if len(set(self.cell_types)) != k:
            raise ValueError(f"duplicated cell type names: {_dups(self.cell_types)}")
        if len(set(self.genes)) != n:
            raise ValueError(f"duplicated gene names in the reference: {_dups(self.genes)}")
        if not np.all(np.isfinite(sig)):
            raise ValueError("signatures contain NaN or infinite values")
        if (sig < 0).any():
            raise ValueError("signatures contain negative values")
        empty = np.flatnonzero(sig.sum(0) <= 0)
        if empty.size:
            names = [self.cell_types[i] for i in empty[:5]]
            raise ValueError(f"cell types with an all-zero signature: {names}")
        if self.gene_weights is not None:
            w = np.asarray(self.gene_weights, dtype=np.float64)
            if w.shape != (n,) or not np.all(np.isfinite(w)) or (w <= 0).any():
                raise ValueError(f"gene_weights must be {n} positive finite numbers")
            self.gene_weights = w
        if self.library_sizes is None:
            lib = sig.sum(0)
        else:
            try:
                lib = np.asarray(self.library_sizes, dtype=np.float64)
            except (TypeError, ValueError):
                lib = np.full(0, np.nan)
            if lib.shape != (k,) or not np.all(np.isfinite(lib)) or (lib <= 0).any():
                raise ValueError(
                    f"library_sizes must be {k} positive finite numbers (one per cell type)"
                )
        self.library_sizes = lib
        self.signatures = sig
        self.genes = [str(g) for g in self.genes]
        self.cell_types = [str(t) for t in self.cell_types]

    @property
    def n_genes(self) -> int:
        return self.signatures.shape[0]

    @property
    def n_types(self) -> int:
        return self.signatures.shape[1]

    @property
    def weights(self) -> np.ndarray:
        """Per-gene data-term weights (n_genes,): ``gene_weights`` or all ones."""
        if self.gene_weights is None:
            return np.ones(self.n_genes)
        return self.gene_weights

    @classmethod
    def from_cells(
        cls,
        counts,
        labels,
        genes,
        min_cells: int = 1,
        cell_types: list[str] | None = None,
        library_sizes=None,
    ) -> Reference:
        """Build signatures as per-type mean raw counts of single cells.

        Parameters
        ----------
        counts : array-like or sparse of shape (n_cells, n_genes)
            Raw counts (non-negative).
        labels : array-like of shape (n_cells,)
            Cell-type label of each cell.
        genes : sequence of str
        min_cells : int, default 1
            Types with fewer cells are dropped (``ValueError`` if fewer than 2 remain).
        cell_types : list of str, optional
            Order of the types; by default sorted labels.
        library_sizes : array-like of shape (n_types,), optional
            Mean counts per cell of each type over all measured genes, when ``counts``
            hold only some of them (default: over the genes of ``counts``).
        """
        x = sp.csr_matrix(counts, dtype=np.float64)
        labels = np.asarray(labels).astype(str)
        if x.shape[0] != labels.shape[0]:
            raise ValueError(
                f"reference counts have {x.shape[0]} cells but {labels.shape[0]} labels"
            )
        if x.shape[1] != len(genes):
            raise ValueError(f"reference counts have {x.shape[1]} genes but {len(genes)} names")
        check_finite_nonnegative(x.data, "reference counts")
        names, inverse, n_per = np.unique(labels, return_inverse=True, return_counts=True)
        keep = n_per >= min_cells
        if cell_types is None:
            cell_types = [str(t) for t in names[keep]]
        index = {t: i for i, t in enumerate(cell_types)}
        lab = np.array([index.get(str(names[i]), -1) for i in inverse], dtype=np.int64)
        sel = lab >= 0
        x, lab = x[sel], lab[sel]
        k = len(cell_types)
        onehot = sp.csr_matrix((np.ones(lab.size), (lab, np.arange(lab.size))), shape=(k, lab.size))
        n_cells = np.asarray(onehot.sum(1)).ravel()
        if (n_cells == 0).any():
            missing = [cell_types[i] for i in np.flatnonzero(n_cells == 0)]
            raise ValueError(f"cell types with no cells in the reference: {missing}")
        sig = np.asarray((onehot @ x).todense()).T / n_cells[None, :]
        weights = fano_weights(x, lab, sig)
        return cls(
            sig,
            list(genes),
            list(cell_types),
            x.tocsr(),
            lab,
            n_cells,
            weights,
            library_sizes=library_sizes,
        )

    @classmethod
    def from_signatures(cls, signatures, genes, cell_types, library_sizes=None) -> Reference:
        """A reference given directly as a (genes x types) table of mean counts per cell
        (``library_sizes``: see the class attributes)."""
        return cls(
            np.asarray(signatures, dtype=np.float64),
            list(genes),
            list(cell_types),
            library_sizes=library_sizes,
        )

    def subset_genes(self, genes: list[str]) -> Reference:
        """The reference restricted to (and ordered as) ``genes`` (all must be present)."""
        pos = {g: i for i, g in enumerate(self.genes)}
        missing = [g for g in genes if g not in pos]
        if missing:
            raise ValueError(f"genes not in the reference: {missing[:5]} ({len(missing)} in all)")
        idx = np.array([pos[g] for g in genes], dtype=np.int64)
        cells = None if self.cells is None else self.cells[:, idx].tocsr()
        return Reference(
            self.signatures[idx],
            list(genes),
            list(self.cell_types),
            cells,
            self.labels,
            self.n_cells_per_type,
            None if self.gene_weights is None else self.gene_weights[idx],
            library_sizes=self.library_sizes,
        )

    def split_cells(self, fraction: float, rng: np.random.Generator) -> tuple[Reference, Reference]:
        """Split the single cells per type into two disjoint references.

        The first (``fraction`` of each type's cells, at least one) builds signatures, the
        second is used to simulate, so training sees the signature/cell mismatch of real data.
        Types with a single cell appear in both.
        """
        if self.cells is None or self.labels is None:
            raise ValueError("this reference has no single cells to split")
        first, second = [], []
        for t in range(self.n_types):
            idx = rng.permutation(np.flatnonzero(self.labels == t))
            if idx.size < 2:
                first.append(idx)
                second.append(idx)
                continue
            cut = int(np.clip(round(fraction * idx.size), 1, idx.size - 1))
            first.append(idx[:cut])
            second.append(idx[cut:])
        a, b = np.concatenate(first), np.concatenate(second)
        names = np.array(self.cell_types)
        return (
            Reference.from_cells(
                self.cells[a], names[self.labels[a]], self.genes, cell_types=self.cell_types
            ),
            Reference.from_cells(
                self.cells[b], names[self.labels[b]], self.genes, cell_types=self.cell_types
            ),
        )


def fano_weights(x: sp.csr_matrix, labels: np.ndarray, signatures: np.ndarray) -> np.ndarray:
    """``1 / F_g``, with ``F_g`` the within-type Fano factor of gene ``g`` (floored at 1).

    ``F_g = sum_cells (x_cg - B_g,t(c))^2 / sum_cells B_g,t(c)``: the variance of a cell's
    counts around its type's mean, over that mean, pooled over cells. A spot summing ``N``
    cells of one type has the same Fano factor, so weighting the Poisson term by ``1/F_g``
    is the quasi-Poisson likelihood of spot counts: genes whose counts are bursty within a
    type (high ``F_g``) carry less information per count and are down-weighted. Genes with
    no expression get weight 1.
    """
    x = sp.csr_matrix(x, dtype=np.float64)
    k = signatures.shape[1]
    onehot = sp.csr_matrix(
        (np.ones(labels.size), (labels, np.arange(labels.size))), shape=(k, labels.size)
    )
    n_cells = np.asarray(onehot.sum(1)).ravel()
    sq = np.asarray((onehot @ x.multiply(x)).todense()).T  # (genes, types) sum of x^2
    # sum over cells of (x - mean)^2 = sum x^2 - n mean^2, per type
    ss = np.clip(sq - n_cells[None, :] * signatures**2, 0.0, None)
    # types with one cell have no within-type variance: leave them out of the pool
    several = n_cells > 1
    if not several.any():
        return np.ones(signatures.shape[0])
    var_sum = ss[:, several].sum(1)
    mean_sum = (n_cells[None, several] * signatures[:, several]).sum(1)
    fano = np.where(mean_sum > 0, var_sum / np.where(mean_sum > 0, mean_sum, 1.0), 1.0)
    return 1.0 / np.maximum(fano, 1.0)


def depth_adapted_weights(weights: np.ndarray, ratio: float) -> np.ndarray:
    """Quasi-Poisson weights at the slide's depth: ``1 / (1 + (F_g - 1) p)``.

    ``weights`` are the reference's ``1 / F_g`` (:func:`fano_weights`); ``ratio`` is
    :func:`~.training_data.depth_ratio`. Binomial thinning
    of a count with Fano factor ``F`` to a fraction ``p`` leaves ``1 + (F - 1) p``: shallow
    spots (Visium HD bins, Slide-seq beads, 60–300 UMIs) are nearly Poisson whatever the
    reference cells' burstiness, so their genes keep nearly equal weight.
    """
    fano = 1.0 / np.clip(np.asarray(weights, dtype=np.float64), 1e-12, 1.0)
    return 1.0 / (1.0 + (fano - 1.0) * float(ratio))


def _dups(names) -> list[str]:
    seen, dups = set(), []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    return dups[:5]
