"""Painting tissue regions: a "Regions" Labels layer over the slide, kept in sync with the
spots' ``features["region"]`` whenever a paint stroke ends (or the labels are replaced).

The Labels layer covers the shown image at the image's own resolution, or coarser for huge
images (painting a full-resolution whole-slide image is slow in napari); its ``scale``
keeps it in the slide's full-resolution pixel world either way.
"""

from __future__ import annotations

import numpy as np

from ..io.regions import labels_at_spots
from .layers import META

__all__ = ["add_regions_layer", "spot_regions", "sync_regions", "MAX_LABEL_PIXELS"]

#: Labels layers above this many pixels are downsampled (by a whole factor).
MAX_LABEL_PIXELS = 16_000_000
#: Spots' regions are recomputed this long after the last paint event.
SYNC_DELAY_MS = 100


def _spots_meta(spots_layer) -> dict:
    m = spots_layer.metadata.get(META, {})
    if m.get("kind") != "spots":
        raise ValueError(f"layer {spots_layer.name!r} is not a spots layer of napari-stlnmf")
    return m


def _extent(spots_layer, image_layer) -> tuple[tuple[int, int], float]:
    """(shape, world px per label px) of a Labels layer over the image or the spots."""
    if image_layer is not None:
        shape = tuple(int(s) for s in image_layer.data.shape[:2])
        step = float(image_layer.scale[-1])
        return shape, step
    m = _spots_meta(spots_layer)
    xy = m["coords_xy"]
    step = m["pitch"] / 4.0
    hi = xy.max(0) + m["pitch"]
    return (int(np.ceil(hi[1] / step)) + 1, int(np.ceil(hi[0] / step)) + 1), step


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
        Labels to start from (e.g. read from a TIFF); must match the image's shape.
    """
    _spots_meta(spots_layer)  # fail early on a layer that is not ours
    for layer in viewer.layers:
        lm = layer.metadata.get(META, {})
        if lm.get("kind") == "regions" and lm.get("spots") is spots_layer:
            if data is not None:
                _check_shape(layer.data.shape, data.shape)
                layer.data = np.asarray(data, dtype=layer.data.dtype)
                sync_regions(layer, spots_layer)
            return layer
    shape, step = _extent(spots_layer, image_layer)
    factor = 1
    while (shape[0] // factor) * (shape[1] // factor) > MAX_LABEL_PIXELS:
        factor += 1
    target = (int(np.ceil(shape[0] / factor)), int(np.ceil(shape[1] / factor)))
    if data is None:
        labels = np.zeros(target, dtype=np.int32)
    else:
        _check_shape(target, data.shape)
        labels = np.asarray(data).astype(np.int32)
    scale = step * factor
    # a downsampled pixel covers `factor` image pixels: its centre sits half-way through
    offset = (factor - 1) / 2 * step
    translate = tuple(
        float(t) + offset
        for t in (image_layer.translate[-2:] if image_layer is not None else (0.0, 0.0))
    )
    layer = viewer.add_labels(
        labels,
        name=name,
        scale=(scale, scale),
        translate=translate,
        opacity=0.45,
        metadata={META: {"kind": "regions", "spots": spots_layer, "radius_fraction": 0.0}},
    )
    # napari emits `paint` before the stroke's last values are written, and a stroke may
    # come as many events: sync once, shortly after the last one, from the event loop
    from qtpy.QtCore import QTimer

    timer = QTimer()
    timer.setSingleShot(True)
    timer.setInterval(SYNC_DELAY_MS)
    timer.timeout.connect(lambda: sync_regions(layer, spots_layer))
    layer.metadata[META]["sync_timer"] = timer
    layer.events.paint.connect(lambda event: timer.start())
    layer.events.data.connect(lambda event: timer.start())
    sync_regions(layer, spots_layer)
    return layer


def _check_shape(expected, got) -> None:
    if tuple(expected[:2]) != tuple(got[:2]):
        raise ValueError(
            f"region labels of shape {tuple(got)} do not match the painting grid {tuple(expected)}"
        )


def spot_regions(labels_layer, spots_layer, majority: bool = False) -> np.ndarray:
    """Region of every spot from the Labels layer: the label under the spot centre, or
    (``majority=True``) the most common label over the spot's disk."""
    m = _spots_meta(spots_layer)
    xy = m["coords_xy"]
    scale = np.asarray(labels_layer.scale[-2:], dtype=np.float64)
    trans = np.asarray(labels_layer.translate[-2:], dtype=np.float64)
    rows = (xy[:, 1] - trans[0]) / scale[0]
    cols = (xy[:, 0] - trans[1]) / scale[1]
    radius = m["spot_diameter"] / 2 / scale[0] if majority else 0.0
    return labels_at_spots(np.asarray(labels_layer.data), rows, cols, radius)


def sync_regions(labels_layer, spots_layer, majority: bool | None = None) -> np.ndarray:
    """Write the Labels layer's regions into the spots layer (``features["region"]`` for
    Points, ``metadata["stlnmf"]["features"]`` for a raster); returns them."""
    lm = labels_layer.metadata.get(META, {})
    if majority is None:
        majority = bool(lm.get("majority", False))
    else:
        lm["majority"] = bool(majority)
    regions = spot_regions(labels_layer, spots_layer, majority)
    m = _spots_meta(spots_layer)
    m["features"]["region"] = regions
    if hasattr(spots_layer, "features") and "region" in getattr(spots_layer, "features", {}):
        feats = spots_layer.features
        if not np.array_equal(feats["region"].to_numpy(), regions):
            feats["region"] = regions
            # a layer coloured by region shows the new regions at once
            spots_layer.refresh_colors(update_color_mapping=False)
    return regions
