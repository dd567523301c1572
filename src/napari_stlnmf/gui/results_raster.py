"""Results of a large slide (above :data:`~napari_stlnmf.gui.layers.LARGE_SLIDE_SPOTS`
spots) or of Visium HD bins as two raster layers: an Image showing one cell type's
proportion at a time (:func:`set_raster_type` switches it) and a Labels layer of the
dominant type. Bins are drawn on their own grid, one raster pixel per bin
(:mod:`.bins`); other spots on the nearest-spot raster of :mod:`.raster`.

Switching the type shown needs every type's proportions and the spot raster. They are
kept in :data:`_RASTERS`, keyed by the Image layer, not in its metadata: the metadata
(:class:`~napari_stlnmf.gui.meta.ResultMeta`) stays small and plain (names, contrast
limits), while these arrays are as large as the slide.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from .bins import BinGrid, bin_grid, is_bins
from .meta import (
    META,
    Kind,
    ResultMeta,
    Role,
    meta_of,
    result_layers,
    role_of,
    spots_layer_named,
    unproxied,
)
from .raster import SpotRaster, rasterize_spots
from .result_style import dominant_codes, dominant_colors

__all__ = [
    "has_raster_values",
    "raster_values",
    "set_raster_limits",
    "set_raster_type",
    "show_raster",
    "slide_bins",
]


@dataclass
class _RasterData:
    raster: SpotRaster | BinGrid
    values: np.ndarray  # (n_spots, n_types) proportions


#: Raster result Image layer (itself, not a napari proxy of it) -> what it can show
#: (weak: a removed layer takes it along).
_RASTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _raster_data(layer) -> _RasterData:
    data = _RASTERS.get(unproxied(layer)) if role_of(layer) is Role.RASTER else None
    if data is None:
        raise ValueError(f"layer {layer.name!r} is not a raster result layer")
    return data


def has_raster_values(layer) -> bool:
    """True for a raster result layer made here (a copy of one, e.g. napari's "duplicate
    layer", shares its metadata but cannot switch types)."""
    return role_of(layer) is Role.RASTER and unproxied(layer) in _RASTERS


def raster_values(layer) -> np.ndarray:
    """The (n_spots, n_types) proportions behind a raster result layer."""
    return _raster_data(layer).values


def slide_bins(viewer, slide: str):
    """The AnnData of ``slide`` (the name of its spots layer) when it holds Visium HD
    bins, else None."""
    layer = spots_layer_named(viewer, slide)
    adata = meta_of(layer).get("adata") if layer is not None else None
    return adata if adata is not None and is_bins(adata) else None


def _bins_raster(viewer, slide: str, barcodes) -> BinGrid | None:
    """The bin grid of ``slide`` showing the table's rows (``barcodes``, in order), or
    None when the slide is not bins or a barcode is not one of its bins."""
    adata = slide_bins(viewer, slide) if barcodes is not None else None
    if adata is None:
        return None
    grid = bin_grid(adata)
    names = adata.obs_names
    codes = np.asarray(barcodes, dtype=object)
    if len(codes) == len(names) and np.array_equal(codes, names.to_numpy(dtype=object)):
        return grid  # the usual case: the result has the slide's bins, in its order
    index = names.get_indexer(codes)
    return None if (index < 0).any() else grid.subset(index)


def show_raster(
    viewer,
    cell_types,
    xy,
    values,
    slide,
    colormap,
    scaling,
    limits,
    opacities,
    barcodes=None,
    intervals=None,
):
    """Add or update the raster result layers of ``slide``; returns ``[image, labels]``.

    ``limits`` are the contrast limits of each type (``result_style.type_limits``),
    ``opacities`` those of new (proportion, dominant) layers. When ``slide`` is Visium HD
    bins and ``barcodes`` (one per row of ``values``) are given, the rasters are drawn on
    the bin grid (one pixel per bin, see :mod:`.bins`); otherwise on the nearest-spot
    raster of ``xy``. With ``intervals`` (lower, upper), a raster of interval widths is
    added too (:mod:`.intervals`) and returned third.
    """
    from napari.utils.colormaps import DirectLabelColormap

    from ..core.graph import spot_pitch

    opacity, dominant_opacity = opacities
    for layer in result_layers(viewer, slide):
        if role_of(layer) in (Role.PROPORTION, Role.DOMINANT, Role.INTERVAL_WIDTH):
            viewer.layers.remove(layer)
    raster = _bins_raster(viewer, slide, barcodes)
    if raster is None:
        raster = rasterize_spots(xy, spot_pitch(xy))
    placement = raster.placement()
    meta: ResultMeta = {
        "kind": Kind.RESULT,
        "role": Role.RASTER,
        "slide": slide,
        "cell_types": list(cell_types),
        "limits": [tuple(lim) for lim in limits],
        "scaling": scaling,
        "current": cell_types[0],
    }
    found = result_layers(viewer, slide, Role.RASTER)
    img = raster.image(values[:, 0])
    name = f"{cell_types[0]} (proportion)"
    if found:
        layer = found[0]
        layer.data = img
        _place(layer, placement)
        layer.metadata = {META: meta}
        layer.colormap = colormap
        layer.contrast_limits = limits[0]
        layer.name = name
    else:
        layer = viewer.add_image(
            img,
            name=name,
            colormap=colormap,
            contrast_limits=limits[0],
            interpolation2d="nearest",
            opacity=opacity,
            **placement,
            metadata={META: meta},
        )
    _RASTERS[unproxied(layer)] = _RasterData(raster, values)

    dom = raster.labels(dominant_codes(values))
    colors = dominant_colors(cell_types)
    dmeta: ResultMeta = {
        "kind": Kind.RESULT,
        "role": Role.RASTER_DOMINANT,
        "slide": slide,
        "cell_types": list(cell_types),
        "colors": colors,
    }
    color_dict = {i + 1: colors[t] for i, t in enumerate(cell_types)}
    # label 0 is both "no spot" and "no dominant type" on the raster: transparent
    color_dict[None] = (0, 0, 0, 0)
    color_dict[0] = (0, 0, 0, 0)
    cmap = DirectLabelColormap(color_dict=color_dict)
    found = result_layers(viewer, slide, Role.RASTER_DOMINANT)
    if found:
        dlayer = found[0]
        dlayer.data = dom
        _place(dlayer, placement)
        dlayer.colormap = cmap
        dlayer.metadata = {META: dmeta}
    else:
        dlayer = viewer.add_labels(
            dom,
            name="dominant type",
            opacity=dominant_opacity,
            metadata={META: dmeta},
            visible=False,
            colormap=cmap,
            **placement,
        )
    if intervals is None:
        for ly in result_layers(viewer, slide, Role.INTERVAL_WIDTH):
            viewer.layers.remove(ly)
        return [layer, dlayer]
    from .intervals import show_width_raster

    width = show_width_raster(
        viewer, raster, placement, *intervals, list(cell_types), slide, opacity
    )
    return [layer, dlayer, width]


def _place(layer, placement: dict) -> None:
    """Move an existing raster layer to a new placement (scale, translate, affine)."""
    layer.scale = placement["scale"]
    layer.translate = placement["translate"]
    layer.affine = placement["affine"]


def set_raster_type(layer, cell_type: str) -> None:
    """Show another cell type on a raster result layer (one gather + texture upload)."""
    data = _raster_data(layer)
    m = meta_of(layer)
    types = m["cell_types"]
    if cell_type not in types:
        raise ValueError(f"unknown cell type {cell_type!r}; the result has {types}")
    j = types.index(cell_type)
    layer.data = data.raster.image(data.values[:, j])
    layer.contrast_limits = m["limits"][j]
    layer.name = f"{cell_type} (proportion)"
    m["current"] = cell_type


def set_raster_limits(layer, limits: list[tuple[float, float]]) -> None:
    """New contrast limits per type of a raster result layer (the shown type's apply now)."""
    m = meta_of(layer)
    m["limits"] = [tuple(lim) for lim in limits]
    j = m["cell_types"].index(m.get("current", m["cell_types"][0]))
    layer.contrast_limits = m["limits"][j]
