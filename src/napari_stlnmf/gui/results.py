"""Deconvolution results as napari layers: one Points layer per cell type (coloured by
proportion), a dominant-type layer, grid view, and the raster path for large slides.

Result layers are found again by ``metadata["stlnmf"]`` (role, cell type, slide), so a
re-run updates them in place instead of adding copies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io.export import BASE_COLUMNS
from .layers import LARGE_SLIDE_SPOTS, META
from .raster import rasterize_spots

__all__ = [
    "show_results",
    "iter_show_results",
    "result_layers",
    "set_raster_type",
    "set_grid",
]


def _meta(layer) -> dict:
    return layer.metadata.get(META, {}) if hasattr(layer, "metadata") else {}


def result_layers(viewer, slide: str | None = None, role: str | None = None) -> list:
    """Result layers of ``slide`` (any slide if None), optionally of one ``role``
    (``proportion``, ``dominant``, ``raster``, ``raster_dominant``)."""
    out = []
    for layer in viewer.layers:
        m = _meta(layer)
        if m.get("kind") != "result":
            continue
        if slide is not None and m.get("slide") != slide:
            continue
        if role is not None and m.get("role") != role:
            continue
        out.append(layer)
    return out


def _dominant(values: np.ndarray) -> np.ndarray:
    """1-based index of the largest proportion (0 for NaN rows)."""
    ok = np.isfinite(values).all(1)
    out = np.zeros(len(values), dtype=np.int32)
    out[ok] = np.argmax(values[ok], axis=1) + 1
    return out


def _category_colors(cell_types: list[str]) -> dict:
    """A distinct colour per type (matplotlib's tab20, then tab20b / tab20c)."""
    import matplotlib

    palette = []
    for name in ("tab20", "tab20b", "tab20c"):
        palette.extend(matplotlib.colormaps[name].colors)
    return {t: (*map(float, palette[i % len(palette)][:3]), 1.0) for i, t in enumerate(cell_types)}


def show_results(viewer, table: pd.DataFrame, cell_types: list[str], **kwargs) -> list:
    """Add or update result layers for a proportions table (all at once); see
    :func:`iter_show_results` for the parameters."""
    return list(iter_show_results(viewer, table, cell_types, **kwargs))


def iter_show_results(
    viewer,
    table: pd.DataFrame,
    cell_types: list[str],
    *,
    slide: str = "slide",
    spot_diameter: float | None = None,
    colormap: str = "viridis",
    per_type_limits: bool = False,
    large: bool | None = None,
):
    """Add or update result layers for a proportions table, yielding each layer when it is
    on the canvas (adding a Points layer costs ~0.15 s in napari: a widget can add one per
    event-loop turn and the UI never stalls for long).

    Parameters
    ----------
    viewer : napari.Viewer
    table : DataFrame
        ``barcode, x, y, region`` + one column per type (x, y = full-resolution px).
    cell_types : list of str
    slide : str
        Name of the slide; layers of another slide are left alone.
    spot_diameter : float, optional
        Point size (full-resolution px); default 0.55 spot pitch.
    colormap : str
        Any napari colormap name.
    per_type_limits : bool, default False
        Contrast limits [0, max of the type] instead of the fixed [0, 1].
    large : bool, optional
        Force (True) or forbid (False) the raster path; by default it is used above
        :data:`~napari_stlnmf.gui.layers.LARGE_SLIDE_SPOTS` spots.

    Yields
    ------
    layers, in cell-type order then the dominant-type layer.
    """
    missing = [c for c in (*BASE_COLUMNS, *cell_types) if c not in table.columns]
    if missing:
        raise ValueError(f"the proportions table lacks columns {missing}")
    xy = table[["x", "y"]].to_numpy(dtype=np.float64)
    values = table[list(cell_types)].to_numpy(dtype=np.float64)
    if large is None:
        large = len(table) > LARGE_SLIDE_SPOTS
    if large:
        yield from _show_raster(
            viewer, table, cell_types, xy, values, slide, colormap, per_type_limits
        )
        return
    from ..core.graph import spot_pitch

    size = spot_diameter or 0.55 * (spot_pitch(xy) if len(xy) > 1 else 1.0)
    features = table[[*BASE_COLUMNS, *cell_types]].reset_index(drop=True)
    points = xy[:, ::-1].copy()
    # stale layers: types of an earlier run that this run no longer has
    for layer in result_layers(viewer, slide):
        m = _meta(layer)
        if m["role"] in ("raster", "raster_dominant") or (
            m["role"] == "proportion" and m["cell_type"] not in cell_types
        ):
            viewer.layers.remove(layer)
    existing = {_meta(ly).get("cell_type"): ly for ly in result_layers(viewer, slide, "proportion")}
    for j, t in enumerate(cell_types):
        hi = 1.0
        if per_type_limits:
            finite = values[:, j][np.isfinite(values[:, j])]
            hi = float(max(finite.max(initial=0.0), 1e-6))
        meta = {
            META: {
                "kind": "result",
                "role": "proportion",
                "cell_type": t,
                "slide": slide,
                "cell_types": list(cell_types),
            }
        }
        layer = existing.get(t)
        if layer is None or layer.data.shape != points.shape:
            if layer is not None:
                viewer.layers.remove(layer)
            layer = viewer.add_points(
                points,
                name=t,
                size=size,
                features=features,
                face_color=t,
                face_colormap=colormap,
                face_contrast_limits=(0.0, hi),
                border_width=0,
                metadata=meta,
                visible=j == 0,
            )
        else:
            layer.data = points
            layer.features = features
            layer.size = size
            layer.face_colormap = colormap
            layer.face_contrast_limits = (0.0, hi)
            layer.face_color = t
            layer.metadata = meta
        yield layer
    yield _show_dominant_points(viewer, points, size, features, values, cell_types, slide)


def _show_dominant_points(viewer, points, size, features, values, cell_types, slide):
    dom = _dominant(values)
    names = np.array(["(none)", *cell_types], dtype=object)[dom]
    feats = features.copy()
    feats["dominant_type"] = pd.Categorical(names, categories=["(none)", *cell_types])
    colors = np.asarray(list(_category_colors(["(none)", *cell_types]).values()))
    colors[0] = (0.5, 0.5, 0.5, 0.5)
    face = colors[dom]
    meta = {
        META: {
            "kind": "result",
            "role": "dominant",
            "slide": slide,
            "cell_types": list(cell_types),
            "colors": {t: tuple(map(float, c)) for t, c in zip(["(none)", *cell_types], colors)},
        }
    }
    found = result_layers(viewer, slide, "dominant")
    if found and found[0].data.shape == points.shape:
        layer = found[0]
        layer.data = points
        layer.features = feats
        layer.size = size
        layer.face_color = face
        layer.metadata = meta
        return layer
    for ly in found:
        viewer.layers.remove(ly)
    return viewer.add_points(
        points,
        name="dominant type",
        size=size,
        features=feats,
        face_color=face,
        border_width=0,
        metadata=meta,
        visible=False,
    )


def _show_raster(viewer, table, cell_types, xy, values, slide, colormap, per_type_limits):
    from ..core.graph import spot_pitch

    for layer in result_layers(viewer, slide):
        if _meta(layer)["role"] in ("proportion", "dominant"):
            viewer.layers.remove(layer)
    raster = rasterize_spots(xy, spot_pitch(xy))
    limits = [
        (0.0, float(max(np.nanmax(values[:, j]), 1e-6)) if per_type_limits else 1.0)
        for j in range(len(cell_types))
    ]
    meta = {
        META: {
            "kind": "result",
            "role": "raster",
            "slide": slide,
            "cell_types": list(cell_types),
            "values": values,
            "raster": raster,
            "limits": limits,
            "current": cell_types[0],
            "table": table,
        }
    }
    found = result_layers(viewer, slide, "raster")
    img = raster.image(values[:, 0])
    if found:
        layer = found[0]
        layer.data = img
        layer.scale = (raster.scale, raster.scale)
        layer.translate = raster.translate
        layer.metadata = meta
        layer.colormap = colormap
        layer.contrast_limits = limits[0]
        layer.name = f"{cell_types[0]} (proportion)"
    else:
        layer = viewer.add_image(
            img,
            name=f"{cell_types[0]} (proportion)",
            colormap=colormap,
            contrast_limits=limits[0],
            scale=(raster.scale,) * 2,
            translate=raster.translate,
            metadata=meta,
        )
    dom = raster.labels(_dominant(values))
    colors = _category_colors(["(none)", *cell_types])
    dmeta = {
        META: {
            "kind": "result",
            "role": "raster_dominant",
            "slide": slide,
            "cell_types": list(cell_types),
            "colors": colors,
        }
    }
    found = result_layers(viewer, slide, "raster_dominant")
    color_dict = {i + 1: colors[t] for i, t in enumerate(cell_types)}
    color_dict[None] = (0, 0, 0, 0)
    color_dict[0] = (0, 0, 0, 0)
    from napari.utils.colormaps import DirectLabelColormap

    cmap = DirectLabelColormap(color_dict=color_dict)
    if found:
        dlayer = found[0]
        dlayer.data = dom
        dlayer.scale = (raster.scale, raster.scale)
        dlayer.translate = raster.translate
        dlayer.colormap = cmap
        dlayer.metadata = dmeta
    else:
        dlayer = viewer.add_labels(
            dom,
            name="dominant type",
            scale=(raster.scale,) * 2,
            translate=raster.translate,
            metadata=dmeta,
            visible=False,
            colormap=cmap,
        )
    return [layer, dlayer]


def set_raster_type(layer, cell_type: str) -> None:
    """Show another cell type on a raster result layer (one gather + texture upload)."""
    m = _meta(layer)
    if m.get("role") != "raster":
        raise ValueError(f"layer {layer.name!r} is not a raster result layer")
    types = m["cell_types"]
    if cell_type not in types:
        raise ValueError(f"unknown cell type {cell_type!r}; the result has {types}")
    j = types.index(cell_type)
    layer.data = m["raster"].image(m["values"][:, j])
    layer.contrast_limits = m["limits"][j]
    layer.name = f"{cell_type} (proportion)"
    m["current"] = cell_type


def _grid(viewer):
    canvas = getattr(viewer, "canvas", None)  # napari >= 0.9 moved grid to the canvas
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def set_grid(viewer, enabled: bool, slide: str | None = None) -> None:
    """Tile the per-type layers side by side (other layers hidden while the grid is on;
    their visibility comes back when it is turned off)."""
    layers = result_layers(viewer, slide, "proportion")
    if enabled:
        saved = {}
        for layer in viewer.layers:
            saved[id(layer)] = layer.visible
            layer.visible = layer in layers
        _grid(viewer).stride = 1
        _grid(viewer).enabled = True
        viewer.layers.metadata_grid_visibility = saved  # type: ignore[attr-defined]
    else:
        _grid(viewer).enabled = False
        saved = getattr(viewer.layers, "metadata_grid_visibility", {})
        for layer in viewer.layers:
            if id(layer) in saved:
                layer.visible = saved[id(layer)]
