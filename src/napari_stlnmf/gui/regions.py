"""Painting tissue regions: a "Regions" Labels layer over the slide, kept in sync with the
spots' ``features["region"]`` whenever a paint stroke ends (or the labels are replaced).

The Labels layer covers the shown image at the image's own resolution, or coarser for huge
images (painting a full-resolution whole-slide image is slow in napari); its ``scale``
keeps it in the slide's full-resolution pixel world either way. A new Regions layer starts
from the regions the spots already have (a sample's, or a regions file's): each spot's
region is painted over the tile of pixels nearest to it, so nothing is lost by adding it.

The link from a Regions layer to its spots layer, its sync timer and the listeners (the
regions dock's live counts) live in :data:`_LINKS`, not in layer metadata: metadata is
copied into layer-data tuples and saved files, live Qt objects and layers are not.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..io.regions import labels_at_spots
from .bins import is_bins
from .layers import region_colors, region_label_colors
from .meta import META, Kind, spots_meta, unproxied

__all__ = [
    "add_regions_layer",
    "regions_layer_of",
    "spots_of",
    "on_regions_changed",
    "spot_regions",
    "world_to_label_pixels",
    "sync_regions",
    "paint_spot_regions",
    "MAX_LABEL_PIXELS",
]

#: Labels layers above this many pixels are downsampled (by a whole factor).
MAX_LABEL_PIXELS = 16_000_000
#: Spots' regions are recomputed this long after the last paint event.
SYNC_DELAY_MS = 100
#: A spot's region is painted up to this many spot pitches from its centre (0.5 would
#: leave gaps between hexagonal neighbours; 0.6 closes them and stops at the tissue edge).
TILE_PITCHES = 0.6
#: The same for Visium HD bins (squares): just past half the diagonal, so that the tiles
#: cover each square's corners too.
TILE_PITCHES_BINS = 0.72


@dataclass
class _Link:
    spots: weakref.ref
    timer: object | None = None
    listeners: list[Callable[[np.ndarray], None]] = field(default_factory=list)


#: Regions Labels layer -> its link (weak: a removed layer takes its link with it). Keys
#: and links hold the layers themselves, never napari's short-lived proxies (see
#: :func:`~napari_stlnmf.gui.meta.unproxied`).
_LINKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def spots_of(labels_layer):
    """The spots layer a Regions layer paints for, or None."""
    link = _LINKS.get(unproxied(labels_layer))
    return link.spots() if link is not None else None


def regions_layer_of(viewer, spots_layer):
    """The Regions Labels layer painting ``spots_layer`` in ``viewer``, or None."""
    spots_layer = unproxied(spots_layer)
    for layer in viewer.layers:
        if unproxied(layer) in _LINKS and spots_of(layer) is spots_layer:
            return layer
    return None


def on_regions_changed(labels_layer, callback: Callable[[np.ndarray], None]) -> None:
    """Call ``callback(regions)`` after every sync of ``labels_layer`` to its spots."""
    _LINKS[unproxied(labels_layer)].listeners.append(callback)


def _extent(spots_layer, image_layer) -> tuple[tuple[int, int], float]:
    """(shape, world px per label px) of a Labels layer over the image or the spots."""
    if image_layer is not None:
        shape = tuple(int(s) for s in image_layer.data.shape[:2])
        step = float(image_layer.scale[-1])
        return shape, step
    m = spots_meta(spots_layer)
    xy = m["coords_xy"]
    step = m["pitch"] / 4.0
    hi = xy.max(0) + m["pitch"]
    return (int(np.ceil(hi[1] / step)) + 1, int(np.ceil(hi[0] / step)) + 1), step


def paint_spot_regions(
    shape: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    regions: np.ndarray,
    radius: float,
) -> np.ndarray:
    """A label image with each spot's region painted over the pixels nearest to it.

    Parameters
    ----------
    shape : (H, W)
    rows, cols : ndarray (n,)
        Spot centres in label pixels.
    regions : ndarray (n,) of int
        0 paints nothing.
    radius : float
        Largest distance painted (label pixels).

    Returns
    -------
    ndarray (H, W) int32; the pixel under each spot centre holds that spot's region.
    """
    out = np.zeros(shape, dtype=np.int32)
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    d2 = (dy**2 + dx**2).ravel()
    keep = d2 <= radius**2
    dy, dx, d2 = dy.ravel()[keep], dx.ravel()[keep], d2[keep]
    # farthest offsets first: a nearer spot overwrites a farther one, so each pixel ends
    # with its nearest spot's region (the Voronoi tile, cut at `radius`)
    order = np.argsort(-d2, kind="stable")
    ri, ci = np.rint(rows).astype(np.int64), np.rint(cols).astype(np.int64)
    lab = np.asarray(regions).astype(np.int32)
    inside = (ri >= 0) & (ri < shape[0]) & (ci >= 0) & (ci < shape[1])
    ri, ci, lab = ri[inside], ci[inside], lab[inside]
    for k in order:
        y, x = ri + dy[k], ci + dx[k]
        ok = (y >= 0) & (y < shape[0]) & (x >= 0) & (x < shape[1])
        out[y[ok], x[ok]] = lab[ok]
    out[ri, ci] = lab  # centres last: ties between equidistant spots never move a centre
    return out


def _start_labels(spots_layer, target, scale, translate) -> np.ndarray:
    m = spots_meta(spots_layer)
    regions = np.asarray(m["features"]["region"]).astype(np.int64)
    if not regions.any():
        return np.zeros(target, dtype=np.int32)
    xy = m["coords_xy"]
    rows = (xy[:, 1] - translate[0]) / scale
    cols = (xy[:, 0] - translate[1]) / scale
    tile = TILE_PITCHES_BINS if is_bins(m.get("adata")) else TILE_PITCHES
    return paint_spot_regions(target, rows, cols, regions, tile * m["pitch"] / scale)


def add_regions_layer(
    viewer, spots_layer, image_layer=None, name: str = "Regions", data: np.ndarray | None = None
):
    """Add (or return the existing) Regions Labels layer for ``spots_layer`` and keep the
    spots' regions in sync with it.

    Parameters
    ----------
    viewer : napari.Viewer
    spots_layer : napari layer with ``metadata["stlnmf"]`` of kind "spots"
    image_layer : napari Image layer, optional
        The image to paint on (its pixel grid); default the spots' extent at 1/4 pitch.
    name : str
    data : ndarray (H, W) of int, optional
        Labels to start from (e.g. read from a TIFF); must match the image's shape. By
        default the spots' current regions are painted (see the module docstring).
    """
    spots_meta(spots_layer)  # fail early on a layer that is not ours
    existing = regions_layer_of(viewer, spots_layer)
    if existing is not None:
        if data is not None:
            _check_shape(existing.data.shape, data.shape)
            existing.data = np.asarray(data, dtype=existing.data.dtype)
            sync_regions(existing, spots_layer)
        return existing
    shape, step = _extent(spots_layer, image_layer)
    factor = 1
    while (shape[0] // factor) * (shape[1] // factor) > MAX_LABEL_PIXELS:
        factor += 1
    target = (int(np.ceil(shape[0] / factor)), int(np.ceil(shape[1] / factor)))
    scale = step * factor
    # a downsampled pixel covers `factor` image pixels: its centre sits half-way through
    offset = (factor - 1) / 2 * step
    translate = tuple(
        float(t) + offset
        for t in (image_layer.translate[-2:] if image_layer is not None else (0.0, 0.0))
    )
    if data is None:
        labels = _start_labels(spots_layer, target, scale, translate)
    else:
        _check_shape(target, data.shape)
        labels = np.asarray(data).astype(np.int32)
    layer = viewer.add_labels(
        labels,
        name=name,
        scale=(scale, scale),
        translate=translate,
        opacity=0.35,
        colormap=region_label_colors(),
        metadata={META: {"kind": Kind.REGIONS, "spots_name": spots_layer.name}},
    )
    # napari emits `paint` before the stroke's last values are written, and a stroke may
    # come as many events: sync once, shortly after the last one, from the event loop
    from qtpy.QtCore import QTimer

    timer = QTimer()
    timer.setSingleShot(True)
    timer.setInterval(SYNC_DELAY_MS)
    link = _Link(spots=weakref.ref(unproxied(spots_layer)), timer=timer)
    _LINKS[unproxied(layer)] = link
    layer_ref = weakref.ref(unproxied(layer))

    def _sync() -> None:
        lab, spots = layer_ref(), link.spots()
        if lab is not None and spots is not None:
            sync_regions(lab, spots)

    timer.timeout.connect(_sync)
    layer.events.paint.connect(lambda event: timer.start())
    layer.events.data.connect(lambda event: timer.start())
    sync_regions(layer, spots_layer)
    return layer


def _check_shape(expected, got) -> None:
    if tuple(expected[:2]) != tuple(got[:2]):
        raise ValueError(
            f"region labels of shape {tuple(got)} do not match the painting grid {tuple(expected)}"
        )


def world_to_label_pixels(labels_layer, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) in the pixels of a 2-D layer of world points ``xy`` ((n, 2) as x, y,
    full-resolution px), through the layer's whole world -> data transform (scale,
    translate, rotate, shear and affine), for all points at once."""
    from napari.utils.transforms import Affine

    # napari's world_to_data takes one point and its transform is private (and refused
    # through the viewer proxy plugins get); the same matrix from public attributes
    # (data -> physical, then the layer's affine), inverted once for every point
    layer = labels_layer
    to_physical = Affine(
        scale=layer.scale[-2:],
        translate=layer.translate[-2:],
        rotate=np.asarray(layer.rotate)[-2:, -2:],
        shear=np.asarray(layer.shear)[-1:],
    ).affine_matrix
    to_world = np.asarray(layer.affine.affine_matrix)[-3:, -3:] @ to_physical
    pts = np.asarray(xy, dtype=np.float64)[:, [1, 0]]  # world is (row, col) = (y, x)
    inv = np.linalg.inv(to_world)
    data = pts @ inv[:2, :2].T + inv[:2, 2]
    return data[:, 0], data[:, 1]


