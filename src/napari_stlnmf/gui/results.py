"""Deconvolution results as napari layers: one Points layer per cell type (coloured by
proportion), a dominant-type layer, grid view, and the raster path for large slides.

Result layers are found again by ``metadata["stlnmf"]`` (role, cell type, slide), so a
re-run updates them in place instead of adding copies.

How the maps are drawn over the H&E (issue 13, "the maps hide the tissue"):

- result layers are drawn at :data:`RESULT_OPACITY` and the slide's own spots layer is
  hidden once results exist for it;
- the colormap (viridis by default) fades out at its low end (:func:`faded_colormap`),
  so spots where a type is absent show the stain and only where the type is show colour;
- the contrast limits of every per-type layer follow a scaling (:data:`SCALINGS`),
  by default :data:`DEFAULT_SCALING` ("robust p1-p99") so rare types use the whole bar.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..io.export import BASE_COLUMNS
from .layers import LARGE_SLIDE_SPOTS, META
from .palette import NONE_NAME, category_colors
from .raster import rasterize_spots

__all__ = [
    "DEFAULT_SCALING",
    "DOMINANT_OPACITY",
    "MIN_SPAN",
    "RESULT_OPACITY",
    "SCALINGS",
    "faded_colormap",
    "iter_show_results",
    "result_layers",
    "set_grid",
    "set_raster_type",
    "set_result_opacity",
    "set_scaling",
    "show_results",
    "type_limits",
]

#: Opacity of new result layers. At 0.7 the nuclei-dense bands of the H&E (pyramidal
#: layer, dentate gyrus, ventricle walls) still show through a fully coloured spot, while
#: 70 % of the colour keeps viridis readable (a value's hue shifts by less than one step
#: of the colour bar over pink stain). Users change it in the legend dock.
RESULT_OPACITY = 0.7

#: Opacity of new dominant-type layers. A categorical colour must still match its legend
#: swatch: blended at 0.7 over eosin pink, 5 of the 30 palette colours come out closer
#: (CIEDE2000) to another type's swatch than to their own; at 0.9 none does and the
#: largest shift is 4 (the palette's closest pair is 12.6 apart).
DOMINANT_OPACITY = 0.9

#: Contrast-limit scalings: key -> label shown in the legend.
SCALINGS: dict[str, str] = {
    "linear": "linear 0–1",
    "per_type": "per type 0–max",
    "robust": "robust p1–p99",
}

#: The default scaling. A pathologist reads a per-type map for *where* a type is; with
#: fixed [0, 1] limits a rare type (CA3 peaking at 0.11) is one dark colour everywhere.
#: Per type 0-max fixes that only when the maximum is typical: on the bundled mouse brain
#: the maxima are set by a few spots (Ependymal: max 0.82, 99th percentile 0.12, so 99 % of
#: the spots would sit in the bottom 15 % of the bar). p1-p99 spreads the bulk of the
#: spots over the whole bar, the top 1 % share the brightest colour, and p1 is 0 for any
#: type absent from 1 % of the spots, so "dark" still means "absent".
DEFAULT_SCALING = "robust"

#: Smallest upper-minus-lower contrast limit of the per-type and robust scalings: a type
#: whose proportions all stay below 5 % (noise for a spot of a few cells) is not stretched
#: into bright colours.
MIN_SPAN = 0.05

#: Low end of :func:`faded_colormap`: alpha at the lowest value, and the fraction of the
#: range over which it rises to 1.
FADE_ALPHA = 0.25
FADE_RANGE = 0.25


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


def faded_colormap(name: str = "viridis"):
    """The napari colormap ``name`` with a transparent low end.

    Alpha rises linearly from :data:`FADE_ALPHA` at the lower contrast limit to 1 at
    :data:`FADE_RANGE` of the range; the colours are unchanged. Over H&E this leaves the
    tissue visible where a type is absent instead of painting it dark blue.

    Parameters
    ----------
    name : str
        Any napari colormap name.

    Returns
    -------
    napari.utils.Colormap
        Named ``"<name> faded"`` (registered with napari, so layers can use the name).
    """
    from napari.utils.colormaps import Colormap, ensure_colormap

    base = ensure_colormap(name)
    x = np.linspace(0.0, 1.0, 256)
    rgba = np.asarray(base.map(x), dtype=np.float64).copy()
    rgba[:, 3] *= np.clip(FADE_ALPHA + (1 - FADE_ALPHA) * x / FADE_RANGE, 0.0, 1.0)
    cmap = Colormap(colors=rgba, controls=x, name=f"{base.name} faded")
    ensure_colormap(cmap)  # registers the name; napari keeps the first of a name
    return cmap


def type_limits(values: np.ndarray, scaling: str = DEFAULT_SCALING) -> list[tuple[float, float]]:
    """Contrast limits of each type (column) of a proportions array.

    Parameters
    ----------
    values : ndarray (n_spots, n_types)
        Proportions; NaN rows are ignored.
    scaling : {"linear", "per_type", "robust"}
        ``linear``: (0, 1) for every type; ``per_type``: (0, max); ``robust``:
        (1st percentile, 99th percentile). The last two keep the upper limit at least
        :data:`MIN_SPAN` above the lower one.

    Returns
    -------
    list of (float, float)
    """
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; one of {list(SCALINGS)}")
    v = np.asarray(values, dtype=np.float64)
    out = []
    for j in range(v.shape[1]):
        col = v[:, j][np.isfinite(v[:, j])]
        if scaling == "linear" or col.size == 0:
            out.append((0.0, 1.0))
            continue
        if scaling == "per_type":
            lo, hi = 0.0, float(col.max())
        else:
            lo, hi = (float(q) for q in np.percentile(col, [1.0, 99.0]))
        out.append((lo, max(hi, lo + MIN_SPAN)))
    return out


def _scaling_of(viewer, slide: str) -> str:
    """The scaling the user left on this slide's result layers (default if none)."""
    for layer in result_layers(viewer, slide):
        s = _meta(layer).get("scaling")
        if s in SCALINGS:
            return s
    return DEFAULT_SCALING


