"""The 90 % intervals in napari: the interval-width layer follows the selected type and
the legend shows its colour bar; each type layer's status line gives the interval; File ▸
Save writes the bounds beside the proportions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_stlnmf.gui.intervals import WIDTH_LAYER, interval_column
from napari_stlnmf.gui.meta import Role, result_layers
from napari_stlnmf.gui.results import show_results
from tests.gui.test_layers import table_for

PLUGIN = "napari-stlnmf"
TYPES = ["A", "B", "C"]


def _with_intervals(viewer):
    table = table_for(types=TYPES)
    p = table[TYPES].to_numpy()
    lower = np.clip(p - np.linspace(0.01, 0.2, len(p))[:, None], 0, 1)
    upper = np.clip(p + np.array([0.05, 0.1, 0.3]), 0, 1)
    layers = show_results(viewer, table, TYPES, slide="s", intervals=(lower, upper))
    return table, lower, upper, layers


def test_width_layer_follows_the_selected_type(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    table, lower, upper, layers = _with_intervals(viewer)
    assert [ly.name for ly in layers] == [*TYPES, "dominant type", WIDTH_LAYER]
    width = viewer.layers[WIDTH_LAYER]
    assert not width.visible and result_layers(viewer, "s", Role.INTERVAL_WIDTH) == [width]
    np.testing.assert_allclose(width.features["interval_width"], upper[:, 0] - lower[:, 0])
    viewer.layers.selection.active = viewer.layers["C"]
    assert width.metadata["stlnmf"]["current"] == "C"
    np.testing.assert_allclose(width.features["interval_width"], upper[:, 2] - lower[:, 2])
    lo, hi = width.face_contrast_limits
    assert lo == 0 and hi == np.nanmax(upper[:, 2] - lower[:, 2])
    # colours follow the widths: the widest spot is the brightest of magma
    colors = np.asarray(width.face_color)
    w = upper[:, 2] - lower[:, 2]
    assert colors[np.argmax(w)].sum() > colors[np.argmin(w)].sum()

    # the legend: title, colour bar, type switch
    legend = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell-type legend")[1]
    viewer.layers.selection.active = width
    assert "C: width of the 90 % interval" in legend.title.text()
    assert not legend.type_box.isHidden() and not legend.bar.pixmap().isNull()
    assert legend.high.text() == f"{hi:.2f}"
    legend.type_box.setCurrentText("B")
    np.testing.assert_allclose(width.features["interval_width"], upper[:, 1] - lower[:, 1])
    assert "B: width" in legend.title.text()

    # the status line of a type layer: the spot's proportion and its interval
    b = viewer.layers["B"]
    b.visible = True  # napari reports only what it draws
    status = b.get_status(tuple(b.data[7]), world=False)
    text = status if isinstance(status, str) else str(status)
    assert f"B 90% interval: [{lower[7, 1]:.3f}, {upper[7, 1]:.3f}]" in text, text
    assert f"B: {table['B'][7]:.3f}"[:6] in text

    # a re-run without intervals takes the width layer away
    show_results(viewer, table, TYPES, slide="s")
    assert WIDTH_LAYER not in [ly.name for ly in viewer.layers]
    assert interval_column("A") not in viewer.layers["A"].features


def test_save_writes_the_bounds_beside_the_proportions(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "hippocampus")  # activates the plugin, as any first use does
    table, lower, upper, _ = _with_intervals(viewer)
    viewer.layers.selection = {viewer.layers["B"]}
    path = tmp_path / "props.csv"
    written = viewer.layers.save(str(path), selected=True, plugin=PLUGIN)
    assert written == [str(path), str(tmp_path / "props_q05.csv"), str(tmp_path / "props_q95.csv")]
    for name, bound in (("props_q05.csv", lower), ("props_q95.csv", upper)):
        got = pd.read_csv(tmp_path / name)
        assert list(got.columns) == ["barcode", "x", "y", "region", *TYPES]
        np.testing.assert_allclose(got[TYPES].to_numpy(), bound, rtol=1e-5, atol=1e-7)


def test_large_slides_get_a_width_raster_that_follows_the_type(make_napari_viewer):
    from napari.layers import Image

    viewer = make_napari_viewer()
    table = table_for(n=400, types=TYPES)
    p = table[TYPES].to_numpy()
    lower = np.clip(p - 0.05, 0, 1)
    upper = np.clip(p + np.array([0.05, 0.1, 0.3]) * np.linspace(0.2, 1, len(p))[:, None], 0, 1)
    layers = show_results(viewer, table, TYPES, slide="s", large=True, intervals=(lower, upper))
    width = viewer.layers[WIDTH_LAYER]
    assert layers[-1] is width and isinstance(width, Image) and not width.visible
    raster = layers[0]
    # the raster pixel under a spot holds its width, for the type the raster shows
    i = 123
    pos = (table["y"][i], table["x"][i])
    w = upper - lower
    width.visible = True  # napari reports only what it draws
    assert np.isclose(raster.get_value(pos, world=True), p[i, 0])
    assert np.isclose(width.get_value(pos, world=True), w[i, 0])
    legend = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell-type legend")[1]
    viewer.layers.selection.active = raster
    legend.type_box.setCurrentText("C")  # the raster shows C: so does the width layer
    assert width.metadata["stlnmf"]["current"] == "C"
    assert np.isclose(width.get_value(pos, world=True), w[i, 2])
    viewer.layers.selection.active = width
    assert "C: width of the 90 % interval" in legend.title.text()
    assert legend.high.text() == f"{np.nanmax(w[:, 2]):.2f}"
    # without intervals the width raster goes
    show_results(viewer, table, TYPES, slide="s", large=True)
    assert WIDTH_LAYER not in [ly.name for ly in viewer.layers]
