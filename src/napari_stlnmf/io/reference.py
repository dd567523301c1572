"""Cell-type references from files: single cells (``.h5ad``, 10x MTX + labels CSV) or a
signature table (CSV/TSV).

Normalisation (what the numbers mean)
-------------------------------------
For single cells with raw counts ``x_c`` (over all the reference's genes) and library size
``L_c = sum_g x_cg``, each type ``t`` gets

* ``profiles[g, t]``: mean normalised expression, ``mean_c (x_cg / L_c) * 1e4`` (counts per
  10,000; used to rank marker genes and exported for inspection);
* ``library_sizes[t]``: mean library size ``mean_c L_c`` (used to turn cell fractions into
  mRNA fractions);
* the engine's signature (built per gene selection by :meth:`ReferenceSource.to_reference`):
  mean raw counts per cell ``mean_c x_cg``, so a spot holding ``n_t`` cells of type ``t``
  expects ``sum_t n_t B[g, t]`` counts and the fitted amounts are cells, not mRNA.

A signature table gives ``B`` directly (genes in rows, types in columns, mean counts per
cell). If it has a row named ``library_size``, its columns are first normalised to sum to
one and then scaled by that row, so tables of normalised profiles work too.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.reference import Reference
from .counts import non_integer as _non_integer
from .errors import InputError, one_line

__all__ = [
    "ReferenceSource",
    "read_reference",
    "reference_from_anndata",
    "LABEL_KEY_GUESSES",
    "SmallTypesWarning",
    "label_columns",
    "label_column_problem",
    "check_not_a_slide",
]

LABEL_KEY_GUESSES = (
    "cell_type",
    "celltype",
    "cell_types",
    "CellType",
    "cell_type_major",
    "annotation",
    "cluster",
    "clusters",
    "labels",
    "label",
)


#: obs columns that hold positions or spot flags, never cell types (Space Ranger, squidpy,
#: Xenium/CosMx exports): a spatial slide opened as a reference offers these first.
COORDINATE_COLUMNS = frozenset(
    {
        "x", "y", "z", "array_row", "array_col", "row", "col", "in_tissue",
        "pxl_row_in_fullres", "pxl_col_in_fullres", "imagerow", "imagecol",
        "x_centroid", "y_centroid", "center_x", "center_y", "x_location", "y_location",
        "spatial1", "spatial2", "x_global_px", "y_global_px", "cell_area", "nucleus_area",
    }
)  # fmt: skip


def label_column_problem(values: pd.Series, name: str) -> str | None:
    """Why ``values`` cannot be a cell-type column, or None when it can.

    A label column is categorical, text or boolean-like (integers only when they take few
    values: cluster numbers), has at least 2 distinct values, is not a coordinate and is
    not an identifier (nearly one value per cell).
    """
    if str(name).lower() in COORDINATE_COLUMNS:
        return f"column {name!r} holds coordinates, not cell types"
    v = values.dropna()
    n_unique = int(v.nunique())
    if n_unique < 2:
        return f"column {name!r} has {n_unique} distinct value(s); at least 2 are needed"
    if pd.api.types.is_float_dtype(v.dtype):
        return f"column {name!r} holds decimal numbers (a score or a coordinate), not cell types"
    if pd.api.types.is_integer_dtype(v.dtype) and n_unique > 100:
        return f"column {name!r} holds {n_unique} different integers (counts or ids)"
    if len(v) >= 50 and n_unique > 0.5 * len(v):
        return f"column {name!r} has {n_unique} values for {len(v)} cells: an identifier"
    return None


def label_columns(obs: pd.DataFrame) -> list[str]:
    """The ``obs`` columns that can hold cell types (see :func:`label_column_problem`), the
    usual names of :data:`LABEL_KEY_GUESSES` first."""
    ok = [str(c) for c in obs.columns if label_column_problem(obs[c], str(c)) is None]
    guessed = [g for g in LABEL_KEY_GUESSES if g in ok]
    return guessed + [c for c in ok if c not in guessed]


class SmallTypesWarning(UserWarning):
    """Cell types with fewer than ``min_cells`` cells were left out of the reference."""


@dataclass
class ReferenceSource:
    """A reference as read from disk, over all its genes (before matching to a slide).

    Attributes
    ----------
    path : Path
    var : DataFrame
        Gene table (index = gene names, other namings as columns).
    cell_types : list of str
    profiles : ndarray (n_genes, n_types)
        Mean normalised expression (counts per 10,000).
    library_sizes : ndarray (n_types,)
        Mean counts per cell (all genes).
    cells, labels : CSR (n_cells, n_genes) raw counts and int labels, or None for a table
    signatures : ndarray (n_genes, n_types) or None
        For a signature table: mean counts per cell.
    label_key : str or None
    n_cells : ndarray (n_types,) or None
    dropped_types : dict
        Types left out for having fewer than ``min_cells`` cells -> their cell count.
    """

    path: Path
    var: pd.DataFrame
    cell_types: list[str]
    profiles: np.ndarray
    library_sizes: np.ndarray
    cells: sp.csr_matrix | None = None
    labels: np.ndarray | None = None
    signatures: np.ndarray | None = None
    label_key: str | None = None
    n_cells: np.ndarray | None = None
    dropped_types: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "cells" if self.cells is not None else "signatures"

    def to_reference(self, gene_index, genes: list[str]) -> Reference:
        """The engine's :class:`Reference` over the given genes (positions into ``var``),
        carrying :attr:`library_sizes` (over all the reference's genes).

        Raises
        ------
        InputError
            The reference is unusable on these genes (e.g. a cell type has no counts on
            any of them).
        """
        idx = np.asarray(gene_index, dtype=np.int64)
        try:
            if self.cells is not None:
                names = np.array(self.cell_types, dtype=object)[self.labels]
                return Reference.from_cells(
                    self.cells[:, idx],
                    names,
                    list(genes),
                    cell_types=list(self.cell_types),
                    library_sizes=self.library_sizes,
                )
            return Reference.from_signatures(
                self.signatures[idx], list(genes), self.cell_types, library_sizes=self.library_sizes
            )
        except ValueError as e:  # the core's checks of a reference built from this file
            raise InputError(str(e)) from None

    def summary(self) -> dict:
        out = {
            "path": str(self.path),
            "kind": self.kind,
            "label_key": self.label_key,
            "n_genes": int(self.var.shape[0]),
            "cell_types": list(self.cell_types),
            "library_sizes": [float(v) for v in self.library_sizes],
            "dropped_types": {k: int(v) for k, v in self.dropped_types.items()},
        }
        if self.n_cells is not None:
            out["n_cells"] = [int(v) for v in self.n_cells]
        return out


def read_reference(
    path: str | os.PathLike,
    label_key: str | None = None,
    *,
    labels: str | os.PathLike | None = None,
    min_cells: int = 5,
) -> ReferenceSource:
    """Read a cell-type reference.

    Parameters
    ----------
    path : path
        A single-cell ``.h5ad`` (raw counts in ``X``, ``layers["counts"]`` or ``.raw``), a
        10x MTX folder (``matrix.mtx[.gz]``, ``barcodes.tsv[.gz]``, ``features.tsv[.gz]``)
        with ``labels``, or a signature table ``.csv``/``.tsv`` (genes x types).
    label_key : str, optional
        The ``obs`` column (or labels-CSV column) holding cell types; by default the first
        of :data:`LABEL_KEY_GUESSES` that exists.
    labels : path, optional
        For an MTX folder: CSV with the cell barcode in the first column and the label
        column.
    min_cells : int, default 5
        Types with fewer cells are left out and reported (``dropped_types`` and a
        :class:`SmallTypesWarning`).

    Returns
    -------
    ReferenceSource
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"reference not found: no such file or folder {p}")
    name = p.name.lower()
    if name.endswith(".h5ad"):
        import anndata

        try:
            a = anndata.read_h5ad(p)
        except Exception as e:  # h5py/anndata raise many types for broken files
            raise InputError(
                f"reference {p} is not a readable .h5ad file ({one_line(e, limit=160)})"
            ) from None
        return reference_from_anndata(a, label_key, min_cells=min_cells, path=p)
    if p.is_dir() or name.endswith((".mtx", ".mtx.gz")):
        if labels is None:
            raise InputError(
                f"reference {p} is a matrix folder: also give the cell labels CSV "
                "(--labels FILE, barcode + label columns)"
            )
        counts, var, barcodes = _read_mtx_cells(p)
        obs = _read_labels_csv(Path(labels), barcodes)
        return _from_cells(p, counts, var, obs, label_key, min_cells)
    if name.endswith((".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")):
        return _read_signature_table(p)
    raise InputError(
        f"reference {p}: unknown format (expected a single-cell .h5ad, a 10x MTX folder with "
        "--labels, or a signature table .csv/.tsv)"
    )


