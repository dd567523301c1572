"""Result tables and files, all written atomically (temp file + rename): proportions CSV,
result h5ad, per-region means CSV, run JSON, and a whole run folder (:func:`write_run`).
Also the one rule for a spot's dominant cell type (:func:`dominant_index`)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .atomic import atomic_batch, atomic_write
from .errors import InputError, one_line

__all__ = [
    "proportions_table",
    "region_means",
    "dominant_index",
    "dominant_names",
    "write_run",
    "RUN_FILES",
    "INTERVAL_FILES",
    "write_proportions_csv",
    "write_region_means_csv",
    "write_result_h5ad",
    "write_json",
    "read_proportions_csv",
]

BASE_COLUMNS = ("barcode", "x", "y", "region")


def proportions_table(
    barcodes, coords: np.ndarray, regions, proportions: np.ndarray, cell_types: list[str]
) -> pd.DataFrame:
    """One row per spot: barcode, x, y, region, then one column per cell type."""
    props = np.asarray(proportions, dtype=np.float64)
    clash = [t for t in cell_types if t in BASE_COLUMNS]
    if clash:
        raise InputError(f"cell type names clash with table columns: {clash}")
    df = pd.DataFrame(
        {
            "barcode": [str(b) for b in barcodes],
            "x": np.asarray(coords, dtype=np.float64)[:, 0],
            "y": np.asarray(coords, dtype=np.float64)[:, 1],
            "region": np.asarray(regions),
        }
    )
    types = pd.DataFrame(props, columns=list(cell_types))
    return pd.concat([df, types], axis=1)


def region_means(table: pd.DataFrame, cell_types: list[str]) -> pd.DataFrame:
    """Mean proportion of each type per region (spots with NaN rows left out), plus the
    number of spots used."""
    g = table.groupby("region", sort=True)
    means = g[list(cell_types)].mean()
    means.insert(0, "n_spots", table.dropna(subset=list(cell_types)).groupby("region").size())
    means["n_spots"] = means["n_spots"].fillna(0).astype(int)
    return means.reset_index()


def dominant_index(values) -> np.ndarray:
    """Column of each row's largest proportion (the spot's dominant cell type; the first
    one on ties), or -1 for a row with NaN (a spot with no counts on the genes used)."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(len(v), -1, dtype=np.int64)
    ok = np.isfinite(v).all(1)
    out[ok] = np.argmax(v[ok], axis=1)
    return out


def dominant_names(values, cell_types, none: str = "") -> np.ndarray:
    """Each row's dominant cell type name (:func:`dominant_index`), ``none`` for NaN rows;
    an object array."""
    names = np.array([*map(str, cell_types), none], dtype=object)
    return names[dominant_index(values)]  # -1 picks ``none``


