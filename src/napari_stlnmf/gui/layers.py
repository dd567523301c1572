"""A slide (AnnData in the form of :mod:`napari_stlnmf.io.visium`) as napari layer data.

World coordinates are the slide's FULL-RESOLUTION pixels, (row, col) = (y, x): an image
layer of the hires picture gets ``scale = 1 / tissue_hires_scalef``, so spots, painted
regions and results line up on whichever image is shown. Everything here returns plain
layer-data tuples ``(data, kwargs, layer_type)``; napari itself is not imported.

Visium HD bins (:func:`~napari_stlnmf.gui.bins.is_bins`) are always drawn as a raster on
their own grid, one pixel per bin (:mod:`.bins`), whatever their number.

Spots layers carry ``metadata["stlnmf"]`` (:func:`spots_info`, schema
:class:`~napari_stlnmf.gui.meta.SpotsMeta`): the AnnData, barcodes, (x, y) coordinates,
spot diameter and pitch, so widgets can deconvolve from the layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core.graph import spot_pitch
from ..io.visium import image_scale, library, spot_diameter
from .bins import bin_grid, bin_size_px, is_bins
from .meta import META, Kind, SpotsMeta
from .raster import rasterize_spots

__all__ = [
    "LARGE_SLIDE_SPOTS",
    "SPOTS_OPACITY",
    "LayerData",
    "META",
    "slide_layers",
    "image_layer",
    "spots_layer",
    "spots_info",
    "truth_layer",
    "region_colors",
    "region_label_colors",
]

LayerData = tuple[Any, dict[str, Any], str]

#: Above this many spots, slides and results are drawn as one raster image instead of
#: Points layers (measured: benchmarks/bench_gui_scale.py, docs/gui.md).
LARGE_SLIDE_SPOTS = 100_000

#: Opacity of a slide's spots layer: the region colours stay readable while the
#: hematoxylin bands under the spots (CA1, dentate) still show through for painting.
SPOTS_OPACITY = 0.45

# META (re-exported): the key of the plugin's dict in layer.metadata, see gui.meta

#: Region ids that get their own colour (higher ids reuse them, cyclically).
N_REGION_COLORS = 30
#: Spots outside every region: a faint white disc that marks the spot without hiding the
#: H&E under it.
UNASSIGNED_COLOR = (1.0, 1.0, 1.0, 0.35)


def _region_palette() -> np.ndarray:
    """(N_REGION_COLORS + 1, 4): row r is region r's colour; row 0 is unassigned."""
    from .palette import category_colors

    names = [str(i) for i in range(1, N_REGION_COLORS + 1)]
    colors = category_colors(names)
    return np.array([UNASSIGNED_COLOR, *(colors[n] for n in names)], dtype=np.float64)


def region_colors(regions) -> np.ndarray:
    """(n, 4) RGBA per spot from its region id: the same colour as the Regions layer paints
    that id with, so a spot and the paint under it match."""
    r = np.asarray(regions).astype(np.int64)
    palette = _region_palette()
    idx = np.where(r > 0, (r - 1) % N_REGION_COLORS + 1, 0)
    return palette[idx]


def region_label_colors():
    """A napari ``DirectLabelColormap`` for a Regions Labels layer: id r gets
    :func:`region_colors` ``(r)``, 0 is transparent."""
    from napari.utils.colormaps import DirectLabelColormap

    palette = _region_palette()
    color_dict = {0: (0.0, 0.0, 0.0, 0.0), None: (0.5, 0.5, 0.5, 1.0)}
    for rid in range(1, 256):
        color_dict[rid] = tuple(palette[(rid - 1) % N_REGION_COLORS + 1])
    return DirectLabelColormap(color_dict=color_dict)


def spots_info(adata, name: str | None = None) -> SpotsMeta:
    """What a spots layer knows about its slide (kept in ``metadata["stlnmf"]``)."""
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)[:, :2]
    lib_id, _ = library(adata)
    # bins: the grid's own spacing (a nearest-neighbour search over 650k bins costs ~1 s)
    pitch = (bin_size_px(adata) if is_bins(adata) else None) or (
        spot_pitch(xy) if len(xy) > 1 else 1.0
    )
    diameter = spot_diameter(adata)
    if diameter is None or not np.isfinite(diameter) or diameter <= 0:
        diameter = 0.55 * pitch  # Visium: 55 um spots on a 100 um pitch
    return {
        "kind": Kind.SPOTS,
        "adata": adata,
        "barcodes": [str(b) for b in adata.obs_names],
        "coords_xy": xy,
        "spot_diameter": float(diameter),
        "pitch": float(pitch),
        "library_id": lib_id or (name or "slide"),
    }


def image_layer(adata, image: str = "hires") -> LayerData | None:
    """The slide's ``image`` (hires, lowres or fullres) scaled to full-resolution px, or
    None when the slide has no such image."""
    lib_id, lib = library(adata)
    images = lib.get("images") or {}
    if image not in images:
        return None
    try:
        scale = image_scale(adata, image)
    except (KeyError, TypeError, ValueError):  # no (usable) scale factor for that image
        return None
    if not scale:
        return None
    data = np.asarray(images[image])
    kwargs = {
        "name": f"{lib_id} {image}",
        "scale": (1.0 / scale, 1.0 / scale),
        "rgb": data.ndim == 3 and data.shape[-1] in (3, 4),
        "metadata": {META: {"kind": Kind.IMAGE, "image": image, "scale_from_fullres": scale}},
    }
    return (data, kwargs, "image")