def reference_from_anndata(
    adata, label_key: str | None = None, *, min_cells: int = 5, path=None
) -> ReferenceSource:
    """A :class:`ReferenceSource` from an in-memory single-cell AnnData (raw counts in
    ``X``, ``layers["counts"]`` or ``.raw``); see :func:`read_reference`."""
    p = Path(path) if path is not None else Path("<AnnData>")
    counts, var, obs = _cells_of(adata, p)
    spatial = "spatial" in getattr(adata, "obsm", {})
    return _from_cells(p, counts, var, obs, label_key, min_cells, spatial=spatial)


# --------------------------------------------------------------------------------------
def _cells_of(a, p: Path):
    counts = a.X
    if "counts" in a.layers and _non_integer(counts):
        counts = a.layers["counts"]
    elif a.raw is not None and _non_integer(counts) and a.raw.shape[1] == a.shape[1]:
        counts = a.raw.X
    if counts is None:
        raise InputError(f"reference {p} has no expression matrix (X is empty)")
    return counts, a.var.copy(), a.obs.copy()


def _read_mtx_cells(p: Path):
    from .tenx import read_10x_mtx

    folder = p.parent if p.is_file() else p
    counts, barcodes, var = read_10x_mtx(folder)
    return counts, var, list(barcodes)


