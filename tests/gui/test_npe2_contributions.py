"""Every contribution in napari.yaml, opened the way napari opens it: the Plugins menu and
``add_plugin_dock_widget`` for widgets, ``open_sample`` for samples, ``viewer.open(...,
plugin=)`` for the reader, ``viewer.layers.save`` for the writer.

Building the widget classes directly (as most GUI tests do) hid that none of them opened
from napari's menus; these tests go through napari's own machinery instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from napari.layers import Image, Points
from npe2 import PluginManifest

from napari_stlnmf.gui.dock import StlnmfWidget
from napari_stlnmf.gui.legend import LegendWidget
from napari_stlnmf.gui.regions_widget import RegionsWidget
from napari_stlnmf.gui.results import show_results
from napari_stlnmf.io.export import read_proportions_csv
from napari_stlnmf.io.samples import sample_path
from tests.gui.test_layers import table_for
from tests.io.visium_fixtures import make_outs

PLUGIN = "napari-stlnmf"
MANIFEST = PluginManifest.from_distribution(PLUGIN)
WIDGETS = {w.display_name: w for w in MANIFEST.contributions.widgets}
CLASSES = {
    "STL NMF deconvolution": StlnmfWidget,
    "Cell-type legend": LegendWidget,
    "Tissue regions": RegionsWidget,
}


def test_manifest_lists_what_these_tests_cover():
    assert set(WIDGETS) == set(CLASSES)
    assert {s.key for s in MANIFEST.contributions.sample_data} == {
        "mouse_brain",
        "hippocampus",
        "simulated_slide",
    }
    assert len(MANIFEST.contributions.readers) == 1
    assert len(MANIFEST.contributions.writers) == 1


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_widget_opens_with_add_plugin_dock_widget(make_napari_viewer, name):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    assert isinstance(widget, CLASSES[name])
    # napari hands widgets a proxy that hides private attributes: the widget must work
    # through it (it wraps this very viewer)
    assert getattr(widget.viewer, "__wrapped__", widget.viewer) is viewer
    assert dock.isVisibleTo(viewer.window._qt_window)
    # a dock never asks for more height than a 1000-px screen can give
    assert dock.sizeHint().height() <= 760, dock.sizeHint()


def _plugins_menu_action(viewer, title: str):
    bar = viewer.window._qt_window.menuBar()
    plugins = next(a.menu() for a in bar.actions() if a.text().replace("&", "") == "Plugins")
    ours = next(a.menu() for a in plugins.actions() if a.text() == "STL NMF")
    return next(a for a in ours.actions() if a.text() == title)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_widget_opens_from_the_plugins_menu(make_napari_viewer, qtbot, name):
    viewer = make_napari_viewer()
    action = _plugins_menu_action(viewer, name)
    action.trigger()
    docks = viewer.window._wrapped_dock_widgets
    key = next((k for k in docks if name in k), None)
    assert key is not None, list(docks)
    assert isinstance(docks[key].inner_widget(), CLASSES[name])
    # the menu entry toggles the dock it opened (napari's own behaviour)
    action.trigger()
    assert not docks[key].isVisible()


@pytest.mark.parametrize(
    ("key", "kinds"),
    [
        ("mouse_brain", [Image, Points, Points]),
        ("hippocampus", [Points]),
        ("simulated_slide", [Points]),
    ],
)
def test_samples_open_through_open_sample(make_napari_viewer, key, kinds):
    viewer = make_napari_viewer()
    layers = viewer.open_sample(PLUGIN, key)
    assert [type(ly) for ly in layers] == kinds
    points = [ly for ly in layers if isinstance(ly, Points)][0]
    assert len(points.data) > 100
    assert np.isfinite(points.data).all()


def test_reader_opens_an_outs_folder_through_viewer_open(make_napari_viewer, tmp_path):
    outs = make_outs(tmp_path)
    viewer = make_napari_viewer()
    layers = viewer.open(str(outs.outs), plugin=PLUGIN)
    assert [type(ly) for ly in layers] == [Image, Points]
    spots = layers[1]
    assert len(spots.data) == int(outs.in_tissue.sum())
    assert spots.metadata["stlnmf"]["kind"] == "spots"


def test_reader_opens_the_bundled_outs_folder(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open(str(sample_path("mouse_brain") / "outs"), plugin=PLUGIN)
    assert [type(ly) for ly in layers] == [Image, Points]
    assert len(layers[1].data) == 2310


def _result_layer(viewer):
    table = table_for()
    layers = show_results(viewer, table, ["A", "B", "C"], slide="s")
    viewer.layers.selection.active = layers[1]
    viewer.layers.selection = {layers[1]}
    return table, layers[1]


@pytest.mark.parametrize("plugin", [None, PLUGIN])
def test_writer_saves_a_result_layer(make_napari_viewer, tmp_path, plugin):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "hippocampus")  # activates the plugin, as any first use does
    table, _ = _result_layer(viewer)
    path = tmp_path / "props.csv"
    written = viewer.layers.save(str(path), selected=True, plugin=plugin)
    assert written == [str(path)]
    got = read_proportions_csv(path)
    assert list(got.columns) == ["barcode", "x", "y", "region", "A", "B", "C"]
    np.testing.assert_allclose(got[["A", "B", "C"]], table[["A", "B", "C"]], rtol=1e-5)
    np.testing.assert_allclose(got[["x", "y"]], table[["x", "y"]], rtol=1e-9)


def test_writer_is_listed_first_for_points(make_napari_viewer):
    from napari.plugins import _npe2

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "hippocampus")
    _, layer = _result_layer(viewer)
    filters, writers = _npe2.file_extensions_string_for_layers([layer])
    assert writers[0].command == "napari-stlnmf.write_proportions", filters
    assert filters.startswith("STL NMF cell-type proportions")


def test_writer_saves_the_spots_layer(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    image, spots, truth = viewer.open_sample(PLUGIN, "mouse_brain")
    viewer.layers.selection = {spots}
    path = tmp_path / "spots.csv"
    assert viewer.layers.save(str(path), selected=True) == [str(path)]
    got = pd.read_csv(path)
    assert list(got.columns[:5]) == ["barcode", "x", "y", "total_counts", "region"]
    assert len(got) == 2310
    np.testing.assert_allclose(got[["x", "y"]], spots.metadata["stlnmf"]["coords_xy"])
    np.testing.assert_array_equal(got["region"], spots.features["region"])


def test_writer_leaves_other_points_layers_to_napari(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "hippocampus")
    mine = viewer.add_points(np.array([[1.0, 2.0], [3.0, 4.0]]), name="my points")
    viewer.layers.selection = {mine}
    path = tmp_path / "mine.csv"
    assert viewer.layers.save(str(path), selected=True) == [str(path)]
    got = pd.read_csv(path)
    assert list(got.columns) == ["index", "axis-0", "axis-1"]  # napari's own format
    other = viewer.add_points(np.array([[5.0, 6.0]]), name="other points")
    viewer.layers.selection = {mine, other}
    with pytest.raises(TypeError, match="'my points'"):
        viewer.layers.save(str(tmp_path / "both.csv"), selected=True, plugin=PLUGIN)
    assert not (tmp_path / "both.csv").exists()
