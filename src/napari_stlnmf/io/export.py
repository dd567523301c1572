"""Result files, all written atomically (temp file + rename): proportions CSV, result h5ad,
per-region means CSV, run JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write

__all__ = [
    "proportions_table",
    "region_means",
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
        raise ValueError(f"cell type names clash with table columns: {clash}")
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


def write_proportions_csv(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write the proportions table (NaN rows stay, as empty cells)."""
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))


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
) -> Path:
    """The slide with its results: ``obsm["stlnmf_proportions"]`` (DataFrame, one column per
    type), ``obs["stlnmf_region"]``, ``obs["stlnmf_dominant_type"]`` and the run's
    parameters, genes and versions in ``uns["stlnmf"]``."""
    out = adata.copy()
    props = table[list(cell_types)].copy()
    props.index = out.obs_names
    out.obsm["stlnmf_proportions"] = props
    out.obs["stlnmf_region"] = pd.Categorical(np.asarray(table["region"]).astype(str))
    values = props.to_numpy()
    dominant = np.full(len(values), "", dtype=object)
    ok = np.isfinite(values).all(1)
    dominant[ok] = np.asarray(cell_types, dtype=object)[np.argmax(values[ok], axis=1)]
    out.obs["stlnmf_dominant_type"] = pd.Categorical(dominant.astype(str))
    out.uns["stlnmf"] = _h5ad_safe(metadata)
    return atomic_write(path, lambda tmp: out.write_h5ad(tmp, compression="gzip"))


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
