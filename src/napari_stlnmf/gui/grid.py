"""Grid view of a slide's per-type result layers: tiled side by side, each titled with its
cell type, and undone exactly when the grid is turned off."""

from __future__ import annotations

import weakref

import numpy as np

from .meta import Role, result_layers, unproxied

__all__ = ["GRID_TITLE_PX", "set_grid"]

#: Height (canvas px) kept free above the slide in each tile for its title.
GRID_TITLE_PX = 20

#: What the grid view changed, per viewer, to undo it when the grid is turned off:
#: {layer: (visible, name overlay visible, opacity)}. Weak keys: a closed viewer or a
#: removed layer is simply forgotten. Keys are the objects themselves, not napari proxies.
_GRID_SAVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _grid(viewer):
    canvas = getattr(viewer, "canvas", None)  # napari >= 0.9 moved grid to the canvas
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def _camera(viewer):
    scene = getattr(viewer, "scene", None)  # napari >= 0.9: viewer.camera is deprecated
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def _world_extent(layers: list) -> np.ndarray:
    """(2, 2) world box (min row/col, max row/col) of ``layers`` as napari fits a view to
    it: the data extent plus half a pixel (images, labels) or half the largest point
    (Points), from public layer attributes only."""
    from napari.layers import Points

    lo, hi = [], []
    for layer in layers:
        extent = np.asarray(layer.extent.world, dtype=np.float64)[:, -2:]
        if isinstance(layer, Points):
            half = np.max(layer.size) / 2 if len(layer.size) else 0.0
            pad = half * np.abs(np.asarray(layer.scale[-2:], dtype=np.float64))
        else:
            pad = np.abs(np.asarray(layer.extent.step, dtype=np.float64)[-2:]) / 2
        lo.append(extent[0] - pad)
        hi.append(extent[1] + pad)
    return np.array([np.min(lo, axis=0), np.max(hi, axis=0)])


def _fit_below_titles(viewer, layers: list) -> None:
    """Refit the camera like ``reset_view`` but with the slide below a band of
    :data:`GRID_TITLE_PX` at the top of each tile, where the title is drawn (napari's fit
    centres the slide and the title would cover its top)."""
    viewer.reset_view(layers=layers)
    extent = _world_extent(layers)
    size = extent[1] - extent[0]
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
        layers = result_layers(viewer, slide, Role.PROPORTION)
        saved = _GRID_SAVED.get(unproxied(viewer))
        if saved is None:  # a second "on" must not save the grid's own state
            saved = weakref.WeakKeyDictionary()
            for layer in viewer.layers:
                saved[unproxied(layer)] = (
                    layer.visible,
                    layer.name_overlay.visible,
                    layer.opacity,
                )
            _GRID_SAVED[unproxied(viewer)] = saved
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
        saved = _GRID_SAVED.pop(unproxied(viewer), None) or {}
        for layer in viewer.layers:
            if unproxied(layer) in saved:
                visible, titled, opacity = saved[unproxied(layer)]
                layer.visible = visible
                layer.name_overlay.visible = titled
                if layer.opacity == 1.0:  # unless the user changed it during the grid
                    layer.opacity = opacity
        viewer.reset_view()
