"""Match the genes of a slide to those of a reference.

Each side may name its genes by symbol (``Snap25``, ``SNAP25``, ``snap25``) or by Ensembl
ID (``ENSMUSG00000027273`` with or without a ``.version`` suffix), in ``var_names`` or in a
``var`` column. We try every naming of one side against every naming of the other and keep
the pair that shares the most genes. Symbols compare case-insensitively (seqFISH+ writes
``Aanat``, some references ``AANAT``); IDs compare without their version suffix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["GeneMatch", "gene_namings", "match_genes"]

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$", re.IGNORECASE)
# var columns that hold another naming of the genes, most common spellings first
_NAME_COLUMNS = (
    "gene_symbols",
    "gene_symbol",
    "symbol",
    "symbols",
    "gene_name",
    "gene_names",
    "feature_name",
    "name",
    "gene_ids",
    "gene_id",
    "ensembl_id",
    "ensembl",
    "feature_id",
    "id",
)


@dataclass
class GeneMatch:
    """Which genes of the slide and of the reference are the same.

    Attributes
    ----------
    spatial_index, reference_index : ndarray of int
        Positions of the shared genes in the slide's and the reference's gene axes, in
        the same order (the reference's order).
    genes : list of str
        The shared genes, spelled as in the reference's chosen naming.
    naming : str
        ``"symbol"`` or ``"ensembl"``: what matched.
    spatial_naming, reference_naming : str
        Where the names came from on each side (``"var_names"`` or a ``var`` column).
    n_spatial, n_reference : int
        Number of genes on each side.
    """

    spatial_index: np.ndarray
    reference_index: np.ndarray
    genes: list[str]
    naming: str
    spatial_naming: str
    reference_naming: str
    n_spatial: int
    n_reference: int

    @property
    def n_shared(self) -> int:
        return len(self.genes)

    @property
    def fraction_of_reference(self) -> float:
        return self.n_shared / max(self.n_reference, 1)

    @property
    def fraction_of_spatial(self) -> float:
        return self.n_shared / max(self.n_spatial, 1)

    def summary(self) -> str:
        """One line for logs and the GUI."""
        return (
            f"{self.n_shared} shared genes by {self.naming} "
            f"({100 * self.fraction_of_reference:.1f}% of {self.n_reference} reference genes, "
            f"{100 * self.fraction_of_spatial:.1f}% of {self.n_spatial} slide genes)"
        )

    def to_dict(self) -> dict:
        return {
            "n_shared": self.n_shared,
            "n_spatial": self.n_spatial,
            "n_reference": self.n_reference,
            "percent_of_reference": round(100 * self.fraction_of_reference, 2),
            "percent_of_spatial": round(100 * self.fraction_of_spatial, 2),
            "naming": self.naming,
            "spatial_naming": self.spatial_naming,
            "reference_naming": self.reference_naming,
        }


def gene_namings(var: pd.DataFrame) -> dict[str, list[str]]:
    """All namings of the genes of a ``var`` table: its index and known name columns."""
    out = {"var_names": [str(g) for g in var.index]}
    lower = {str(c).lower(): c for c in var.columns}
    for name in _NAME_COLUMNS:
        col = lower.get(name)
        if col is None:
            continue
        values = var[col]
        if values.isna().all():
            continue
        out[str(col)] = ["" if pd.isna(v) else str(v) for v in values]
    return out


def _kind(names: list[str]) -> str:
    sample = [n for n in names[:2000] if n]
    hits = sum(bool(_ENSEMBL.match(n)) for n in sample)
    return "ensembl" if sample and hits >= 0.5 * len(sample) else "symbol"


def _key(name: str, kind: str) -> str:
    name = name.strip().upper()
    if kind == "ensembl":
        name = name.split(".", 1)[0]
    return name


def _first_positions(names: list[str], kind: str) -> dict[str, int]:
    """Normalised name -> first position (later duplicates after case folding are ignored)."""
    pos: dict[str, int] = {}
    for i, n in enumerate(names):
        if not n:
            continue
        pos.setdefault(_key(n, kind), i)
    return pos


def match_genes(
    spatial_var: pd.DataFrame,
    reference_var: pd.DataFrame,
    *,
    spatial_name: str = "the slide",
    reference_name: str = "the reference",
    min_shared: int = 10,
    min_fraction: float = 0.05,
) -> GeneMatch:
    """Find the genes shared by a slide and a reference.

    Parameters
    ----------
    spatial_var, reference_var : DataFrame
        ``var`` tables (index = gene names; optional columns with other namings such as
        ``gene_ids`` or ``gene_symbols``).
    spatial_name, reference_name : str
        Names of the two files, used in error messages.
    min_shared : int, default 10
        Fewer shared genes raise :class:`InputError`.
    min_fraction : float, default 0.05
        A smaller share of the reference's genes raises :class:`InputError`.

    Returns
    -------
    GeneMatch
    """
    s_names, r_names = gene_namings(spatial_var), gene_namings(reference_var)
    best = None
    for r_col, r_list in r_names.items():
        r_kind = _kind(r_list)
        r_pos = _first_positions(r_list, r_kind)
        for s_col, s_list in s_names.items():
            if _kind(s_list) != r_kind:
                continue
            s_pos = _first_positions(s_list, r_kind)
            shared = [k for k in r_pos if k in s_pos]
            if best is None or len(shared) > len(best[0]):
                best = (shared, s_col, r_col, s_pos, r_pos, r_kind, r_list)
    n_s, n_r = len(spatial_var.index), len(reference_var.index)
    if best is None or not best[0]:
        shared, s_col, r_col, s_pos, r_pos, kind, r_list = (
            [],
            "var_names",
            "var_names",
            {},
            {},
            "",
            [],
        )
    else:
        shared, s_col, r_col, s_pos, r_pos, kind, r_list = best
    if len(shared) < min_shared or len(shared) < min_fraction * n_r:
        s_ex = ", ".join(s_names["var_names"][:3])
        r_ex = ", ".join(r_names["var_names"][:3])
        raise InputError(
            f"only {len(shared)} genes shared between {spatial_name} ({n_s} genes, e.g. {s_ex}) "
            f"and {reference_name} ({n_r} genes, e.g. {r_ex}); need at least "
            f"{max(min_shared, int(np.ceil(min_fraction * n_r)))} — are they the same species "
            "and gene naming (symbols or Ensembl IDs)?"
        )
    r_idx = np.array([r_pos[k] for k in shared], dtype=np.int64)
    s_idx = np.array([s_pos[k] for k in shared], dtype=np.int64)
    return GeneMatch(
        spatial_index=s_idx,
        reference_index=r_idx,
        genes=[r_list[i] for i in r_idx],
        naming=kind,
        spatial_naming=s_col,
        reference_naming=r_col,
        n_spatial=n_s,
        n_reference=n_r,
    )
