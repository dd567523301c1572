"""npe2 writer: proportions Points layers -> the proportions CSV of ``stlnmf deconvolve``
(barcode, x, y, region, one column per type), written atomically."""

from __future__ import annotations

from typing import Any


def _table_of(data, attributes: dict):
    import numpy as np

    from napari_stlnmf.io.export import BASE_COLUMNS

    meta = (attributes.get("metadata") or {}).get("stlnmf") or {}
    types = meta.get("cell_types")
    feats = attributes.get("features")
    if not types or feats is None or meta.get("kind") != "result":
        return None
    cols = [*BASE_COLUMNS, *types]
    if any(c not in feats.columns for c in cols):
        return None
    table = feats[cols].copy()
    # positions as shown (a user may have moved points): (row, col) -> (y, x)
    pts = np.asarray(data, dtype=np.float64)
    if pts.shape == (len(table), 2):
        table["x"], table["y"] = pts[:, 1], pts[:, 0]
    return table


def write_proportions(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write the proportions table held by the given result layers to ``path`` (CSV).

    Every per-type layer holds the whole table, so any one of them (or all) gives the same
    file. Returns ``[path]``, or ``[]`` when no layer is a napari-stlnmf result.
    """
    from napari_stlnmf.io.export import write_proportions_csv

    for data, attributes, layer_type in layer_data:
        if layer_type != "points":
            continue
        table = _table_of(data, attributes)
        if table is not None:
            write_proportions_csv(path, table)
            return [str(path)]
    return []
