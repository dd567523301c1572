"""The 90 % intervals of a result on the canvas.

- Each cell-type layer carries its spots' intervals: a feature ``"<type> 90% interval"``
  (``[q05, q95]``), which napari's status bar and layer tooltips show next to the
  proportion of the spot under the cursor, and the bounds of every type in its metadata
  (``q05``, ``q95``) for File ▸ Save (``proportions_q05.csv`` / ``proportions_q95.csv``).
- One layer, ``"90% interval width"`` (Points, or on large slides and Visium HD bins a
  raster Image like the proportions'), colours each spot by the width of its interval for
  one type; it follows the cell-type layer selected in the layer list (or the type the
  raster shows), and the Cell-type legend shows its colour bar and a type switch.
"""

from __future__ import annotations

import weakref

import numpy as np

from .meta import META, Kind, ResultMeta, Role, meta_of, result_layers, role_of, unproxied

__all__ = [
    "WIDTH_LAYER",
    "WIDTH_COLORMAP",
    "interval_column",
    "interval_text",
    "show_width",
    "show_width_raster",
    "set_width_type",
    "width_colormap_and_limits",
    "follow_selection",
]

WIDTH_LAYER = "90% interval width"
WIDTH_COLORMAP = "magma"

#: Viewers whose layer selection already drives the width layers.
_FOLLOWING: weakref.WeakSet = weakref.WeakSet()


def interval_column(cell_type: str) -> str:
    """The feature holding a type layer's intervals."""
    return f"{cell_type} 90% interval"


def interval_text(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``"[0.120, 0.351]"`` per spot; ``""`` where the spot has no estimate."""
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    ok = np.isfinite(lo) & np.isfinite(hi)
    out = np.full(lo.shape, "", dtype=object)
    out[ok] = [f"[{a:.3f}, {b:.3f}]" for a, b in zip(lo[ok], hi[ok])]
    return out


def _width_limits(widths: np.ndarray) -> tuple[float, float]:
    top = float(np.nanmax(widths)) if np.isfinite(widths).any() else 1.0
    return 0.0, max(top, 1e-3)


def _width_start(viewer, lower, upper, cell_types, slide):
    """(widths (n, k), the slide's width layers, index of the type to show, metadata): the
    type shown stays the one an earlier width layer showed, else the first."""
    widths = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    found = result_layers(viewer, slide, Role.INTERVAL_WIDTH)
    current = meta_of(found[0]).get("current") if found else None
    if current not in cell_types:
        current = cell_types[0]
    meta: ResultMeta = {
        "kind": Kind.RESULT,
        "role": Role.INTERVAL_WIDTH,
        "slide": slide,
        "cell_types": list(cell_types),
        "current": current,
    }
    return widths, found, cell_types.index(current), meta


def show_width(viewer, points, size, features, lower, upper, cell_types, slide, opacity):
    """Add or update the slide's interval-width layer (hidden until asked for); it shows
    the first type, or the type it already showed."""
    widths, found, j, meta = _width_start(viewer, lower, upper, cell_types, slide)
    meta["widths"] = widths
    feats = features[["barcode", "x", "y", "region"]].copy()
    feats["interval_width"] = widths[:, j]
    if found and found[0].data.shape == points.shape:
        layer = found[0]
        layer.data = points
        layer.features = feats
        layer.size = size
        layer.metadata = {META: meta}
        _draw(layer, widths[:, j])
        return layer
    for ly in found:
        viewer.layers.remove(ly)
    layer = viewer.add_points(
        points,
        name=WIDTH_LAYER,
        size=size,
        features=feats,
        face_color="interval_width",
        face_colormap=WIDTH_COLORMAP,
        face_contrast_limits=_width_limits(widths[:, j]),
        border_width=0,
        opacity=opacity,
        metadata={META: meta},
        visible=False,
    )
    follow_selection(viewer)
    return layer


#: Raster width layer (large slides, Visium HD bins) -> (raster, widths (n, k)); weak, as
#: results_raster keeps its proportions: the arrays are as large as the slide.
_WIDTH_RASTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def show_width_raster(viewer, raster, placement, lower, upper, cell_types, slide, opacity):
    """The interval-width layer of a slide drawn as a raster (an Image, one pixel per bin or
    the nearest-spot raster of :mod:`.raster`); hidden until asked for."""
    widths, found, j, meta = _width_start(viewer, lower, upper, cell_types, slide)
    for ly in found:
        viewer.layers.remove(ly)
    layer = viewer.add_image(
        raster.image(widths[:, j]),
        name=WIDTH_LAYER,
        colormap=WIDTH_COLORMAP,
        contrast_limits=_width_limits(widths[:, j]),
        interpolation2d="nearest",
        opacity=opacity,
        metadata={META: meta},
        visible=False,
        **placement,
    )
    _WIDTH_RASTERS[unproxied(layer)] = (raster, widths)
    follow_selection(viewer)
    return layer


def width_colormap_and_limits(layer):
    """(colormap, contrast limits) of an interval-width layer, Points or raster."""
    if unproxied(layer) in _WIDTH_RASTERS:
        return layer.colormap, layer.contrast_limits
    return layer.face_colormap, layer.face_contrast_limits


def _draw(layer, values: np.ndarray) -> None:
    feats = layer.features.copy()
    feats["interval_width"] = values
    layer.features = feats
    layer.face_colormap = WIDTH_COLORMAP
    layer.face_contrast_limits = _width_limits(values)
    layer.face_color = "interval_width"


def set_width_type(layer, cell_type: str) -> None:
    """Show ``cell_type``'s interval widths on an interval-width layer."""
    meta = meta_of(layer)
    types = meta["cell_types"]
    if cell_type not in types or meta.get("current") == cell_type:
        return
    meta["current"] = cell_type
    j = types.index(cell_type)
    held = _WIDTH_RASTERS.get(unproxied(layer))
    if held is not None:
        raster, widths = held
        layer.data = raster.image(widths[:, j])
        layer.contrast_limits = _width_limits(widths[:, j])
        return
    _draw(layer, np.asarray(meta["widths"])[:, j])


def follow_selection(viewer) -> None:
    """Make the width layers of a slide follow the cell-type layer selected (once per
    viewer)."""
    viewer = unproxied(viewer)
    if viewer in _FOLLOWING:
        return
    _FOLLOWING.add(viewer)
    ref = weakref.ref(viewer)

    def on_active(event=None) -> None:
        v = ref()
        if v is None:
            return
        active = v.layers.selection.active
        role = role_of(active)
        if role not in (Role.PROPORTION, Role.RASTER):
            return
        m = meta_of(active)
        shown = m.get("cell_type") if role is Role.PROPORTION else m.get("current")
        for layer in result_layers(v, m.get("slide"), Role.INTERVAL_WIDTH):
            set_width_type(layer, shown)

    viewer.layers.selection.events.active.connect(on_active)
