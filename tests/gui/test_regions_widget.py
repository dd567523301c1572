"""Tissue regions dock widget."""

import numpy as np

from napari_stlnmf.gui.regions_widget import RegionsWidget
from tests.gui.test_layers import add_tuples
from tests.io.visium_fixtures import make_outs


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


def _open_brain_regions(make_napari_viewer):
    viewer = make_napari_viewer()
    image, spots, _ = viewer.open_sample("napari-stlnmf", "mouse_brain")
    _, widget = viewer.window.add_plugin_dock_widget("napari-stlnmf", "Tissue regions")
    return viewer, image, spots, widget


def test_regions_layer_starts_from_the_spots_regions(make_napari_viewer):
    from napari_stlnmf.gui.regions import spot_regions

    viewer, image, spots, widget = _open_brain_regions(make_napari_viewer)
    before = spots.features["region"].to_numpy().copy()
    assert len(np.unique(before)) >= 5 and (before > 0).all()
    layer = widget.add_layer()
    assert layer.data.shape == image.data.shape[:2]
    # nothing erased: the label under every spot is that spot's region
    np.testing.assert_array_equal(spot_regions(layer, spots), before)
    np.testing.assert_array_equal(spots.features["region"].to_numpy(), before)
    # the painted tiles cover the tissue, not just the spot centres
    assert (layer.data > 0).mean() > 0.2
    # a first stroke starts a new region number
    assert layer.selected_label == before.max() + 1


def test_region_counts_and_colours_follow_a_stroke(make_napari_viewer, qtbot):
    from napari_stlnmf.gui.layers import region_colors

    viewer, image, spots, widget = _open_brain_regions(make_napari_viewer)
    layer = widget.add_layer()
    n_before = len(spots.features)
    assert f"{int(spots.features.region.iloc[0])}: " in widget.status.text()
    # a stroke: a block of a new label over the top-left quarter of the tissue's bounding box
    xy = spots.metadata["stlnmf"]["coords_xy"]
    mid = np.median(xy, axis=0)
    inside = (xy[:, 0] < mid[0]) & (xy[:, 1] < mid[1])
    rows = (xy[inside, 1] - layer.translate[0]) / layer.scale[0]
    cols = (xy[inside, 0] - layer.translate[1]) / layer.scale[1]
    r0, r1 = int(rows.min()) - 2, int(rows.max()) + 3
    c0, c1 = int(cols.min()) - 2, int(cols.max()) + 3
    rr, cc = np.mgrid[r0:r1, c0:c1]
    new = int(spots.features.region.max()) + 7  # a region number the slide does not have
    layer.data_setitem((rr.ravel(), cc.ravel()), new)
    expected = int(inside.sum())
    qtbot.waitUntil(lambda: f"{new}: " in widget.status.text(), timeout=3000)
    assert f"{new}: {expected}" in widget.status.text(), (expected, widget.status.text())
    assert (spots.features.region.to_numpy()[inside] == new).all()
    assert len(spots.features) == n_before
    np.testing.assert_allclose(
        spots.face_color[inside], np.repeat(region_colors([new]), expected, axis=0), atol=1e-6
    )
    others = ~inside
    assert not np.allclose(spots.face_color[others][:, :3], region_colors([new])[0, :3])


def test_regions_dock_reports_counts_before_any_layer(make_napari_viewer):
    viewer, image, spots, widget = _open_brain_regions(make_napari_viewer)
    counts = spots.features.region.value_counts().sort_index()
    text = widget.status.text()
    for region, n in counts.items():
        assert f"{region}: {n}" in text