def write_proportions_csv(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write the proportions table (NaN rows stay, as empty cells; numbers to 6
    significant digits, as ``%.6g``)."""
    return atomic_write(path, lambda tmp: _write_csv_fast(table, tmp))


def _significant(values: np.ndarray, digits: int = 6) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (the numbers ``%.6g`` prints):
    their shortest decimal form is then at most that long."""
    v = np.asarray(values, dtype=np.float64)
    out = v.copy()
    ok = np.isfinite(v) & (v != 0)
    scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(v[ok]))))
    out[ok] = np.round(v[ok] * scale) / scale
    return out


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _write_csv_fast(table: pd.DataFrame, path) -> None:
    """pandas' ``to_csv(index=False, float_format="%.6g")``, 10-20x faster (pyarrow's
    writer): a 650,000-bin Visium HD table takes ~1 s instead of ~25 s. Falls back to
    pandas where a text cell would need quotes or a column has mixed types."""
    import csv
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    out = table.copy(deep=False)
    for name in out.columns:
        col = out[name]
        if col.dtype.kind == "f":
            out[name] = _significant(col.to_numpy())
        elif col.dtype.kind == "O" or isinstance(col.dtype, pd.CategoricalDtype):
            text = col.astype(str)
            if text.str.contains(_NEEDS_QUOTES).any():
                table.to_csv(path, index=False, float_format="%.6g")
                return
    try:
        arrow = pa.Table.from_pandas(out, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        table.to_csv(path, index=False, float_format="%.6g")
        return
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([str(c) for c in table.columns])
    with open(path, "wb") as fh:
        fh.write(header.getvalue().encode("utf-8"))
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(arrow, fh, options)


def write_region_means_csv(path: str | os.PathLike, means: pd.DataFrame) -> Path:
    return atomic_write(path, lambda tmp: means.to_csv(tmp, index=False, float_format="%.6g"))


def read_proportions_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read back a proportions CSV (barcodes as strings)."""
    return pd.read_csv(path, dtype={"barcode": str})


def write_json(path: str | os.PathLike, data: dict) -> Path:
    text = json.dumps(_jsonable(data), indent=2, sort_keys=False)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def write_result_h5ad(
    path: str | os.PathLike,
    adata,
    table: pd.DataFrame,
    cell_types: list[str],
    metadata: dict,
    intervals: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """The slide with its results: ``obsm["stlnmf_proportions"]`` (DataFrame, one column per
    type), ``obs["stlnmf_region"]``, ``obs["stlnmf_dominant_type"]`` and the run's
    parameters, genes and versions in ``uns["stlnmf"]``; with ``intervals`` (lower, upper)
    also ``obsm["stlnmf_q05"]`` and ``obsm["stlnmf_q95"]`` (the same columns)."""
    import anndata as ad

    # a new AnnData around the slide's parts (X, up to 10^8 counts, is shared and written
    # separately; adata.copy() would copy it for nothing): the slide is never modified
    x = adata.X
    out = ad.AnnData(
        X=None,
        obs=adata.obs.copy(),
        var=adata.var.copy(),
        uns=dict(adata.uns),
        obsm=dict(adata.obsm),
        varm=dict(adata.varm),
        layers=dict(adata.layers),
        obsp=dict(adata.obsp),
        varp=dict(adata.varp),
    )
    if adata.raw is not None:
        out.raw = adata.raw.to_adata()
    props = table[list(cell_types)].copy()
    props.index = out.obs_names
    out.obsm["stlnmf_proportions"] = props
    if intervals is not None:
        for key, bound in zip(("stlnmf_q05", "stlnmf_q95"), intervals):
            out.obsm[key] = pd.DataFrame(
                np.asarray(bound, dtype=np.float64), index=out.obs_names, columns=props.columns
            )
    out.obs["stlnmf_region"] = pd.Categorical(np.asarray(table["region"]).astype(str))
    dominant = dominant_names(props.to_numpy(), cell_types)
    out.obs["stlnmf_dominant_type"] = pd.Categorical(dominant.astype(str))
    out.uns["stlnmf"] = _h5ad_safe(metadata)

    # gzip level 1: a 650,000-bin, 120M-count slide writes in ~9 s instead of ~15 s at
    # h5py's default level 4, for a file ~10 % larger; still plain gzip, readable anywhere.
    # A sparse X is deflated in parallel (io/h5_write.py): 8 s -> ~4 s on 2 cores.
    def write(tmp):
        if x is not None and not (sp.issparse(x) and x.format == "csr"):
            out.X = x
        out.write_h5ad(tmp, compression="gzip", compression_opts=1)
        if out.X is None and x is not None:
            import h5py

            from .h5_write import write_csr_group

            with h5py.File(tmp, "a") as f:
                write_csr_group(f, "X", x, level=1)

    return atomic_write(path, write)


#: The files of a run folder (:func:`write_run`), in the order they are written.
RUN_FILES = ("proportions.csv", "region_means.csv", "result.h5ad", "proportions.png", "run.json")
#: The lower and upper bounds of the 90 % intervals, beside proportions.csv and in its
#: layout, when the model has intervals.
INTERVAL_FILES = ("proportions_q05.csv", "proportions_q95.csv")


def write_run(
    out: str | os.PathLike,
    adata,
    result,
    *,
    figure: bool = True,
    started: float | None = None,
) -> Path:
    """Write a run folder: :data:`RUN_FILES`, all or none.

    Parameters
    ----------
    out : path
        The folder (created with its parents).
    adata : AnnData
        The slide, for ``result.h5ad``.
    result : DeconvolutionResult
        Of :func:`napari_stlnmf.pipeline.deconvolve` (its ``table``, ``region_means``,
        ``cell_types`` and ``metadata``).
    figure : bool, default True
        Also draw ``proportions.png``.
    started : float, optional
        A :func:`time.perf_counter` reading at the start of the run: ``run.json``'s
        ``timings.total_seconds`` (also set in ``result.metadata``) then runs up to the
        moment ``run.json`` is written.

    Returns the folder. One atomic batch: a failure (full disk, Ctrl-C) leaves the files
    already there unchanged. Raises InputError when the folder cannot be written.
    """
    from .figures import write_proportion_maps

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_batch():
            write_proportions_csv(out / "proportions.csv", result.table)
            write_region_means_csv(out / "region_means.csv", result.region_means)
            intervals = None
            if getattr(result, "lower", None) is not None:
                intervals = (result.lower, result.upper)
                for name, which in zip(INTERVAL_FILES, ("lower", "upper")):
                    write_proportions_csv(out / name, result.interval_table(which))
            write_result_h5ad(
                out / "result.h5ad",
                adata,
                result.table,
                result.cell_types,
                result.metadata,
                intervals=intervals,
            )
            if figure:
                write_proportion_maps(out / "proportions.png", result.table, result.cell_types)
            if started is not None:
                total = round(time.perf_counter() - started, 3)
                result.metadata.setdefault("timings", {})["total_seconds"] = total
            write_json(out / "run.json", result.metadata)
    except OSError as e:
        reason = e.strerror or one_line(e)
        raise InputError(
            f"could not write the outputs in {out}: {reason}; the files already there are unchanged"
        ) from e
    return out


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _h5ad_safe(v):
    """anndata stores nested dicts of str/number/array, but not None or mixed lists."""
    if isinstance(v, dict):
        return {str(k): _h5ad_safe(x) for k, x in v.items() if x is not None}
    if isinstance(v, list | tuple):
        if all(isinstance(x, str) for x in v):
            return np.array([str(x) for x in v], dtype=object) if v else np.array([], dtype=str)
        if all(isinstance(x, int | float | np.number) and not isinstance(x, bool) for x in v):
            return np.asarray(v, dtype=np.float64 if any(isinstance(x, float) for x in v) else None)
        return json.dumps(_jsonable(v))
    if isinstance(v, str | Path):
        return str(v)  # also plain-str a TorchVersion and the like
    if isinstance(v, bool | np.bool_):
        return bool(v)
    return v
