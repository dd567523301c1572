"""How result maps are drawn over the H&E (issue 13): opacity, hidden spots layer, faded
colormap, contrast scaling, the legend's controls, the dominant-type palette and the
titled, refit grid view. Real napari viewer (run under Xvfb)."""

import numpy as np
import pandas as pd
import pytest
from napari.utils.colormaps import ensure_colormap

from napari_stlnmf.gui.legend import LegendWidget
from napari_stlnmf.gui.palette import NONE_COLOR, category_colors
from napari_stlnmf.gui.results import (
    DOMINANT_OPACITY,
    MIN_SPAN,
    RESULT_OPACITY,
    result_layers,
    set_grid,
    set_scaling,
    show_results,
)

TYPES = ["common", "rare", "noise"]


def fake_table(xy: np.ndarray, barcodes=None, seed: int = 0) -> pd.DataFrame:
    """A proportions table: a common type, a rare type peaking at 0.11 (plus one outlier
    spot at 0.6), a noise-level type, and one spot without values."""
    rng = np.random.default_rng(seed)
    n = len(xy)
    rare = np.zeros(n)
    hot = rng.choice(n, size=max(n // 10, 3), replace=False)
    rare[hot] = rng.uniform(0.02, 0.11, size=len(hot))
    rare[hot[0]] = 0.6
    noise = rng.uniform(0.0, 0.01, size=n)
    common = 1.0 - rare - noise
    table = pd.DataFrame(
        {
            "barcode": barcodes if barcodes is not None else [f"s{i}" for i in range(n)],
            "x": xy[:, 0],
            "y": xy[:, 1],
            "region": np.zeros(n, dtype=int),
            "common": common,
            "rare": rare,
            "noise": noise,
        }
    )
    table.loc[n - 1, TYPES] = np.nan
    return table


def grid_xy(n: int = 100, pitch: float = 100.0) -> np.ndarray:
    side = int(np.ceil(np.sqrt(n)))
    return np.array([(1000 + pitch * (i % side), 2000 + pitch * (i // side)) for i in range(n)])


def test_results_sit_over_the_tissue(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-stlnmf", "mouse_brain")
    image, spots, truth = viewer.layers
    other = viewer.add_points(
        np.zeros((2, 2)), name="other spots", metadata={"stlnmf": {"kind": "spots"}}
    )
    info = spots.metadata["stlnmf"]
    table = fake_table(info["coords_xy"], info["barcodes"])
    layers = show_results(viewer, table, TYPES, slide=spots.name)
    # the slide's spots layer is hidden under its results; the H&E and other slides stay
    assert not spots.visible and image.visible and other.visible
    assert 0.5 <= RESULT_OPACITY < 1 and RESULT_OPACITY < DOMINANT_OPACITY < 1
    for layer in layers[:3]:
        assert layer.opacity == pytest.approx(RESULT_OPACITY)
    dominant = layers[3]
    assert dominant.opacity == pytest.approx(DOMINANT_OPACITY)
    # faded colormap: a spot without the type is nearly see-through, the top one opaque
    rare = layers[1]
    values = table["rare"].to_numpy()
    zero, top = int(np.flatnonzero(values == 0)[0]), int(np.nanargmax(values))
    assert rare.face_color[zero, 3] == pytest.approx(0.25, abs=0.01)
    assert rare.face_color[top, 3] == pytest.approx(1.0)
    assert rare.face_colormap.name == "viridis faded"
    # dominant type: palette colours, "(none)" for the spot without values
    colors = category_colors(["(none)", *TYPES])
    names = dominant.features.dominant_type.astype(str).to_numpy()
    assert names[-1] == "(none)"
    np.testing.assert_allclose(dominant.face_color[-1], NONE_COLOR, atol=1e-6)
    for i in (0, top):
        np.testing.assert_allclose(dominant.face_color[i], colors[names[i]], atol=1e-6)
    assert dominant.metadata["stlnmf"]["colors"] == colors
    # a user's opacity survives a re-run
    rare.opacity = 0.4
    again = show_results(viewer, table, TYPES, slide=spots.name)
    assert again[1] is rare and rare.opacity == pytest.approx(0.4)
    assert again[0].opacity == pytest.approx(RESULT_OPACITY)


def test_scaling_switch_sets_limits_and_labels(make_napari_viewer):
    viewer = make_napari_viewer()
    table = fake_table(grid_xy())
    layers = show_results(viewer, table, TYPES, slide="s")
    legend = LegendWidget(viewer)
    viewer.layers.selection.active = layers[1]  # the rare type
    viridis = ensure_colormap("viridis")
    rare = layers[1]
    values = table["rare"].to_numpy()
    top = int(np.nanargmax(values))
    peak = int(np.flatnonzero(np.isclose(values, np.nanmax(values[values < 0.2])))[0])

    legend.scaling_box.setCurrentText("linear 0–1")
    assert legend.scaling_box.currentData() == "linear"
    for layer in layers[:3]:
        assert tuple(layer.face_contrast_limits) == (0.0, 1.0)
    assert (legend.low.text(), legend.high.text()) == ("0.00", "1.00")
    # on a 0-1 bar the rare type's typical peak (< 0.11) is drawn in the bottom colours
    assert np.linalg.norm(rare.face_color[peak, :3] - viridis.map([1.0])[0, :3]) > 0.8

    legend.scaling_box.setCurrentText("per type 0–max")
    for layer, t in zip(layers[:3], TYPES):
        want = (0.0, max(np.nanmax(table[t]), MIN_SPAN))
        np.testing.assert_allclose(layer.face_contrast_limits, want)
    assert legend.high.text() == f"{np.nanmax(values):.2f}" == "0.60"

    legend.scaling_box.setCurrentText("robust p1–p99")
    for layer, t in zip(layers[:3], TYPES):
        lo, hi = np.nanpercentile(table[t], [1, 99])
        np.testing.assert_allclose(layer.face_contrast_limits, (lo, max(hi, lo + MIN_SPAN)))
    lo, hi = np.nanpercentile(values, [1, 99])
    assert 0.09 < hi < 0.2  # the outlier spot no longer sets the top of the bar
    assert (legend.low.text(), legend.high.text()) == (f"{lo:.2f}", f"{hi:.2f}")
    # the noise-level type is not stretched to bright colours
    noise_lo, _ = np.nanpercentile(table["noise"], [1, 99])
    np.testing.assert_allclose(layers[2].face_contrast_limits, (noise_lo, noise_lo + MIN_SPAN))
    # colours follow: the outlier and anything above p99 share the brightest colour
    np.testing.assert_allclose(rare.face_color[top, :3], viridis.map([1.0])[0, :3], atol=2e-2)
    assert legend.hint.text().startswith("1st–99th percentile")
    # the scaling is remembered per layer and shown again when the layer is re-selected
    viewer.layers.selection.active = layers[0]
    set_scaling(viewer, "linear", "s")
    viewer.layers.selection.active = layers[1]
    assert legend.scaling_box.currentData() == "linear"
    with pytest.raises(ValueError, match="unknown scaling"):
        set_scaling(viewer, "log", "s")


def test_opacity_slider_drives_one_slide(make_napari_viewer):
    viewer = make_napari_viewer()
    table = fake_table(grid_xy())
    mine = show_results(viewer, table, TYPES, slide="s")
    theirs = show_results(viewer, table, TYPES, slide="t")
    legend = LegendWidget(viewer)
    viewer.layers.selection.active = mine[0]
    assert legend.slide == "s"
    assert legend.opacity_slider.value() == round(RESULT_OPACITY * 100)
    legend.opacity_slider.setValue(40)
    for layer in result_layers(viewer, "s"):
        assert layer.opacity == pytest.approx(0.4)
    assert theirs[0].opacity == pytest.approx(RESULT_OPACITY)
    assert theirs[3].opacity == pytest.approx(DOMINANT_OPACITY)
    # selecting the other slide's layer points the slider at that slide
    viewer.layers.selection.active = theirs[1]
    assert legend.slide == "t" and legend.opacity_slider.value() == round(RESULT_OPACITY * 100)


def _view_rect(viewer, layers):
    """World (row, col) rectangle one grid tile (or the canvas) shows."""
    camera = viewer.scene.camera
    box = np.asarray(viewer.canvas.viewbox_size(viewer.layers), dtype=float)
    center = np.asarray(camera.center[-2:], dtype=float)
    half = box / 2 / camera.zoom
    return center - half, center + half


def test_grid_view_titles_tiles_and_refits(make_napari_viewer):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((40, 60)), scale=(100.0, 100.0), name="H&E")
    table = fake_table(grid_xy())
    layers = show_results(viewer, table, TYPES, slide="s")
    legend = LegendWidget(viewer)
    before = {ly.name: ly.visible for ly in viewer.layers}
    # zoomed in on a corner: the state a user is in before switching the grid on
    viewer.scene.camera.zoom *= 8
    viewer.scene.camera.center = (0.0, 0.0)
    zoom_before = viewer.scene.camera.zoom

    legend.grid_box.setChecked(True)
    assert viewer.canvas.grid.enabled
    types = layers[:3]
    assert [ly.visible for ly in types] == [True] * 3
    assert not image.visible and not layers[3].visible
    assert [ly.opacity for ly in types] == [1.0] * 3
    # one title per tile: the layer-name overlay, drawn in that layer's own grid viewbox
    canvas = viewer.window._qt_viewer.canvas
    parents = []
    for layer in types:
        assert layer.name_overlay.visible
        visual = canvas._layer_overlay_to_visual[layer][layer.name_overlay]
        assert visual.node.text == layer.name and visual.node.visible
        parents.append(visual.node.parent)
    assert len({id(p) for p in parents}) == 3
    assert [
        viewer.canvas.grid.position(viewer.layers.index(ly), viewer.layers) for ly in types
    ] == [
        (0, 0),
        (0, 1),
        (1, 0),
    ]
    # camera refit: each tile shows every spot (row, col) = (y, x)
    assert viewer.scene.camera.zoom != zoom_before
    lo, hi = _view_rect(viewer, types)
    spots_rc = np.c_[table.y, table.x]
    assert (spots_rc.min(0) >= lo).all() and (spots_rc.max(0) <= hi).all()
    assert not hasattr(viewer.layers, "metadata_grid_visibility")

    set_grid(viewer, True, "s")  # a second "on" must not overwrite what is restored
    legend.grid_box.setChecked(False)
    assert not viewer.canvas.grid.enabled
    assert {ly.name: ly.visible for ly in viewer.layers} == before
    assert not any(ly.name_overlay.visible for ly in viewer.layers)
    assert [ly.opacity for ly in types] == [pytest.approx(RESULT_OPACITY)] * 3
    # refit again: the whole picture is in view
    lo, hi = _view_rect(viewer, viewer.layers)
    extent = image.extent.world
    assert (extent[0] >= lo - 1e-6).all() and (extent[1] <= hi + 1e-6).all()