def _read_labels_csv(path: Path, barcodes: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"labels file not found: {path}")
    try:
        obs = pd.read_csv(path, sep=None, engine="python", dtype=str)  # keep "0001" as is
        obs = obs.set_index(obs.columns[0])
    except Exception as e:
        raise InputError(
            f"labels file {path} is not a readable table ({one_line(e, limit=160)})"
        ) from None
    obs.index = obs.index.astype(str)
    missing = [b for b in barcodes if b not in obs.index]
    if missing:
        raise InputError(
            f"labels file {path} has no row for {len(missing)} of {len(barcodes)} cells "
            f"(e.g. {', '.join(missing[:3])})"
        )
    return obs.loc[barcodes]


def check_not_a_slide(usable: list[str], spatial: bool, p) -> None:
    """Refuse the usual mix-up: a spatial slide (``obsm["spatial"]``, no column that can
    hold cell types) chosen as the reference. ``usable`` is :func:`label_columns`."""
    if spatial and not usable:
        raise InputError(
            f"reference {p} looks like a spatial slide (spot coordinates in obsm['spatial'], "
            "no cell-type column): the reference must be single cells with a cell-type column"
        )


def _choose_label_key(
    obs: pd.DataFrame, label_key: str | None, p: Path, spatial: bool = False
) -> str:
    cols = [str(c) for c in obs.columns]
    usable = label_columns(obs)
    if label_key is not None:
        if label_key not in obs.columns:
            raise InputError(
                f"reference {p} has no column {label_key!r}; its cell columns are: "
                f"{', '.join(cols[:15]) or '(none)'}"
            )
        problem = label_column_problem(obs[label_key], label_key)
        if problem is not None:
            check_not_a_slide(usable, spatial, p)
            hint = f"; columns that can: {', '.join(usable[:10])}" if usable else ""
            raise InputError(f"reference {p}: {problem}{hint}")
        return label_key
    check_not_a_slide(usable, spatial, p)
    for guess in LABEL_KEY_GUESSES:
        if guess in usable:
            return guess
    raise InputError(
        f"reference {p}: give the cell-type column with --label-key; its cell columns are: "
        f"{', '.join(cols[:15]) or '(none)'}"
    )