def _opacity_of(viewer, slide: str, roles: tuple[str, ...], default: float) -> float:
    """The opacity the user left on this slide's result layers of ``roles`` (``default``
    if there are none), so a re-run keeps it."""
    for role in roles:
        found = result_layers(viewer, slide, role)
        if found:
            return float(found[0].opacity)
    return default


def _hide_spots(viewer, slide: str) -> None:
    """Hide the slide's spots layer: under the result maps it only adds a second colour
    scale (log counts) between the H&E and the proportions."""
    for layer in viewer.layers:
        m = _meta(layer)
        if m.get("kind") == "spots" and layer.name == slide:
            layer.visible = False


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
    scaling: str | None = None,
    per_type_limits: bool | None = None,
    fade_low: bool = True,
    large: bool | None = None,
) -> Iterator:
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
        Name of the slide (the name of its spots layer, which gets hidden); layers of
        another slide are left alone.
    spot_diameter : float, optional
        Point size (full-resolution px); default 0.55 spot pitch.
    colormap : str
        Any napari colormap name.
    scaling : {"linear", "per_type", "robust"}, optional
        Contrast limits of the per-type layers (:func:`type_limits`); by default the
        scaling already on this slide's result layers, else :data:`DEFAULT_SCALING`.
    per_type_limits : bool, optional
        Older spelling: True = ``"per_type"``, False = ``"linear"``; ``scaling`` wins.
    fade_low : bool, default True
        Use :func:`faded_colormap` (transparent low end) instead of ``colormap`` itself.
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
    if scaling is None:
        if per_type_limits is not None:
            scaling = "per_type" if per_type_limits else "linear"
        else:
            scaling = _scaling_of(viewer, slide)
    xy = table[["x", "y"]].to_numpy(dtype=np.float64)
    values = table[list(cell_types)].to_numpy(dtype=np.float64)
    limits = type_limits(values, scaling)
    cmap = faded_colormap(colormap) if fade_low else colormap
    opacity = _opacity_of(viewer, slide, ("proportion", "raster"), RESULT_OPACITY)
    dominant_opacity = _opacity_of(viewer, slide, ("dominant", "raster_dominant"), DOMINANT_OPACITY)
    _hide_spots(viewer, slide)
    if large is None:
        large = len(table) > LARGE_SLIDE_SPOTS
    if large:
        yield from _show_raster(
            viewer,
            table,
            cell_types,
            xy,
            values,
            slide,
            cmap,
            scaling,
            limits,
            (opacity, dominant_opacity),
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
        meta = {
            META: {
                "kind": "result",
                "role": "proportion",
                "cell_type": t,
                "slide": slide,
                "cell_types": list(cell_types),
                "scaling": scaling,
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
                face_colormap=cmap,
                face_contrast_limits=limits[j],
                border_width=0,
                opacity=opacity,
                metadata=meta,
                visible=j == 0,
            )
        else:
            layer.data = points
            layer.features = features
            layer.size = size
            layer.face_colormap = cmap
            layer.face_contrast_limits = limits[j]
            layer.face_color = t
            layer.metadata = meta
        yield layer
    yield _show_dominant_points(
        viewer, points, size, features, values, cell_types, slide, dominant_opacity
    )


def _dominant_colors(cell_types: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """The "(none)" colour first, then one palette colour per type."""
    return category_colors([NONE_NAME, *cell_types])


def _show_dominant_points(viewer, points, size, features, values, cell_types, slide, opacity):
    dom = _dominant(values)
    names = np.array([NONE_NAME, *cell_types], dtype=object)[dom]
    feats = features.copy()
    feats["dominant_type"] = pd.Categorical(names, categories=[NONE_NAME, *cell_types])
    colors = _dominant_colors(cell_types)
    face = np.asarray(list(colors.values()))[dom]
    meta = {
        META: {
            "kind": "result",
            "role": "dominant",
            "slide": slide,
            "cell_types": list(cell_types),
            "colors": colors,
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
        opacity=opacity,
        metadata=meta,
        visible=False,
    )


def _show_raster(
    viewer, table, cell_types, xy, values, slide, colormap, scaling, limits, opacities
):
    from ..core.graph import spot_pitch

    opacity, dominant_opacity = opacities
    for layer in result_layers(viewer, slide):
        if _meta(layer)["role"] in ("proportion", "dominant"):
            viewer.layers.remove(layer)
    raster = rasterize_spots(xy, spot_pitch(xy))
    meta = {
        META: {
            "kind": "result",
            "role": "raster",
            "slide": slide,
            "cell_types": list(cell_types),
            "values": values,
            "raster": raster,
            "limits": limits,
            "scaling": scaling,
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
            opacity=opacity,
            metadata=meta,
        )
    dom = raster.labels(_dominant(values))
    colors = _dominant_colors(cell_types)
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
    # label 0 is both "no spot" and "no dominant type" on the raster: transparent
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
            opacity=dominant_opacity,
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


def set_scaling(viewer, scaling: str, slide: str | None = None) -> None:
    """Set the contrast limits of every per-type result layer (and of the raster's types)
    of ``slide`` (all slides if None) by ``scaling``; see :func:`type_limits`."""
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; one of {list(SCALINGS)}")
    for layer in result_layers(viewer, slide):
        m = _meta(layer)
        m["scaling"] = scaling
        if m["role"] == "proportion":
            values = layer.features[m["cell_type"]].to_numpy(dtype=np.float64)[:, None]
            layer.face_contrast_limits = type_limits(values, scaling)[0]
        elif m["role"] == "raster":
            m["limits"] = type_limits(m["values"], scaling)
            j = m["cell_types"].index(m.get("current", m["cell_types"][0]))
            layer.contrast_limits = m["limits"][j]


def set_result_opacity(viewer, opacity: float, slide: str | None = None) -> None:
    """Opacity of every result layer of ``slide`` (all slides if None), raster included."""
    opacity = float(np.clip(opacity, 0.0, 1.0))
    for layer in result_layers(viewer, slide):
        layer.opacity = opacity


def _grid(viewer):
    canvas = getattr(viewer, "canvas", None)  # napari >= 0.9 moved grid to the canvas
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def _camera(viewer):
    scene = getattr(viewer, "scene", None)  # napari >= 0.9: viewer.camera is deprecated
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


#: What the grid view changed, per viewer, to undo it when the grid is turned off:
#: {layer: (visible, name overlay visible, opacity)}. Weak keys: a closed viewer or a
#: removed layer is simply forgotten.
_GRID_SAVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: Height (canvas px) kept free above the slide in each tile for its title.
GRID_TITLE_PX = 20


def _fit_below_titles(viewer, layers: list) -> None:
    """Refit the camera like ``reset_view`` but with the slide below a band of
    :data:`GRID_TITLE_PX` at the top of each tile, where the title is drawn (napari's fit
    centres the slide and the title would cover its top)."""
    viewer.reset_view(layers=layers)
    extent = viewer._sliced_extent_world_augmented(layers=layers)
    size = np.asarray(extent[1] - extent[0], dtype=np.float64)[-2:]
    box = np.asarray(viewer.canvas.viewbox_size(viewer.layers), dtype=np.float64)
    if (size <= 0).any() or (box <= GRID_TITLE_PX).any():
        return
    zoom = 0.95 * min((box[0] - GRID_TITLE_PX) / size[0], box[1] / size[1])
    camera = _camera(viewer)
    center = list(camera.center)
    # moving the camera up by half the band puts the band above the slide
    center[-2] -= GRID_TITLE_PX / 2 / zoom
    camera.zoom = zoom
    camera.center = tuple(center)


def set_grid(viewer, enabled: bool, slide: str | None = None) -> None:
    """Tile the per-type layers side by side, each titled with its cell type.

    While the grid is on, other layers are hidden, each per-type layer shows its name at
    the top-left of its tile (napari's per-layer name overlay) and is drawn opaque (there
    is no H&E under the tiles to see through to); turning the grid off restores all three.
    The camera is refit each time, so every tile shows the whole slide.

    Parameters
    ----------
    viewer : napari.Viewer
    enabled : bool
    slide : str, optional
        Only this slide's per-type layers (all slides if None).
    """
    grid = _grid(viewer)
    if enabled:
        layers = result_layers(viewer, slide, "proportion")
        saved = _GRID_SAVED.get(viewer)
        if saved is None:  # a second "on" must not save the grid's own state
            saved = weakref.WeakKeyDictionary()
            for layer in viewer.layers:
                saved[layer] = (layer.visible, layer.name_overlay.visible, layer.opacity)
            _GRID_SAVED[viewer] = saved
        for layer in viewer.layers:
            layer.visible = layer in layers
        for layer in layers:
            title = layer.name_overlay
            title.visible = True
            title.font_size = 10
            layer.opacity = 1.0
        grid.stride = 1
        grid.enabled = True
        if layers:
            _fit_below_titles(viewer, layers)
        else:
            viewer.reset_view()
    else:
        grid.enabled = False
        saved = _GRID_SAVED.pop(viewer, None) or {}
        for layer in viewer.layers:
            if layer in saved:
                visible, titled, opacity = saved[layer]
                layer.visible = visible
                layer.name_overlay.visible = titled
                if layer.opacity == 1.0:  # unless the user changed it during the grid
                    layer.opacity = opacity
        viewer.reset_view()
