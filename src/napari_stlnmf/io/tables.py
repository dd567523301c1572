"""Spatial data from ``.h5ad`` files and from plain counts + coordinates tables.

Both readers return the in-memory form documented in :mod:`napari_stlnmf.io.visium`
(CSR counts spots x genes, ``obsm["spatial"]`` float64 (n, 2) as (x, y),
``uns["spatial"][library_id]`` with ``images``, ``scalefactors`` and ``metadata``).
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from pandas.api.types import is_numeric_dtype

from .counts import non_integer
from .errors import InputError
from .visium import read_positions

__all__ = ["read_h5ad_spatial", "read_tables", "XY_COLUMNS", "BARCODE_COLUMNS"]

#: Accepted (x, y) column-name pairs, matched case-insensitively, first match wins.
XY_COLUMNS = (
    ("x", "y"),
    ("x_px", "y_px"),
    ("imagecol", "imagerow"),
    ("pxl_col_in_fullres", "pxl_row_in_fullres"),
    ("x_centroid", "y_centroid"),
)
#: Accepted names of the barcode column of a coordinates table (else its first column).
BARCODE_COLUMNS = ("barcode", "barcodes", "spot", "spot_id", "spots")
_OBS_COLUMNS = ("in_tissue", "array_row", "array_col")


def _examples(names, n: int = 3) -> str:
    names = list(names)
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return ", ".join(repr(str(s)) for s in names[:n]) + more


def _find_xy(columns) -> tuple[str, str] | None:
    lower = {str(c).lower(): c for c in columns}
    for x, y in XY_COLUMNS:
        if x in lower and y in lower:
            return lower[x], lower[y]
    return None


def _check_xy(xy: np.ndarray, file: Path, where: str) -> np.ndarray:
    try:
        xy = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{file}: {where} is not numeric") from None
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise InputError(f"{file}: {where} must have shape (n_spots, 2), got {xy.shape}")
    if not np.isfinite(xy).all():
        raise InputError(f"{file}: {where} has NaN or infinite coordinates")
    return xy


def _check_counts(x, file: Path, where: str) -> sp.csr_matrix:
    """Return ``x`` as CSR after checking it holds finite non-negative whole numbers (the
    rule of :func:`~napari_stlnmf.io.counts.non_integer`)."""
    m = sp.csr_matrix(x)
    values = m.data
    kind = values.dtype.kind
    if kind not in "iuf":
        raise InputError(f"{file}: {where} is not numeric ({values.dtype})")
    if not np.issubdtype(values.dtype, np.integer):
        if not np.isfinite(values).all():
            raise InputError(f"{file}: {where} has NaN or infinite values")
        if non_integer(values):
            raise InputError(f"{file}: {where} has non-integer values; raw counts are needed")
    if values.size and values.min() < 0:
        raise InputError(f"{file}: {where} has negative values; raw counts are needed")
    return m


def _new_library(stem: str, metadata: dict) -> dict:
    return {stem or "library": {"images": {}, "scalefactors": {}, "metadata": metadata}}


def read_h5ad_spatial(path: str | os.PathLike) -> ad.AnnData:
    """Read an ``.h5ad`` with spot coordinates into the project's in-memory form.

    Coordinates come from ``obsm["spatial"]``; without it, from a pair of ``obs``
    columns among :data:`XY_COLUMNS` (``x``/``y``, ``x_px``/``y_px``,
    ``imagecol``/``imagerow``, ``pxl_col_in_fullres``/``pxl_row_in_fullres``,
    ``x_centroid``/``y_centroid``, any case). They must be finite, shape (n, 2).
    If ``X`` holds non-integer (normalised) values and ``layers["counts"]`` exists, the
    counts layer becomes ``X``. ``X`` is made CSR. An existing ``uns["spatial"]`` is
    kept; otherwise one library named after the file is added, with no images.

    Parameters
    ----------
    path : str or PathLike
        The ``.h5ad`` file.

    Returns
    -------
    anndata.AnnData

    Raises
    ------
    InputError
        Unreadable file, no or invalid coordinates, or counts that are not finite
        non-negative integers.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"no such file: {file}")
    try:
        adata = ad.read_h5ad(file)
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise InputError(f"{file}: cannot read h5ad (truncated or corrupt?): {e}") from None
    return spatial_anndata(adata, file)


