"""Colour bar / legend for the active result layer (napari 0.9 has none for Points), the
display controls of a slide's result layers (opacity, contrast scaling), the cell-type
switch of the large-slide raster layer, and the grid-view toggle."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QSlider,
    QWidget,
)

from .intervals import set_width_type, width_colormap_and_limits
from .meta import DOMINANT_ROLES, Role, meta_of, result_layers, role_of
from .result_style import scaling_of
from .results import (
    DEFAULT_SCALING,
    RESULT_OPACITY,
    SCALINGS,
    set_grid,
    set_raster_type,
    set_result_opacity,
    set_scaling,
)
from .results_raster import has_raster_values
from .scroll import ScrollableDock

__all__ = ["LegendWidget", "colormap_image"]

#: What the legend says under the colour bar for each scaling.
SCALING_HINTS = {
    "linear": "fixed 0–1 for every type: types compare directly, rare types stay dark",
    "per_type": "0 to the type's largest proportion",
    "robust": "1st–99th percentile of the type: the top 1 % of spots share the brightest colour",
}


def colormap_image(colormap, width: int = 220, height: int = 14) -> np.ndarray:
    """(height, width, 4) uint8 gradient of a napari colormap, low values on the left.

    A colormap with transparency is drawn over a grey checkerboard, so its faded low end
    reads as see-through rather than as a colour.
    """
    rgba = np.asarray(colormap.map(np.linspace(0.0, 1.0, width)), dtype=np.float64)
    return _over_checker(np.repeat(rgba[None], height, axis=0))


def _over_checker(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) float RGBA in [0, 1] composited over a grey checkerboard, as opaque
    uint8 RGBA (a QLabel would otherwise blend it with the dark theme)."""
    h, w = rgba.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    checker = np.where(((yy // 4) + (xx // 4)) % 2 == 0, 0.85, 0.6)[..., None]
    alpha = rgba[..., 3:4]
    rgb = rgba[..., :3] * alpha + checker * (1 - alpha)
    out = np.concatenate([rgb, np.ones((h, w, 1))], axis=-1)
    return np.ascontiguousarray(np.clip(out * 255, 0, 255).astype(np.uint8))


def _pixmap(rgba: np.ndarray) -> QPixmap:
    h, w = rgba.shape[:2]
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(img.copy())


class LegendWidget(ScrollableDock):
    """Shows what the active layer's colours mean and how the slide's results are drawn.

    - per-type proportion layer or raster: colour bar with its contrast limits;
    - raster layer: a combo box to switch the cell type shown (``type_box``);
    - dominant-type layer: one colour swatch per type;
    - for the slide of the active result layer: ``opacity_slider`` (0-100 %) and
      ``scaling_box`` (the labels of :data:`~napari_stlnmf.gui.results.SCALINGS`, item
      data = the key), and ``grid_box`` (grid view of the per-type layers).
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.slide: str | None = None  # slide whose result layers the controls drive
        self.title = QLabel("Select a cell-type layer")
        self.title.setWordWrap(True)
        self.bar = QLabel()
        self.low, self.high = QLabel(""), QLabel("")
        self.high.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.type_box = QComboBox()
        self.type_box.setVisible(False)
        self.type_box.currentTextChanged.connect(self._switch_type)
        self.scaling_box = QComboBox()
        for key, label in SCALINGS.items():
            self.scaling_box.addItem(label, key)
        self.scaling_box.setCurrentIndex(list(SCALINGS).index(DEFAULT_SCALING))
        self.scaling_box.setToolTip("contrast limits of every per-type map of the slide")
        self.scaling_box.currentIndexChanged.connect(self._set_scaling)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(RESULT_OPACITY * 100))
        self.opacity_slider.setToolTip("opacity of the slide's result layers over the H&E")
        self.opacity_slider.valueChanged.connect(self._set_opacity)
        self.grid_box = QCheckBox("grid view of the cell-type layers")
        self.grid_box.toggled.connect(self._set_grid)
        self.swatch_box = QWidget()
        self.swatches = QGridLayout(self.swatch_box)
        self.swatches.setContentsMargins(0, 0, 0, 0)
        self.swatches.setColumnStretch(1, 1)  # names next to their swatch, not far right
        lay = self.body_layout
        lay.addWidget(self.title)
        lay.addWidget(self.type_box)
        lay.addWidget(self.bar)
        limits = QGridLayout()
        limits.addWidget(self.low, 0, 0)
        limits.addWidget(self.high, 0, 1)
        lay.addLayout(limits)
        lay.addWidget(self.hint)
        lay.addWidget(self.swatch_box)
        form = QFormLayout()
        form.addRow("scaling", self.scaling_box)
        form.addRow("opacity", self.opacity_slider)
        lay.addLayout(form)
        lay.addWidget(self.grid_box)
        lay.addStretch(1)
        self.viewer.layers.selection.events.active.connect(self._on_active)
        self._layer = None
        self._on_active()

    # ---------------------------------------------------------------------------------
    def _on_active(self, event=None) -> None:
        if self._layer is not None:
            for ev in ("face_color", "colormap", "contrast_limits", "opacity"):
                emitter = getattr(self._layer.events, ev, None)
                if emitter is not None:
                    emitter.disconnect(self.refresh)
        self._layer = self.viewer.layers.selection.active
        if self._layer is not None:
            for ev in ("face_color", "colormap", "contrast_limits", "opacity"):
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

    def _sync_controls(self, layer, meta: dict) -> None:
        """Point the slide controls at the active result layer's slide and show its
        settings (without re-applying them)."""
        self.slide = meta.get("slide")
        scaling = meta.get("scaling")
        if scaling not in SCALINGS:
            scaling = scaling_of(self.viewer, self.slide) or self.scaling_box.currentData()
        self.scaling_box.blockSignals(True)
        self.scaling_box.setCurrentIndex(list(SCALINGS).index(scaling))
        self.scaling_box.blockSignals(False)
        self.opacity_slider.blockSignals(True)
        self.opacity_slider.setValue(round(float(layer.opacity) * 100))
        self.opacity_slider.blockSignals(False)

    def _show_bar(self, on: bool) -> None:
        """Colour bar rows shown or hidden (hidden ones would leave a gap above the
        swatches of a dominant-type layer)."""
        for w in (self.bar, self.low, self.high, self.hint):
            w.setVisible(on)

    def refresh(self, event=None) -> None:
        """Redraw for the active layer."""
        layer = self._layer
        self._clear_swatches()
        self.type_box.setVisible(False)
        self.hint.setText("")
        self._show_bar(False)
        role = role_of(layer)
        meta = meta_of(layer)
        if role is None:
            self.title.setText("Select a cell-type layer to see its colour scale")
            self.bar.clear()
            self.low.setText("")
            self.high.setText("")
            return
        self._sync_controls(layer, meta)
        if role in DOMINANT_ROLES:
            self.title.setText("dominant cell type")
            self.bar.clear()
            self.low.setText("")
            self.high.setText("")
            for i, (name, color) in enumerate(meta.get("colors", {}).items()):
                sw = QLabel()
                rgba = np.broadcast_to(np.asarray(color, dtype=np.float64), (12, 24, 4))
                sw.setPixmap(_pixmap(_over_checker(rgba)))
                self.swatches.addWidget(sw, i, 0)
                self.swatches.addWidget(QLabel(str(name)), i, 1)
            self.swatch_box.setVisible(True)
            return
        if role is Role.INTERVAL_WIDTH:
            self.type_box.blockSignals(True)
            self.type_box.clear()
            self.type_box.addItems(meta["cell_types"])
            self.type_box.setCurrentText(meta.get("current", meta["cell_types"][0]))
            self.type_box.blockSignals(False)
            self.type_box.setVisible(True)
            cmap, limits = width_colormap_and_limits(layer)
            self.title.setText(
                f"{meta.get('current', '')}: width of the 90 % interval ({meta.get('slide', '')})"
            )
            self._show_bar(True)
            self.bar.setPixmap(_pixmap(colormap_image(cmap)))
            self.low.setText(f"{limits[0]:.2f}")
            self.high.setText(f"{limits[1]:.2f}")
            self.hint.setText(
                "q95 - q05 of each spot's proportion; the selected cell-type layer, or the "
                "box above, picks the type"
            )
            return
        if role is Role.RASTER:
            cmap, limits = layer.colormap, layer.contrast_limits
            self.type_box.blockSignals(True)
            self.type_box.clear()
            self.type_box.addItems(meta["cell_types"])
            self.type_box.setCurrentText(meta.get("current", meta["cell_types"][0]))
            self.type_box.blockSignals(False)
            self.type_box.setVisible(has_raster_values(layer))
            name = meta.get("current", "")
        else:
            cmap, limits = layer.face_colormap, layer.face_contrast_limits
            name = meta.get("cell_type", layer.name)
        self.title.setText(f"{name}: proportion ({meta.get('slide', '')})")
        self._show_bar(True)
        self.bar.setPixmap(_pixmap(colormap_image(cmap)))
        self.low.setText(f"{limits[0]:.2f}")
        self.high.setText(f"{limits[1]:.2f}")
        self.hint.setText(SCALING_HINTS.get(meta.get("scaling", ""), ""))

    # ---------------------------------------------------------------------------------
    def _switch_type(self, name: str) -> None:
        layer = self._layer
        if not name or layer is None:
            return
        if has_raster_values(layer):
            set_raster_type(layer, name)
            for width in result_layers(self.viewer, self.slide, Role.INTERVAL_WIDTH):
                set_width_type(width, name)
            self.refresh()
        elif role_of(layer) is Role.INTERVAL_WIDTH:
            set_width_type(layer, name)
            self.refresh()

    def _set_scaling(self, index: int) -> None:
        key = self.scaling_box.itemData(index)
        if key in SCALINGS:
            set_scaling(self.viewer, key, self.slide)
            # napari emits no event when only the contrast limits of Points change
            self.refresh()

    def _set_opacity(self, value: int) -> None:
        set_result_opacity(self.viewer, value / 100.0, self.slide)

    def _set_grid(self, on: bool) -> None:
        set_grid(self.viewer, on, self.slide)
