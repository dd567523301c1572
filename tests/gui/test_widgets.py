"""Legend and regions dock widgets."""

import numpy as np
import pytest

from napari_stlnmf.gui.legend import LegendWidget
from napari_stlnmf.gui.regions_widget import RegionsWidget
from napari_stlnmf.gui.results import show_results
from tests.gui.test_layers import add_tuples, table_for
from tests.io.visium_fixtures import make_outs


def test_legend_follows_the_active_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    table = table_for()
    layers = show_results(viewer, table, ["A", "B", "C"], slide="s")
    legend = LegendWidget(viewer)
    viewer.layers.selection.active = layers[1]
    assert legend.title.text().startswith("B: proportion")
    assert (legend.low.text(), legend.high.text()) == ("0.00", "1.00")
    assert not legend.bar.pixmap().isNull()
    viewer.layers.selection.active = layers[3]  # dominant type
    assert legend.title.text() == "dominant cell type"
    assert legend.swatches.count() == 2 * 4  # (none) + 3 types, swatch + name each
    viewer.layers.selection.active = layers[0]
    assert legend.swatches.count() == 0
    other = viewer.add_points(np.zeros((2, 2)))
    viewer.layers.selection.active = other
    assert "Select a cell-type layer" in legend.title.text()


def test_legend_switches_the_raster_type(make_napari_viewer):
    viewer = make_napari_viewer()
    table = table_for(n=300)
    raster, _ = show_results(viewer, table, ["A", "B", "C"], slide="big", large=True)
    legend = LegendWidget(viewer)
    viewer.layers.selection.active = raster
    assert legend.type_box.isVisibleTo(legend)
    assert [legend.type_box.itemText(i) for i in range(3)] == ["A", "B", "C"]
    legend.type_box.setCurrentText("C")
    assert raster.name == "C (proportion)"
    row, col = np.rint(raster.world_to_data((table.y[9], table.x[9]))).astype(int)
    assert raster.data[row, col] == pytest.approx(table["C"][9], abs=1e-6)


def test_regions_widget_add_save_load(make_napari_viewer, tmp_path, qtbot):
    from napari_stlnmf._reader import read_slide

    outs = make_outs(tmp_path)
    viewer = make_napari_viewer()
    image, spots = add_tuples(viewer, read_slide(str(outs.outs)))
    widget = RegionsWidget(viewer)
    assert widget.spots_box.currentText() == spots.name
    layer = widget.add_layer()
    assert layer is not None and layer.mode == "paint"
    assert widget.add_layer() is layer  # no second layer
    layer.data_setitem(np.nonzero(np.ones(layer.data.shape, bool)), 4)
    qtbot.waitUntil(lambda: (spots.features.region == 4).all(), timeout=2000)
    path = widget.save(str(tmp_path / "regions.tif"))
    assert path is not None and path.exists()
    layer.data = np.zeros_like(layer.data)
    qtbot.waitUntil(lambda: (spots.features.region == 0).all(), timeout=2000)
    assert widget.load(str(path)) is layer
    assert (spots.features.region == 4).all()
    assert "4: " in widget.status.text()


def test_regions_widget_bad_file_is_a_notification_not_a_crash(make_napari_viewer, tmp_path):
    from napari_stlnmf._reader import read_slide

    outs = make_outs(tmp_path)
    viewer = make_napari_viewer()
    add_tuples(viewer, read_slide(str(outs.outs)))
    widget = RegionsWidget(viewer)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    assert widget.load(str(bad)) is None
    wrong = tmp_path / "wrong.tif"
    import tifffile

    tifffile.imwrite(wrong, np.ones((7, 9), np.uint8))
    assert widget.load(str(wrong)) is None
    assert widget.regions_layer() is None