def spots_layer(adata, regions=None, name: str | None = None) -> LayerData:
    """Spots of a slide: a Points layer, or a raster image above :data:`LARGE_SLIDE_SPOTS`
    (Visium HD bins: always, on the bin grid; see :mod:`.bins`).

    ``features`` hold barcode, total_counts and region (0 = unassigned).
    """
    info = spots_info(adata, name)
    m = len(info["barcodes"])
    totals = np.asarray(adata.X.sum(1)).ravel().astype(np.float64)
    region = np.zeros(m, dtype=np.int64) if regions is None else np.asarray(regions)
    features = pd.DataFrame({"barcode": info["barcodes"], "total_counts": totals, "region": region})
    info["features"] = features
    label = name or f"{info['library_id']} spots"
    log_counts = np.log1p(totals)
    limits = (float(np.nanmin(log_counts)), float(max(np.nanmax(log_counts), 1e-6)))
    if is_bins(adata):
        grid = bin_grid(adata)
        kwargs = {
            "name": label,
            **grid.placement(),
            "interpolation2d": "nearest",  # each bin one flat square
            "colormap": "magma",
            "contrast_limits": limits,
            "opacity": 0.7,
            "metadata": {META: info},
        }
        return (grid.image(log_counts), kwargs, "image")
    if m > LARGE_SLIDE_SPOTS:
        raster = rasterize_spots(info["coords_xy"], info["pitch"])
        kwargs = {
            "name": label,
            "scale": (raster.scale, raster.scale),
            "translate": raster.translate,
            "colormap": "magma",
            "contrast_limits": limits,
            "opacity": 0.7,
            "metadata": {META: info},
        }
        return (raster.image(log_counts), kwargs, "image")
    features["log_counts"] = log_counts
    # coloured by region (white when unassigned): a continuous colormap over the spots has
    # the hue of H&E and hides the structures a user paints regions on; log counts stay a
    # feature to colour by from the layer controls
    kwargs = {
        "name": label,
        "size": info["spot_diameter"],
        "features": features,
        "face_color": region_colors(region),
        "border_width": 0,
        "opacity": SPOTS_OPACITY,
        "metadata": {META: info},
    }
    return (info["coords_xy"][:, ::-1].copy(), kwargs, "points")


def truth_layer(truth: pd.DataFrame, adata, name: str = "ground truth") -> LayerData:
    """Known proportions (barcodes x types) as one hidden Points layer; its colour shows
    the first type (switch with ``layer.face_color = "<type>"``)."""
    info = spots_info(adata)
    t = truth.reindex(info["barcodes"])
    features = pd.DataFrame({"barcode": info["barcodes"]})
    for c in truth.columns:
        features[str(c)] = t[c].to_numpy(dtype=np.float64)
    kwargs = {
        "name": name,
        "size": info["spot_diameter"],
        "features": features,
        "face_color": str(truth.columns[0]),
        "face_colormap": "viridis",
        "face_contrast_limits": (0.0, 1.0),
        "border_width": 0,
        "visible": False,
        "metadata": {META: {"kind": Kind.TRUTH, "cell_types": [str(c) for c in truth.columns]}},
    }
    return (info["coords_xy"][:, ::-1].copy(), kwargs, "points")


def affine_of_projective(m: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """The affine map closest (least squares over a grid of the image) to the projective
    3 x 3 matrix ``m`` of (x, y) pixels, and its largest deviation there, in output px.

    napari layers take affine transforms only; Space Ranger's CytAssist registration is
    projective but, for a flat slide, affine to a small fraction of a pixel."""
    m = np.asarray(m, dtype=np.float64)
    if np.allclose(m[2, :2], 0.0) and abs(m[2, 2]) > 0:
        return m / m[2, 2], 0.0
    gx, gy = np.meshgrid(np.linspace(0, width, 9), np.linspace(0, height, 9))
    src = np.column_stack([gx.ravel(), gy.ravel(), np.ones(gx.size)])
    dst = src @ m.T
    dst = dst[:, :2] / dst[:, 2:3]
    coef, *_ = np.linalg.lstsq(src, dst, rcond=None)  # (3, 2): [x y 1] @ coef
    affine = np.vstack([coef.T, [0.0, 0.0, 1.0]])
    err = float(np.abs(src @ coef - dst).max())
    return affine, err


#: metadata key of the CytAssist layer (not a :class:`Kind`: no widget works on it)
CYTASSIST_META = "stlnmf_cytassist"


def cytassist_layer(adata) -> LayerData | None:
    """The Visium HD CytAssist image placed on full-resolution pixels by Space Ranger's
    registration (``metadata["cytassist_to_fullres"]``), hidden; None without both."""
    lib_id, lib = library(adata)
    img = (lib.get("images") or {}).get("cytassist")
    matrix = (lib.get("metadata") or {}).get("cytassist_to_fullres")
    if img is None or matrix is None:
        return None
    data = np.asarray(img)
    affine_xy, err = affine_of_projective(np.asarray(matrix), data.shape[1], data.shape[0])
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # (x, y) <-> (row, col)
    kwargs = {
        "name": f"{lib_id} CytAssist",
        "affine": swap @ affine_xy @ swap,
        "rgb": data.ndim == 3 and data.shape[-1] in (3, 4),
        "visible": False,  # a registration check, not the picture to paint on
        "opacity": 0.6,
        "metadata": {CYTASSIST_META: {"affine_error_px": err}},
    }
    return (data, kwargs, "image")


def slide_layers(
    adata, image: str = "hires", regions=None, name: str | None = None
) -> list[LayerData]:
    """Histology image (when the slide has it), the CytAssist image (Visium HD, hidden,
    when loaded and registered), then spots, ready for napari."""
    out = []
    img = image_layer(adata, image)
    if img is None and image == "hires":
        img = image_layer(adata, "lowres")
    if img is not None:
        out.append(img)
    cyt = cytassist_layer(adata)
    if cyt is not None:
        out.append(cyt)
    out.append(spots_layer(adata, regions=regions, name=name))
    return out
