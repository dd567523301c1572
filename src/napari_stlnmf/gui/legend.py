"""Colour bar / legend for the active result layer (napari 0.9 has none for Points), the
cell-type switch of the large-slide raster layer, and the grid-view toggle."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from .layers import META
from .results import set_grid, set_raster_type

__all__ = ["LegendWidget", "colormap_image"]


def colormap_image(colormap, width: int = 220, height: int = 14) -> np.ndarray:
    """(height, width, 4) uint8 gradient of a napari colormap, low values on the left."""
    rgba = np.asarray(colormap.map(np.linspace(0.0, 1.0, width)), dtype=np.float64)
    row = np.clip(rgba * 255, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(row[None], height, axis=0))


def _pixmap(rgba: np.ndarray) -> QPixmap:
    h, w = rgba.shape[:2]
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(img.copy())


class LegendWidget(QWidget):
    """Shows what the active layer's colours mean.

    - per-type proportion layer or raster: colour bar with its contrast limits;
    - raster layer: a combo box to switch the cell type shown;
    - dominant-type layer: one colour swatch per type.
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.title = QLabel("Select a cell-type layer")
        self.title.setWordWrap(True)
        self.bar = QLabel()
        self.low, self.high = QLabel(""), QLabel("")
        self.high.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.type_box = QComboBox()
        self.type_box.setVisible(False)
        self.type_box.currentTextChanged.connect(self._switch_type)
        self.grid_box = QCheckBox("grid view of the cell-type layers")
        self.grid_box.toggled.connect(lambda on: set_grid(self.viewer, on))
        self.swatch_box = QWidget()
        self.swatches = QGridLayout(self.swatch_box)
        self.swatches.setContentsMargins(0, 0, 0, 0)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.type_box)
        lay.addWidget(self.bar)
        limits = QGridLayout()
        limits.addWidget(self.low, 0, 0)
        limits.addWidget(self.high, 0, 1)
        lay.addLayout(limits)
        lay.addWidget(self.swatch_box)
        lay.addWidget(self.grid_box)
        lay.addStretch(1)
        self.viewer.layers.selection.events.active.connect(self._on_active)
        self._layer = None
        self._on_active()

    # ---------------------------------------------------------------------------------
    def _on_active(self, event=None) -> None:
        if self._layer is not None:
            for ev in ("face_color", "colormap", "contrast_limits"):
                emitter = getattr(self._layer.events, ev, None)
                if emitter is not None:
                    emitter.disconnect(self.refresh)
        self._layer = self.viewer.layers.selection.active
        if self._layer is not None:
            for ev in ("face_color", "colormap", "contrast_limits"):
                emitter = getattr(self._layer.events, ev, None)
                if emitter is not None:
                    emitter.connect(self.refresh)
        self.refresh()

    def _clear_swatches(self) -> None:
        while self.swatches.count():
            widget = self.swatches.takeAt(0).widget()
            if widget is not None:
                widget.setParent(None)
                widget.deleteLater()
        self.swatch_box.setVisible(False)

    def refresh(self, event=None) -> None:
        """Redraw for the active layer."""
        layer = self._layer
        self._clear_swatches()
        self.type_box.setVisible(False)
        meta = layer.metadata.get(META, {}) if layer is not None else {}
        role = meta.get("role")
        if layer is None or meta.get("kind") != "result":
            self.title.setText("Select a cell-type layer to see its colour scale")
            self.bar.clear()
            self.low.setText("")
            self.high.setText("")
            return
        if role in ("dominant", "raster_dominant"):
            self.title.setText("dominant cell type")
            self.bar.clear()
            self.low.setText("")
            self.high.setText("")
            for i, (name, color) in enumerate(meta.get("colors", {}).items()):
                sw = QLabel()
                rgba = np.zeros((12, 24, 4), dtype=np.uint8)
                rgba[:] = np.clip(np.asarray(color) * 255, 0, 255).astype(np.uint8)
                sw.setPixmap(_pixmap(rgba))
                self.swatches.addWidget(sw, i, 0)
                self.swatches.addWidget(QLabel(str(name)), i, 1)
            self.swatch_box.setVisible(True)
            return
        if role == "raster":
            cmap, limits = layer.colormap, layer.contrast_limits
            self.type_box.blockSignals(True)
            self.type_box.clear()
            self.type_box.addItems(meta["cell_types"])
            self.type_box.setCurrentText(meta.get("current", meta["cell_types"][0]))
            self.type_box.blockSignals(False)
            self.type_box.setVisible(True)
            name = meta.get("current", "")
        else:
            cmap, limits = layer.face_colormap, layer.face_contrast_limits
            name = meta.get("cell_type", layer.name)
        self.title.setText(f"{name}: proportion ({meta.get('slide', '')})")
        self.bar.setPixmap(_pixmap(colormap_image(cmap)))
        self.low.setText(f"{limits[0]:.2f}")
        self.high.setText(f"{limits[1]:.2f}")

    def _switch_type(self, name: str) -> None:
        layer = self._layer
        if not name or layer is None:
            return
        if layer.metadata.get(META, {}).get("role") == "raster":
            set_raster_type(layer, name)
            self.refresh()