def spot_regions(labels_layer, spots_layer, majority: bool = False) -> np.ndarray:
    """Region of every spot (or Visium HD bin) from the Labels layer: the label under the
    spot centre, or (``majority=True``) the most common label over the spot's disk."""
    m = spots_meta(spots_layer)
    rows, cols = world_to_label_pixels(labels_layer, m["coords_xy"])
    scale = float(np.abs(np.asarray(labels_layer.scale[-2:], dtype=np.float64)).min())
    radius = m["spot_diameter"] / 2 / scale if majority else 0.0
    return labels_at_spots(np.asarray(labels_layer.data), rows, cols, radius)


def sync_regions(labels_layer, spots_layer, majority: bool | None = None) -> np.ndarray:
    """Write the Labels layer's regions into the spots layer (``features["region"]`` for
    Points, ``metadata["stlnmf"]["features"]`` for a raster), recolour the spots by region
    and tell the listeners; returns the regions."""
    lm = labels_layer.metadata.setdefault(META, {})
    if majority is None:
        majority = bool(lm.get("majority", False))
    else:
        lm["majority"] = bool(majority)
    regions = spot_regions(labels_layer, spots_layer, majority)
    m = spots_meta(spots_layer)
    m["features"]["region"] = regions
    feats = getattr(spots_layer, "features", None)
    if feats is not None and "region" in feats and len(feats) == len(regions):
        if not np.array_equal(feats["region"].to_numpy(), regions):
            feats["region"] = regions
            spots_layer.face_color = region_colors(regions)
    link = _LINKS.get(unproxied(labels_layer))
    for listener in list(link.listeners) if link is not None else ():
        listener(regions)
    return regions
