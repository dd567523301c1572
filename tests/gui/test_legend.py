"""Cell-type legend dock widget."""

import numpy as np
import pytest

from napari_stlnmf.gui.legend import LegendWidget
from napari_stlnmf.gui.results import show_results
from tests.gui.test_layers import table_for


def test_legend_follows_the_active_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    table = table_for()
    layers = show_results(viewer, table, ["A", "B", "C"], slide="s")
    legend = LegendWidget(viewer)
    viewer.layers.selection.active = layers[1]
    assert legend.title.text().startswith("B: proportion")
    lo, hi = np.percentile(table["B"], [1, 99])  # default scaling: robust p1-p99
    assert (legend.low.text(), legend.high.text()) == (f"{lo:.2f}", f"{hi:.2f}")
    assert legend.scaling_box.currentData() == "robust"
    assert not legend.bar.pixmap().isNull() and legend.bar.isVisibleTo(legend)
    viewer.layers.selection.active = layers[3]  # dominant type
    assert legend.title.text() == "dominant cell type"
    assert not legend.bar.isVisibleTo(legend)
    assert legend.swatches.count() == 2 * 4  # (none) + 3 types, swatch + name each
    viewer.layers.selection.active = layers[0]
    assert legend.swatches.count() == 0
    other = viewer.add_points(np.zeros((2, 2)))
    viewer.layers.selection.active = other
    assert "Select a cell-type layer" in legend.title.text()


def test_legend_switches_the_raster_type(make_napari_viewer):
    viewer = make_napari_viewer()
    table = table_for(n=300)
    raster, dominant = show_results(viewer, table, ["A", "B", "C"], slide="big", large=True)
    legend = LegendWidget(viewer)
    viewer.layers.selection.active = raster
    assert legend.type_box.isVisibleTo(legend)
    assert [legend.type_box.itemText(i) for i in range(3)] == ["A", "B", "C"]
    legend.type_box.setCurrentText("C")
    assert raster.name == "C (proportion)"
    row, col = np.rint(raster.world_to_data((table.y[9], table.x[9]))).astype(int)
    assert raster.data[row, col] == pytest.approx(table["C"][9], abs=1e-6)
    # scaling and opacity reach the raster too
    legend.scaling_box.setCurrentText("per type 0–max")
    assert raster.contrast_limits[1] == pytest.approx(table["C"].max(), rel=1e-6)
    assert legend.high.text() == f"{table['C'].max():.2f}"
    legend.type_box.setCurrentText("A")
    assert raster.contrast_limits[1] == pytest.approx(table["A"].max(), rel=1e-6)
    legend.opacity_slider.setValue(35)
    assert raster.opacity == pytest.approx(0.35) and dominant.opacity == pytest.approx(0.35)


def test_legend_scrolls_instead_of_growing(make_napari_viewer):
    from napari_stlnmf.gui.scroll import MAX_HINT_HEIGHT, ScrollableDock

    viewer = make_napari_viewer()
    types = [f"type {i}" for i in range(30)]
    table = table_for(n=60, types=tuple(types))
    layers = show_results(viewer, table, types, slide="s")
    legend = LegendWidget(viewer)
    assert isinstance(legend, ScrollableDock)
    viewer.layers.selection.active = layers[-1]  # dominant type: 31 swatches
    assert legend.swatches.count() == 2 * 31
    assert legend.body.sizeHint().height() > MAX_HINT_HEIGHT  # the content is that tall
    assert legend.sizeHint().height() <= MAX_HINT_HEIGHT  # the dock is not
