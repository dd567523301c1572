"""A new user's first day, driven through napari's own menus (not by building widgets).

File ▸ Open Sample ▸ STL NMF ▸ Mouse brain; Plugins ▸ STL NMF ▸ Tissue regions: add the
Regions layer and paint one stroke; Plugins ▸ STL NMF ▸ STL NMF deconvolution: choose the
reference, Train + deconvolve; Plugins ▸ STL NMF ▸ Cell-type legend: robust scaling, grid
view; File ▸ Save Selected Layers on a result layer (the dialog's first file type, as a user
who just presses Save). Then the same run from the CLI with the regions painted here.

:func:`first_day` returns what the user saw; ``tests/gui/test_first_day.py`` asserts on it
and ``scripts/gui_screenshots.py`` uses it to retake the docs' screenshots.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Settings small enough for a test; the CLI gets the same ones.
EPOCHS, LAYERS, SEED = 2, 8, 3


def settle(seconds: float = 0.3) -> None:
    """Let the event loop run (paint events, queued signals, timers)."""
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > end:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        settle(0.05)


def menu_action(viewer, *path: str):
    """The QAction at ``path`` in the main window's menu bar (texts as shown, no '&')."""

    def clean(text: str) -> str:
        return text.replace("&&", "\0").replace("&", "").replace("\0", "&")

    bar = viewer.window._qt_window.menuBar()
    actions = bar.actions()
    for i, title in enumerate(path):
        found = next((a for a in actions if clean(a.text()) == title), None)
        if found is None:
            seen = [clean(a.text()) for a in actions]
            raise LookupError(f"no menu entry {title!r} under {path[:i]}; there are {seen}")
        if i == len(path) - 1:
            return found
        actions = found.menu().actions()
    raise LookupError(path)


def open_dock(viewer, title: str):
    """Plugins ▸ STL NMF ▸ ``title``; returns the widget napari built."""
    menu_action(viewer, "Plugins", "STL NMF", title).trigger()
    settle(0.3)
    docks = viewer.window._wrapped_dock_widgets
    key = next(k for k in docks if title in k)
    return docks[key].inner_widget()


def shot(viewer, shots: Path | None, name: str, width: int = 1200) -> None:
    """A screenshot of the whole window (docs/images), when ``shots`` is given."""
    if shots is None:
        return
    from PIL import Image

    settle(1.0)
    img = viewer.screenshot(canvas_only=False, flash=False)
    im = Image.fromarray(img).convert("RGB")
    if im.width > width:
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im = im.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    path = shots / name
    im.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def save_selected_with_default_type(viewer, path: Path) -> str:
    """File ▸ Save Selected Layers, typing ``path`` and keeping the first file type."""
    from qtpy.QtWidgets import QFileDialog

    seen = {}

    def fake_dialog(*args, filter="", **kwargs):  # noqa: A002 (Qt's keyword)
        seen["filters"] = filter
        return str(path), filter.split(";;")[0]

    original = QFileDialog.getSaveFileName
    QFileDialog.getSaveFileName = staticmethod(fake_dialog)
    try:
        menu_action(viewer, "File", "Save Selected Layers...").trigger()
        settle(0.3)
    finally:
        QFileDialog.getSaveFileName = original
    return seen.get("filters", "")


def stroke(regions, spots, label: int) -> np.ndarray:
    """Paint ``label`` over a disk of about 3 spot pitches in the upper hippocampus, as one
    undoable paint step; returns the mask of spots whose centre it covers."""
    meta = spots.metadata["stlnmf"]
    xy = meta["coords_xy"]
    lo, hi = xy.min(0), xy.max(0)
    centre = lo + np.array([0.55, 0.35]) * (hi - lo)  # (x, y): hippocampus of this H&E
    radius = 3.0 * meta["pitch"]
    scale = float(regions.scale[-1])
    rows = (centre[1] - regions.translate[0]) / scale
    cols = (centre[0] - regions.translate[1]) / scale
    r = radius / scale
    rr, cc = np.mgrid[int(rows - r) : int(rows + r) + 1, int(cols - r) : int(cols + r) + 1]
    disk = (rr - rows) ** 2 + (cc - cols) ** 2 <= r**2
    regions.data_setitem((rr[disk], cc[disk]), label)
    from napari_stlnmf.gui.regions import spot_regions

    return spot_regions(regions, spots) == label


