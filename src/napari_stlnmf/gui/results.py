"""Deconvolution results as napari layers: one Points layer per cell type (coloured by
proportion) and a dominant-type layer, or, for a large slide, the two raster layers of
:mod:`.results_raster`.

Result layers are found again by their metadata (:func:`~napari_stlnmf.gui.meta.result_layers`:
role, cell type, slide), so a re-run updates them in place instead of adding copies. How
they are drawn over the H&E (opacity, faded colormap, contrast scalings) is
:mod:`.result_style`; the grid view is :mod:`.grid`. This module is the public face of all
four: the names below are importable from here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..io.export import BASE_COLUMNS
from .grid import set_grid
from .intervals import interval_column, interval_text, show_width
from .layers import LARGE_SLIDE_SPOTS
from .meta import (
    META,
    Kind,
    ResultMeta,
    Role,
    meta_of,
    result_layers,
    role_of,
    spots_layer_named,
)
from .palette import NONE_NAME
from .result_style import (
    DEFAULT_SCALING,
    DOMINANT_OPACITY,
    MIN_SPAN,
    RESULT_OPACITY,
    SCALINGS,
    check_scaling,
    dominant_codes,
    dominant_colors,
    faded_colormap,
    opacity_of,
    scaling_of,
    set_result_opacity,
    type_limits,
)
from .results_raster import (
    has_raster_values,
    raster_values,
    set_raster_limits,
    set_raster_type,
    show_raster,
    slide_bins,
)

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


def _hide_spots(viewer, slide: str) -> None:
    """Hide the slide's spots layer: under the result maps it only adds a second colour
    scale (log counts) between the H&E and the proportions."""
    layer = spots_layer_named(viewer, slide)
    if layer is not None:
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
    intervals: tuple[np.ndarray, np.ndarray] | None = None,
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
        :data:`~napari_stlnmf.gui.layers.LARGE_SLIDE_SPOTS` spots and for Visium HD bins
        (drawn on their own grid, :mod:`.bins`).
    intervals : (lower, upper) arrays (n_spots, n_types), optional
        The 90 % intervals (:mod:`.intervals`): each type layer shows its spots' interval
        in the status bar, and an interval-width layer is added (a raster on the raster
        path, which has no per-spot status).

    Yields
    ------
    layers, in cell-type order, then the dominant-type layer, then (with ``intervals``)
    the interval-width layer.
    """
    missing = [c for c in (*BASE_COLUMNS, *cell_types) if c not in table.columns]
    if missing:
        raise ValueError(f"the proportions table lacks columns {missing}")
    if scaling is None:
        if per_type_limits is not None:
            scaling = "per_type" if per_type_limits else "linear"
        else:
            scaling = scaling_of(viewer, slide) or DEFAULT_SCALING
    xy = table[["x", "y"]].to_numpy(dtype=np.float64)
    values = table[list(cell_types)].to_numpy(dtype=np.float64)
    limits = type_limits(values, scaling)
    cmap = faded_colormap(colormap) if fade_low else colormap
    opacity = opacity_of(viewer, slide, (Role.PROPORTION, Role.RASTER), RESULT_OPACITY)
    dominant_opacity = opacity_of(
        viewer, slide, (Role.DOMINANT, Role.RASTER_DOMINANT), DOMINANT_OPACITY
    )
    _hide_spots(viewer, slide)
    if large is None:
        large = len(table) > LARGE_SLIDE_SPOTS or slide_bins(viewer, slide) is not None
    if large:
        yield from show_raster(
            viewer,
            cell_types,
            xy,
            values,
            slide,
            cmap,
            scaling,
            limits,
            (opacity, dominant_opacity),
            barcodes=table["barcode"].to_numpy(),
            intervals=intervals,
        )
        return
    from ..core.graph import spot_pitch

    size = spot_diameter or 0.55 * (spot_pitch(xy) if len(xy) > 1 else 1.0)
    features = table[[*BASE_COLUMNS, *cell_types]].reset_index(drop=True)
    points = xy[:, ::-1].copy()
    # stale layers: types of an earlier run that this run no longer has
    for layer in result_layers(viewer, slide):
        role = role_of(layer)
        if role in (Role.RASTER, Role.RASTER_DOMINANT) or (
            role is Role.PROPORTION and meta_of(layer)["cell_type"] not in cell_types
        ):
            viewer.layers.remove(layer)
    existing = {
        meta_of(ly).get("cell_type"): ly for ly in result_layers(viewer, slide, Role.PROPORTION)
    }
    for j, t in enumerate(cell_types):
        meta: ResultMeta = {
            "kind": Kind.RESULT,
            "role": Role.PROPORTION,
            "cell_type": t,
            "slide": slide,
            "cell_types": list(cell_types),
            "scaling": scaling,
        }
        feats_t = features
        if intervals is not None:
            meta["q05"], meta["q95"] = intervals
            feats_t = features.copy()
            feats_t[interval_column(t)] = interval_text(intervals[0][:, j], intervals[1][:, j])
        layer = existing.get(t)
        if layer is None or layer.data.shape != points.shape:
            if layer is not None:
                viewer.layers.remove(layer)
            layer = viewer.add_points(
                points,
                name=t,
                size=size,
                features=feats_t,
                face_color=t,
                face_colormap=cmap,
                face_contrast_limits=limits[j],
                border_width=0,
                opacity=opacity,
                metadata={META: meta},
                visible=j == 0,
            )
        else:
            layer.data = points
            layer.features = feats_t
            layer.size = size
            layer.face_colormap = cmap
            layer.face_contrast_limits = limits[j]
            layer.face_color = t
            layer.metadata = {META: meta}
        yield layer
    yield _show_dominant_points(
        viewer, points, size, features, values, cell_types, slide, dominant_opacity
    )
    if intervals is not None:
        lower, upper = intervals
        yield show_width(viewer, points, size, features, lower, upper, cell_types, slide, opacity)
    else:
        for layer in result_layers(viewer, slide, Role.INTERVAL_WIDTH):
            viewer.layers.remove(layer)