def spatial_anndata(adata: ad.AnnData, file: Path) -> ad.AnnData:
    """Check and complete a slide held as AnnData (read from ``file``, which the errors
    name), as :func:`read_h5ad_spatial` describes; modifies and returns ``adata``."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"{file}: empty data ({adata.n_obs} spots x {adata.n_vars} genes)")
    dup = adata.obs_names[adata.obs_names.duplicated()].unique()
    if len(dup):
        raise InputError(f"{file}: duplicated barcodes (obs_names) {_examples(dup)}")

    if "spatial" in adata.obsm:
        xy = adata.obsm["spatial"]
        xy = _check_xy(xy.to_numpy() if hasattr(xy, "to_numpy") else xy, file, "obsm['spatial']")
    else:
        cols = _find_xy(adata.obs.columns)
        if cols is None:
            raise InputError(
                f"{file}: no spot coordinates (looked for obsm['spatial'] and obs columns "
                f"{', '.join('/'.join(p) for p in XY_COLUMNS)})"
            )
        xy = _check_xy(adata.obs[list(cols)].to_numpy(), file, f"obs columns {cols[0]}/{cols[1]}")
    adata.obsm["spatial"] = xy

    if adata.X is None:
        raise InputError(f"{file}: no X matrix")
    x, where = adata.X, "X"
    if "counts" in adata.layers and non_integer(x):
        x, where = adata.layers["counts"], "layers['counts']"
    adata.X = _check_counts(x, file, where)

    if "gene_symbols" not in adata.var:
        adata.var["gene_symbols"] = adata.var_names.astype(str)
    if not adata.var_names.is_unique:
        adata.var_names_make_unique()
    spatial = adata.uns.get("spatial")
    if not isinstance(spatial, dict) or not spatial:
        adata.uns["spatial"] = _new_library(file.stem, {"source": "h5ad", "path": str(file)})
    else:
        for lib in spatial.values():
            if isinstance(lib, dict):
                lib.setdefault("images", {})
                lib.setdefault("scalefactors", {})
                lib.setdefault("metadata", {"source": "h5ad", "path": str(file)})
    return adata


def _open_text(file: Path):
    if file.suffix.lower() == ".gz":
        return gzip.open(file, "rt", encoding="utf-8", newline="")
    return open(file, encoding="utf-8", newline="")


def _separator(file: Path, sep: str | None) -> str:
    if sep is not None:
        return sep
    name = file.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".txt", ".tab")):
        return "\t"
    try:
        with _open_text(file) as fh:
            return csv.Sniffer().sniff(fh.readline(), delimiters=",\t; ").delimiter
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error):
        raise InputError(f"{file}: cannot tell the column separator; pass sep") from None


def _read_csv(file: Path, sep: str, **kw) -> tuple[pd.DataFrame, list[str]]:
    """Read a table; also return its raw header fields (pandas renames duplicates)."""
    if not file.is_file():
        raise InputError(f"no such file: {file}")
    try:
        with _open_text(file) as fh:
            header = next(csv.reader(fh, delimiter=sep), [])
        df = pd.read_csv(file, sep=sep, **kw)
    except (
        OSError,
        EOFError,
        zlib.error,
        UnicodeDecodeError,
        ValueError,
        csv.Error,
        pd.errors.ParserError,
    ) as e:
        raise InputError(f"{file}: cannot read table (truncated or corrupt?): {e}") from None
    if df.empty:
        raise InputError(f"{file}: empty table")
    return df, header


def _read_coords(file: Path, sep: str | None) -> pd.DataFrame:
    """Coordinates table -> DataFrame indexed by barcode with x, y and known obs columns."""
    if file.name.lower().startswith("tissue_positions"):
        pos = read_positions(file)
        out = pos.rename(columns={"pxl_col_in_fullres": "x", "pxl_row_in_fullres": "y"})
        return out[["x", "y", *_OBS_COLUMNS]]
    df, _ = _read_csv(file, _separator(file, sep))
    lower = {str(c).lower(): c for c in df.columns}
    bc = next((lower[n] for n in BARCODE_COLUMNS if n in lower), df.columns[0])
    xy = _find_xy([c for c in df.columns if c != bc])
    if xy is None:
        raise InputError(
            f"{file}: no coordinate columns (looked for "
            f"{', '.join('/'.join(p) for p in XY_COLUMNS)}, any case)"
        )
    out = pd.DataFrame(
        _check_xy(df[list(xy)].to_numpy(), file, f"columns {xy[0]}/{xy[1]}"),
        columns=["x", "y"],
        index=pd.Index(df[bc].astype(str), name=None),
    )
    for c in _OBS_COLUMNS:
        if c in lower and lower[c] != bc:
            out[c] = df[lower[c]].to_numpy()
    dup = out.index[out.index.duplicated()].unique()
    if len(dup):
        raise InputError(f"{file}: duplicated barcodes {_examples(dup)}")
    return out


def read_tables(
    counts_path: str | os.PathLike,
    coords_path: str | os.PathLike,
    orientation: str = "auto",
    sep: str | None = None,
) -> ad.AnnData:
    """Read a counts table and a coordinates table into the project's in-memory form.

    Parameters
    ----------
    counts_path : str or PathLike
        CSV/TSV (optionally gzipped): first column = row names, header = column names,
        non-negative integer counts.
    coords_path : str or PathLike
        CSV/TSV with a barcode column (named ``barcode``/``barcodes``/``spot``/``spot_id``
        /``spots``, else the first column) and x, y columns (see
        :data:`napari_stlnmf.io.tables.XY_COLUMNS`), or a Space Ranger
        ``tissue_positions*.csv``. Optional ``in_tissue``/``array_row``/``array_col``
        columns go to ``obs``.
    orientation : {"auto", "spots_x_genes", "genes_x_spots"}
        Axes of the counts table. ``"auto"``: the axis whose names match the barcodes
        of the coordinates table is the spot axis.
    sep : str, optional
        Separator of the counts table; by default tab for ``.tsv``/``.txt``, comma for
        ``.csv``, else sniffed. The coordinates table's separator is always inferred.

    Returns
    -------
    anndata.AnnData

    Raises
    ------
    InputError
        Unreadable tables, duplicated barcodes or genes, non-count values, spots
        without coordinates, or an orientation that cannot be told.
    """
    if orientation not in ("auto", "spots_x_genes", "genes_x_spots"):
        raise InputError(
            f"orientation must be auto, spots_x_genes or genes_x_spots, not {orientation!r}"
        )
    counts_file, coords_file = Path(counts_path), Path(coords_path)
    coords = _read_coords(coords_file, None)
    df, header = _read_csv(counts_file, _separator(counts_file, sep), index_col=0)
    columns = header[1:] if len(header) == df.shape[1] + 1 else header
    if len(columns) != df.shape[1]:
        columns = [str(c) for c in df.columns]
    df.columns = pd.Index([str(c) for c in columns])
    df.index = pd.Index([str(i) for i in df.index])
    for axis, names in (("row", df.index), ("column", df.columns)):
        dup = names[names.duplicated()].unique()
        if len(dup):
            raise InputError(f"{counts_file}: duplicated {axis} names {_examples(dup)}")
    bad = [c for c, dt in zip(df.columns, df.dtypes) if not is_numeric_dtype(dt)]
    if bad:
        raise InputError(f"{counts_file}: non-numeric columns {_examples(bad)}")

    if orientation == "auto":
        n_rows = int(df.index.isin(coords.index).sum())
        n_cols = int(df.columns.isin(coords.index).sum())
        if n_rows == n_cols:
            raise InputError(
                f"{counts_file}: cannot tell which axis holds the spots ({n_rows} row and "
                f"{n_cols} column names match barcodes in {coords_file.name}); "
                "pass orientation='spots_x_genes' or 'genes_x_spots'"
            )
        orientation = "spots_x_genes" if n_rows > n_cols else "genes_x_spots"
    if orientation == "genes_x_spots":
        df = df.T

    missing = df.index[~df.index.isin(coords.index)]
    if len(missing):
        raise InputError(
            f"{coords_file}: {len(missing)} of {len(df)} spots in {counts_file.name} have no "
            f"coordinates, e.g. {_examples(missing)}"
        )
    x = _check_counts(df.to_numpy(), counts_file, "counts")
    if x.nnz == 0 or x.data.max() <= np.iinfo(np.int32).max:
        x = x.astype(np.int32)
    coords = coords.loc[df.index]
    obs = coords.drop(columns=["x", "y"])
    var = pd.DataFrame({"gene_symbols": df.columns.to_numpy()}, index=df.columns)
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.obsm["spatial"] = coords[["x", "y"]].to_numpy(np.float64)
    metadata = {"source": "tables", "path": str(counts_file), "coords_path": str(coords_file)}
    adata.uns["spatial"] = _new_library(counts_file.name.split(".")[0], metadata)
    return adata
