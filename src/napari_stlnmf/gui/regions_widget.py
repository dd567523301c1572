"""Dock widget for tissue regions: add a Regions Labels layer over a slide, choose centre
or majority assignment, load / save the label image as TIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QLabel,
    QPushButton,
)

from .meta import Kind, is_spots, kind_of, spots_meta, unproxied
from .notify import notify
from .regions import (
    add_regions_layer,
    on_regions_changed,
    regions_layer_of,
    spots_of,
    sync_regions,
)
from .scroll import ScrollableDock

__all__ = ["RegionsWidget"]


class RegionsWidget(ScrollableDock):
    """Paint regions for a spots layer; regions feed the engine's graph and group term.

    The status line counts the spots per region, live: it is redrawn after every stroke
    (when the spots' regions are synced), not only on a button press.
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.spots_box = QComboBox()
        self.add_button = QPushButton("Add / show Regions layer")
        self.majority = QCheckBox("region = majority over the spot disk (else: centre)")
        self.load_button = QPushButton("Load label image (TIFF/PNG)…")
        self.save_button = QPushButton("Save label image (TIFF)…")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.help = QLabel(
            "Add the Regions layer, pick a label number in the layer controls and paint "
            "over the tissue; spots take the region under their centre. Label 0 erases."
        )
        self.help.setWordWrap(True)
        lay = self.body_layout
        lay.addWidget(self.help)
        lay.addWidget(QLabel("spots layer"))
        for w in (
            self.spots_box,
            self.add_button,
            self.majority,
            self.load_button,
            self.save_button,
            self.status,
        ):
            lay.addWidget(w)
        lay.addStretch(1)
        self.add_button.clicked.connect(lambda: self.add_layer())
        self.majority.toggled.connect(self._resync)
        self.load_button.clicked.connect(lambda: self.load())
        self.save_button.clicked.connect(lambda: self.save())
        self.spots_box.currentTextChanged.connect(lambda _: self._report())
        self.viewer.layers.events.inserted.connect(self._refresh_choices)
        self.viewer.layers.events.removed.connect(self._refresh_choices)
        # the viewer outlives a closed dock: stop listening when the widget goes
        self.destroyed.connect(self._disconnect)
        self._alive = True
        self._listening: set[int] = set()
        self._refresh_choices()

    # ---------------------------------------------------------------------------------
    def _spots_layers(self) -> list:
        return [ly for ly in self.viewer.layers if is_spots(ly)]

    def _refresh_choices(self, event=None) -> None:
        current = self.spots_box.currentText()
        self.spots_box.clear()
        self.spots_box.addItems([ly.name for ly in self._spots_layers()])
        if current:
            self.spots_box.setCurrentText(current)
        for layer in self.viewer.layers:  # Regions layers added from Python count too
            if spots_of(layer) is not None:
                self._listen(layer)
        self._report()

    def _listen(self, layer) -> None:
        key = id(unproxied(layer))  # napari's proxy of a layer is a new object each time
        if key not in self._listening:
            self._listening.add(key)
            on_regions_changed(layer, lambda regions: self._alive and self._report())

    def _disconnect(self, *args) -> None:
        self._alive = False
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            ev.disconnect(self._refresh_choices)

    def spots_layer(self):
        name = self.spots_box.currentText()
        for ly in self._spots_layers():
            if ly.name == name:
                return ly
        return None

    def _image_for(self, spots):
        lib = spots_meta(spots).get("library_id")
        for ly in self.viewer.layers:
            if kind_of(ly) is Kind.IMAGE and ly.name.startswith(str(lib)):
                return ly
        return None

    def regions_layer(self):
        spots = self.spots_layer()
        return regions_layer_of(self.viewer, spots) if spots is not None else None

    def add_layer(self, data: np.ndarray | None = None):
        """Add (or return) the Regions layer of the chosen spots layer."""
        spots = self.spots_layer()
        if spots is None:
            notify("open a slide first (File ▸ Open, or a sample)", error=True)
            return None
        try:
            layer = add_regions_layer(self.viewer, spots, self._image_for(spots), data=data)
        except ValueError as e:
            notify(str(e), error=True)
            return None
        self._listen(layer)
        sync_regions(layer, spots, majority=self.majority.isChecked())
        self.viewer.layers.selection.active = layer
        layer.mode = "paint"
        if layer.selected_label == 0 or layer.selected_label in self._used_regions(spots):
            # start on a new region number, so a first stroke adds a region
            layer.selected_label = int(max(self._used_regions(spots), default=0)) + 1
        self._report()
        return layer

    def _resync(self, on: bool) -> None:
        layer = self.regions_layer()
        if layer is not None:
            sync_regions(layer, self.spots_layer(), majority=on)
        self._report()

    @staticmethod
    def _used_regions(spots) -> list[int]:
        regions = spots_meta(spots)["features"]["region"].to_numpy()
        return [int(v) for v in np.unique(regions) if v != 0]

    def _report(self) -> None:
        """Spots per region of the chosen spots layer (0 = unassigned)."""
        spots = self.spots_layer()
        if spots is None:
            self.status.setText("open a slide first (File ▸ Open, or File ▸ Open Sample)")
            return
        regions = spots_meta(spots)["features"]["region"].to_numpy()
        values, counts = np.unique(regions, return_counts=True)
        text = ", ".join(f"{v}: {c}" for v, c in zip(values, counts))
        self.status.setText(f"spots per region (0 = unassigned): {text}")

    def load(self, path: str | None = None):
        """Load a label image painted on the shown image's pixel grid."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self, "Region labels", "", "Images (*.tif *.tiff *.png)"
            )
            if not path:
                return None
        from ..io.errors import InputError
        from ..io.regions import read_label_image

        try:
            data = read_label_image(Path(path))
        except InputError as e:
            notify(str(e), error=True)
            return None
        return self.add_layer(data=data)

    def save(self, path: str | None = None):
        """Save the Regions layer as a TIFF (atomically)."""
        layer = self.regions_layer()
        if layer is None:
            notify("no Regions layer to save", error=True)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save region labels", "regions.tif", "TIFF (*.tif *.tiff)"
            )
            if not path:
                return None
        from ..io.regions import write_label_image

        try:
            out = write_label_image(path, np.asarray(layer.data))
        except OSError as e:
            notify(f"could not save {path}: {e}", error=True)
            return None
        notify(f"saved regions to {out}")
        return out
