"""npe2 writer for File ▸ Save Layers: napari-stlnmf Points layers -> CSV, written atomically.

- A cell-type result layer (any one of them, or all: each holds the whole table) gives the
  proportions CSV of ``stlnmf deconvolve`` (barcode, x, y, region, one column per type),
  and, when the run has 90 % intervals, ``NAME_q05.csv`` and ``NAME_q95.csv`` beside it
  (the files ``stlnmf deconvolve`` writes as ``proportions_q05.csv`` / ``_q95.csv``).
- A slide's spots layer gives the per-spot table: barcode, x, y, region (as painted), total
  counts and, after a run, the proportions and the dominant type.
- Any other single Points layer is handed to napari's own points writer, so listing this
  writer first (see :func:`prefer_this_writer`) never changes what napari writes for layers
  that are not ours.
"""

from __future__ import annotations

from typing import Any

from .gui.meta import Kind, meta_in

WRITER_COMMAND = "napari-stlnmf.write_proportions"


def _positions(data, table) -> None:
    """Positions as shown (a user may have moved points): (row, col) -> (x, y)."""
    import numpy as np

    pts = np.asarray(data, dtype=np.float64)
    if pts.shape == (len(table), 2):
        table["x"], table["y"] = pts[:, 1], pts[:, 0]


def _result_table(data, attributes: dict):
    from napari_stlnmf.io.export import BASE_COLUMNS

    meta = meta_in(attributes)
    types = meta.get("cell_types")
    feats = attributes.get("features")
    if meta.get("kind") != Kind.RESULT or not types or feats is None:
        return None
    cols = [*BASE_COLUMNS, *types]
    if any(c not in feats.columns for c in cols):
        return None
    table = feats[cols].copy()
    _positions(data, table)
    return table


def _spots_table(data, attributes: dict):
    meta = meta_in(attributes)
    feats = attributes.get("features")
    if meta.get("kind") != Kind.SPOTS or feats is None or "barcode" not in feats.columns:
        return None
    table = feats[["barcode"]].copy()
    table["x"], table["y"] = 0.0, 0.0
    _positions(data, table)
    keep = [c for c in feats.columns if c not in ("barcode", "log_counts")]
    for c in keep:
        table[c] = feats[c].to_numpy()
    return table


def interval_paths(path) -> tuple[str, str]:
    """Where the bounds of the 90 % intervals go beside an exported proportions CSV:
    ``NAME_q05.csv`` and ``NAME_q95.csv`` (``proportions.csv`` -> ``proportions_q05.csv``,
    as ``stlnmf deconvolve`` names them)."""
    from pathlib import Path

    p = Path(path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return str(p.with_name(f"{stem}_q05.csv")), str(p.with_name(f"{stem}_q95.csv"))


def _write_with_intervals(path, table, meta: dict) -> list[str]:
    """The proportions CSV and, when the layer has them, its interval bounds beside it:
    all files or none."""
    from napari_stlnmf.io.atomic import atomic_batch
    from napari_stlnmf.io.export import write_proportions_csv

    bounds = [meta.get("q05"), meta.get("q95")]
    types = meta.get("cell_types") or []
    written = [str(path)]
    with atomic_batch():
        write_proportions_csv(path, table)
        if all(
            b is not None and getattr(b, "shape", None) == (len(table), len(types)) for b in bounds
        ):
            for target, bound in zip(interval_paths(path), bounds):
                t = table.copy()
                t[types] = bound
                write_proportions_csv(target, t)
                written.append(target)
    return written


def write_proportions(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write the table of the given napari-stlnmf Points layers to ``path`` (CSV).

    Returns ``[path]``. A single Points layer that is not ours goes to napari's points
    writer; several such layers raise a ``TypeError`` that names them (napari turns a
    writer's ``ValueError`` into "not a valid writer" and drops the message; a
    ``TypeError`` reaches the user as it is).
    """
    from napari_stlnmf.io.export import write_proportions_csv

    points = [(d, a) for d, a, t in layer_data if t == "points"]
    for data, attributes in points:
        table = _result_table(data, attributes)
        if table is not None:
            return _write_with_intervals(path, table, meta_in(attributes))
    for data, attributes in points:
        table = _spots_table(data, attributes)
        if table is not None:
            write_proportions_csv(path, table)
            return [str(path)]
    if len(layer_data) == 1 and len(points) == 1:
        from napari_builtins.io import napari_write_points

        data, attributes = points[0]
        written = napari_write_points(str(path), data, attributes)
        return [written] if written else []
    names = ", ".join(repr(a.get("name", "?")) for _, a, _ in layer_data)
    raise TypeError(
        f"napari-stlnmf writes cell-type result layers and slide spots layers as CSV; "
        f"{names} are neither: select one of those, or save these layers one at a time"
    )


def prefer_this_writer() -> bool:
    """List this writer before napari's built-in points CSV writer.

    napari offers writers in npe2's registration order, and the built-in points writer
    registers first, so File ▸ Save Selected Layers on a result layer would default to
    napari's coordinate CSV. npe2 has no public priority for writers (napari's
    ``extension2writer`` setting is not read anywhere), so this moves our entries to the
    front of npe2's writer list. Layers that are not ours still reach napari's writer
    (see :func:`write_proportions`). Returns True when the order was changed or already
    right; False when npe2's internals moved (nothing is changed then).
    """
    try:
        from npe2 import PluginManager

        registry = PluginManager.instance()._contrib
        entries = list(registry._writers)
    except Exception:  # npe2 internals differ: keep napari's order
        return False
    ours = [e for e in entries if getattr(e[-1], "command", "") == WRITER_COMMAND]
    if not ours:
        return False
    if entries[: len(ours)] != ours:
        registry._writers = ours + [e for e in entries if e not in ours]
    return True


def activate(context=None) -> None:
    """npe2 ``on_activate`` hook: runs once, when any command of the plugin first runs."""
    prefer_this_writer()