def first_day(
    viewer, workdir: Path, shots: Path | None = None, epochs: int = EPOCHS, cli: bool = True
) -> dict:
    """Run the flow in ``viewer`` (a real window); ``workdir`` gets the files a user would
    write, ``shots`` (optional) the screenshots. ``cli=False`` skips the CLI run. Returns
    the observations (see the module docstring)."""
    from napari_stlnmf.io.samples import load_sample

    obs: dict = {}
    workdir.mkdir(parents=True, exist_ok=True)
    viewer.window._qt_window.resize(1500, 950)

    # 1. the sample, from the File menu
    sample_title = "Mouse brain, H&E + spots (STL NMF)"
    menu_action(viewer, "File", "Open Sample", "STL NMF", sample_title).trigger()
    settle(0.5)
    obs["layers_after_sample"] = [ly.name for ly in viewer.layers]
    spots = viewer.layers["mouse_brain spots"]
    obs["sample_regions"] = spots.features["region"].to_numpy().copy()

    # 2. regions: the dock, the layer (it starts from the sample's regions), one stroke
    regions_dock = open_dock(viewer, "Tissue regions")
    shot(viewer, shots, "sample_spots.png")
    regions_dock.add_button.click()
    settle(0.3)
    regions = viewer.layers["Regions"]
    obs["regions_after_add"] = spots.features["region"].to_numpy().copy()
    new_label = int(regions.selected_label)
    covered = stroke(regions, spots, new_label)
    obs["stroke_label"], obs["stroke_spots"] = new_label, int(covered.sum())
    wait_until(lambda: f"{new_label}: " in regions_dock.status.text(), 5, "the region count")
    obs["region_text"] = regions_dock.status.text()
    obs["spot_colors_in_stroke"] = np.asarray(spots.face_color)[covered].copy()
    shot(viewer, shots, "painted_region.png")
    regions_tif = regions_dock.save(str(workdir / "regions.tif"))
    obs["regions_tif"] = regions_tif
    regions.visible = False  # painted: the user hides the paint to read the maps

    # 3. the deconvolution dock: reference, settings, Train + deconvolve
    reference = workdir / "reference.h5ad"
    load_sample("mouse_brain").reference.write_h5ad(reference)
    dock = open_dock(viewer, "STL NMF deconvolution")
    obs["dock_regions_choice"] = getattr(dock.regions.value, "name", None)
    dock.ref_path.value = reference
    settle(0.3)
    obs["label_key"] = dock.label_key.value
    obs["overlap_text"] = dock.overlap.text()
    dock.epochs.value, dock.layers_n.value, dock.seed.value = epochs, LAYERS, SEED
    dock.device.value = "cpu"
    dock.buttons["Train + deconvolve"].click()
    if shots is not None:  # the live loss plot, half-way through training
        wait_until(lambda: len(dock.loss.epochs) > epochs // 2 or not dock.busy, 600, "epochs")
        shot(viewer, shots, "widget_training.png")
    wait_until(lambda: not dock.busy, 600, "training and deconvolution")
    settle(0.5)
    obs["status"] = dock.status.text()
    obs["last_error"] = dock.last_error
    shot(viewer, shots, "widget_result.png")

    # 4. what the maps look like
    from napari_stlnmf.gui.results import result_layers

    per_type = result_layers(viewer, spots.name, "proportion")
    obs["result_names"] = [ly.name for ly in per_type]
    obs["result_opacity"] = [float(ly.opacity) for ly in per_type]
    obs["spots_visible_after_results"] = bool(spots.visible)

    # 5. the legend: robust scaling on CA1, then the grid
    legend = open_dock(viewer, "Cell-type legend")
    ca1 = viewer.layers["CA1"]
    for ly in per_type:
        ly.visible = ly is ca1
    viewer.layers.selection.active = ca1
    legend.scaling_box.setCurrentText("robust p1–p99")
    settle(0.3)
    values = ca1.features["CA1"].to_numpy()
    obs["ca1_limits"] = tuple(map(float, ca1.face_contrast_limits))
    obs["ca1_p99"] = float(np.nanpercentile(values, 99))
    obs["ca1_values"] = values
    obs["legend_range"] = (legend.low.text(), legend.high.text())
    shot(viewer, shots, "result_layer_legend.png")
    dominant = result_layers(viewer, spots.name, "dominant")[0]
    ca1.visible, dominant.visible = False, True
    viewer.layers.selection.active = dominant
    shot(viewer, shots, "dominant_type.png")
    dominant.visible = False
    legend.grid_box.setChecked(True)
    settle(0.5)
    obs["grid_titles"] = {ly.name: (bool(ly.name_overlay.visible), ly.visible) for ly in per_type}
    shot(viewer, shots, "grid_view.png", width=1300)
    legend.grid_box.setChecked(False)
    settle(0.3)

    # 5b. the 90 % intervals: CA1 selected -> the interval-width layer shows CA1, the
    # legend its colour bar; the status bar gives a spot's proportion and interval
    from napari_stlnmf.gui.intervals import WIDTH_LAYER, interval_column

    width = viewer.layers[WIDTH_LAYER]
    viewer.layers.selection.active = ca1
    settle(0.2)
    obs["width_type_after_ca1"] = width.metadata["stlnmf"]["current"]
    width.visible = True
    viewer.layers.selection.active = width
    settle(0.3)
    obs["legend_on_width"] = (legend.title.text(), legend.type_box.isVisible())
    obs["width_values"] = width.features["interval_width"].to_numpy()
    shot(viewer, shots, "interval_width.png")
    width.visible = False
    i = int(np.nanargmax(ca1.features["CA1"].to_numpy()))
    ca1.visible = True  # napari reports only what it draws
    settle(0.2)
    status = ca1.get_status(tuple(ca1.data[i]), world=False)
    obs["ca1_status"] = status if isinstance(status, str) else str(status)
    obs["ca1_interval_feature"] = ca1.features[interval_column("CA1")].iloc[i]
    ca1.visible = False

    # 6. File ▸ Save Selected Layers on a result layer, keeping the default file type
    viewer.layers.selection = {ca1}
    saved = workdir / "napari_proportions.csv"
    obs["save_filters"] = save_selected_with_default_type(viewer, saved)
    obs["saved_csv"] = saved if saved.exists() else None

    # 7. the same run from the CLI, with the regions painted above
    if not cli:
        return obs
    out = workdir / "cli"
    cmd = [sys.executable, "-m", "napari_stlnmf.cli", "deconvolve", "--sample", "mouse_brain"]
    cmd += ["--regions", str(regions_tif), "--epochs", str(epochs), "--layers", str(LAYERS)]
    cmd += ["--seed", str(SEED), "--device", "cpu", "--no-figure", "-q", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    obs["cli_returncode"], obs["cli_stderr"] = done.returncode, done.stderr
    obs["cli_csv"] = out / "proportions.csv"
    return obs