def _from_cells(p, counts, var, obs, label_key, min_cells, spatial=False) -> ReferenceSource:
    key = _choose_label_key(obs, label_key, p, spatial)
    x = sp.csr_matrix(counts, dtype=np.float64)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"reference {p} is empty ({x.shape[0]} cells x {x.shape[1]} genes)")
    if x.shape[1] != var.shape[0]:
        raise InputError(
            f"reference {p}: matrix has {x.shape[1]} genes but the gene table {var.shape[0]}"
        )
    if not np.all(np.isfinite(x.data)):
        raise InputError(f"reference {p} contains NaN or infinite values")
    if (x.data < 0).any():
        raise InputError(f"reference {p} contains negative values: raw counts are needed")
    if _non_integer(x) and x.data.size and x.data.max() <= 50:
        raise InputError(
            f"reference {p} looks log-normalised (non-integer values, max "
            f"{x.data.max():.3g}): give raw counts (in X, layers['counts'] or .raw)"
        )
    if len(set(map(str, var.index))) != var.shape[0]:
        from anndata.utils import make_index_unique

        var = var.copy()
        var.index = make_index_unique(pd.Index([str(g) for g in var.index]))
    raw_labels = obs[key]
    lib = np.asarray(x.sum(1)).ravel()
    usable = (lib > 0) & raw_labels.notna().to_numpy()
    labels = raw_labels.astype(str).to_numpy()
    names, counts_per = np.unique(labels[usable], return_counts=True)
    small = {str(t): int(c) for t, c in zip(names, counts_per) if c < min_cells}
    types = [str(t) for t, c in zip(names, counts_per) if c >= min_cells]
    if small:
        warnings.warn(
            f"reference {p}: left out {len(small)} cell type(s) with fewer than {min_cells} "
            f"cells: {', '.join(f'{t} ({c})' for t, c in list(small.items())[:8])}",
            SmallTypesWarning,
            stacklevel=3,
        )
    if len(types) < 2:
        raise InputError(
            f"reference {p}: column {key!r} has {len(types)} cell type(s) with at least "
            f"{min_cells} cells; at least 2 are needed"
        )
    index = {t: i for i, t in enumerate(types)}
    lab = np.array([index.get(t, -1) for t in labels], dtype=np.int64)
    keep = usable & (lab >= 0)
    x, lab, lib = x[keep], lab[keep], lib[keep]
    k = len(types)
    onehot = sp.csr_matrix((np.ones(lab.size), (lab, np.arange(lab.size))), shape=(k, lab.size))
    n_cells = np.asarray(onehot.sum(1)).ravel()
    norm = sp.diags(1e4 / lib) @ x
    profiles = np.asarray((onehot @ norm).todense()).T / n_cells[None, :]
    library_sizes = (onehot @ lib) / n_cells
    return ReferenceSource(
        path=p,
        var=var,
        cell_types=types,
        profiles=profiles,
        library_sizes=library_sizes,
        cells=x.tocsr(),
        labels=lab,
        label_key=key,
        n_cells=n_cells,
        dropped_types=small,
    )


def _read_signature_table(p: Path) -> ReferenceSource:
    sep = "\t" if p.name.lower().endswith((".tsv", ".tsv.gz", ".txt")) else ","
    try:
        table = pd.read_csv(p, sep=sep, index_col=0)
    except Exception as e:
        raise InputError(
            f"signature table {p} is not a readable table ({one_line(e, limit=160)})"
        ) from None
    table.index = table.index.astype(str)
    lib_rows = [i for i in table.index if i.strip().lower() in ("library_size", "library_sizes")]
    lib = None
    if lib_rows:
        lib = pd.to_numeric(table.loc[lib_rows[0]], errors="coerce").to_numpy(dtype=np.float64)
        table = table.drop(index=lib_rows)
    bad_cols = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad_cols:
        raise InputError(
            f"signature table {p}: columns {bad_cols[:3]} are not numeric (expected genes in "
            "rows, one numeric column per cell type)"
        )
    sig = table.to_numpy(dtype=np.float64)
    if sig.ndim != 2 or sig.shape[1] < 2 or sig.shape[0] == 0:
        raise InputError(
            f"signature table {p} has shape {sig.shape}; need genes x (>= 2 cell types)"
        )
    if not np.all(np.isfinite(sig)) or (sig < 0).any():
        raise InputError(f"signature table {p} has NaN, infinite or negative values")
    dups = table.index[table.index.duplicated()].tolist()
    if dups:
        raise InputError(f"signature table {p} has duplicated genes: {dups[:5]}")
    totals = sig.sum(0)
    if (totals <= 0).any():
        empty = [str(c) for c, t in zip(table.columns, totals) if t <= 0]
        raise InputError(f"signature table {p}: all-zero cell types {empty[:5]}")
    if lib is not None:
        if not np.all(np.isfinite(lib)) or (lib <= 0).any():
            raise InputError(f"signature table {p}: the library_size row must be positive")
        sig = sig / totals[None, :] * lib[None, :]
        totals = lib
    types = [str(c) for c in table.columns]
    return ReferenceSource(
        path=p,
        var=pd.DataFrame(index=table.index),
        cell_types=types,
        profiles=sig / totals[None, :] * 1e4,
        library_sizes=totals.astype(np.float64),
        signatures=sig,
    )
