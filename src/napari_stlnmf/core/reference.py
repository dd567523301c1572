"""Cell-type reference: signatures (mean raw counts per cell of each type) and, when
available, the single cells they came from (used to simulate training slides)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["Reference"]


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
    """

    signatures: np.ndarray
    genes: list[str]
    cell_types: list[str]
    cells: sp.csr_matrix | None = None
    labels: np.ndarray | None = None
    n_cells_per_type: np.ndarray | None = field(default=None)

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
    def library_sizes(self) -> np.ndarray:
        """Mean total counts per cell of each type (n_types,)."""
        return self.signatures.sum(0)

    @classmethod
    def from_cells(
        cls,
        counts,
        labels,
        genes,
        min_cells: int = 1,
        cell_types: list[str] | None = None,
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
        """
        x = sp.csr_matrix(counts, dtype=np.float64)
        labels = np.asarray(labels).astype(str)
        if x.shape[0] != labels.shape[0]:
            raise ValueError(
                f"reference counts have {x.shape[0]} cells but {labels.shape[0]} labels"
            )
        if x.shape[1] != len(genes):
            raise ValueError(f"reference counts have {x.shape[1]} genes but {len(genes)} names")
        _check_counts(x.data, "reference counts")
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
        return cls(sig, list(genes), list(cell_types), x.tocsr(), lab, n_cells)

    @classmethod
    def from_signatures(cls, signatures, genes, cell_types) -> Reference:
        """A reference given directly as a (genes x types) table of mean counts per cell."""
        return cls(np.asarray(signatures, dtype=np.float64), list(genes), list(cell_types))

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


def _check_counts(values: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} contain NaN or infinite values")
    if (values < 0).any():
        raise ValueError(f"{what} contain negative values")


def _dups(names) -> list[str]:
    seen, dups = set(), []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    return dups[:5]