def _show_dominant_points(viewer, points, size, features, values, cell_types, slide, opacity):
    dom = dominant_codes(values)
    names = np.array([NONE_NAME, *cell_types], dtype=object)[dom]
    feats = features.copy()
    feats["dominant_type"] = pd.Categorical(names, categories=[NONE_NAME, *cell_types])
    colors = dominant_colors(cell_types)
    face = np.asarray(list(colors.values()))[dom]
    meta: ResultMeta = {
        "kind": Kind.RESULT,
        "role": Role.DOMINANT,
        "slide": slide,
        "cell_types": list(cell_types),
        "colors": colors,
    }
    found = result_layers(viewer, slide, Role.DOMINANT)
    if found and found[0].data.shape == points.shape:
        layer = found[0]
        layer.data = points
        layer.features = feats
        layer.size = size
        layer.face_color = face
        layer.metadata = {META: meta}
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
        metadata={META: meta},
        visible=False,
    )


def set_scaling(viewer, scaling: str, slide: str | None = None) -> None:
    """Set the contrast limits of every per-type result layer (and of the raster's types)
    of ``slide`` (all slides if None) by ``scaling``; see :func:`type_limits`."""
    check_scaling(scaling)
    for layer in result_layers(viewer, slide):
        m = meta_of(layer)
        m["scaling"] = scaling
        role = role_of(layer)
        if role is Role.PROPORTION:
            values = layer.features[m["cell_type"]].to_numpy(dtype=np.float64)[:, None]
            layer.face_contrast_limits = type_limits(values, scaling)[0]
        elif has_raster_values(layer):
            set_raster_limits(layer, type_limits(raster_values(layer), scaling))
