"""Reader, sample data, region painting, result layers and writer, in a real napari viewer
(run under Xvfb)."""

import numpy as np
import pandas as pd
import pytest
from napari.layers import Image, Labels, Points

from napari_stlnmf._reader import get_reader, read_slide
from napari_stlnmf._writer import write_proportions
from napari_stlnmf.gui.layers import LARGE_SLIDE_SPOTS
from napari_stlnmf.gui.regions import add_regions_layer
from napari_stlnmf.gui.results import result_layers, set_grid, set_raster_type, show_results
from tests.io.visium_fixtures import HIRES, SPOT_DIAMETER, make_outs


@pytest.fixture
def outs(tmp_path):
    return make_outs(tmp_path)


def add_tuples(viewer, tuples):
    layers = []
    for data, kwargs, kind in tuples:
        layers.append(getattr(viewer, f"add_{kind}")(data, **kwargs))
    return layers


def test_reader_discovery_never_raises(tmp_path, outs):
    assert get_reader(str(outs.outs)) is read_slide
    assert get_reader(str(outs.outs.parent)) is read_slide  # the folder holding outs/
    junk = tmp_path / "junk.h5ad"
    junk.write_bytes(b"not hdf5 at all")
    assert get_reader(str(junk)) is None
    assert get_reader(str(tmp_path / "missing.h5ad")) is None
    (tmp_path / "empty").mkdir()
    assert get_reader(str(tmp_path / "empty")) is None
    assert get_reader([str(junk), str(junk)]) is None


def test_reader_layers_land_on_the_right_pixels(make_napari_viewer, outs):
    viewer = make_napari_viewer()
    image, spots = add_tuples(viewer, read_slide(str(outs.outs)))
    assert image.rgb and image.data.shape[:2] == (250, 300)
    np.testing.assert_allclose(image.scale, [1 / HIRES, 1 / HIRES])
    assert isinstance(spots, Points)
    assert spots.data.shape == (int(outs.in_tissue.sum()), 2)
    np.testing.assert_allclose(spots.size, SPOT_DIAMETER)
    assert list(spots.features.columns[:3]) == ["barcode", "total_counts", "region"]
    np.testing.assert_allclose(spots.features.total_counts, outs.counts[outs.in_tissue].sum(1))
    # each drawn dot: the spot's world position maps to the image pixel with its colour
    barcodes = list(spots.features.barcode)
    for barcode, colour in outs.dots.items():
        i = barcodes.index(barcode)
        row, col = np.rint(image.world_to_data(spots.data[i])).astype(int)
        assert tuple(image.data[row, col, :3]) == colour


def test_sample_menu_opens_mouse_brain(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-stlnmf", "mouse_brain")
    names = [ly.name for ly in viewer.layers]
    assert names == ["mouse_brain hires", "mouse_brain spots", "mouse_brain ground truth"]
    image, spots, truth = viewer.layers
    assert spots.data.shape == (2310, 2)
    assert spots.opacity < 0.5  # the H&E bands show through the region colours
    assert len(set(spots.features.region)) >= 8 and (spots.features.region > 0).all()
    assert not truth.visible and truth.features.shape[1] == 1 + 17
    # spots sit on tissue: darker than the glass at the image border
    px = np.rint([image.world_to_data(p) for p in spots.data[::50]]).astype(int)
    grey = image.data[px[:, 0], px[:, 1], :3].mean()
    border = image.data[:40, :, :3].mean()
    assert grey < border - 25


def test_painting_a_rectangle_changes_exactly_the_spots_inside(make_napari_viewer, outs, qtbot):
    viewer = make_napari_viewer()
    image, spots = add_tuples(viewer, read_slide(str(outs.outs)))
    regions = add_regions_layer(viewer, spots, image)
    assert regions.data.shape == image.data.shape[:2]
    np.testing.assert_allclose(regions.scale, image.scale)
    assert (spots.features.region == 0).all()
    rows, cols = slice(60, 160), slice(80, 200)  # label pixels = hires pixels
    rr, cc = np.mgrid[rows, cols]
    regions.data_setitem((rr.ravel(), cc.ravel()), 2)  # one undoable paint step
    hires_rc = np.rint(spots.data * HIRES).astype(int)
    inside = (
        (hires_rc[:, 0] >= 60)
        & (hires_rc[:, 0] < 160)
        & (hires_rc[:, 1] >= 80)
        & (hires_rc[:, 1] < 200)
    )
    assert 0 < inside.sum() < len(inside)
    qtbot.waitUntil(lambda: (spots.features.region == 2).any(), timeout=2000)
    np.testing.assert_array_equal(spots.features.region.to_numpy(), np.where(inside, 2, 0))
    # asking again returns the same layer, not a copy
    assert add_regions_layer(viewer, spots, image) is regions


def table_for(n=50, types=("A", "B", "C"), seed=0):
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    xy = np.array([(100.0 * (i % side), 100.0 * (i // side)) for i in range(n)])
    props = rng.dirichlet(np.ones(len(types)), size=n)
    table = pd.DataFrame(
        {
            "barcode": [f"s{i}" for i in range(n)],
            "x": xy[:, 0],
            "y": xy[:, 1],
            "region": np.arange(n) % 2,
        }
    )
    for j, t in enumerate(types):
        table[t] = props[:, j]
    return table


def test_result_layers_colours_and_reuse(make_napari_viewer):
    from napari.utils.colormaps import ensure_colormap

    from napari_stlnmf.gui.results import DEFAULT_SCALING, MIN_SPAN, RESULT_OPACITY

    viewer = make_napari_viewer()
    table = table_for()
    layers = show_results(viewer, table, ["A", "B", "C"], slide="s")
    assert [ly.name for ly in layers] == ["A", "B", "C", "dominant type"]
    assert DEFAULT_SCALING == "robust"
    viridis = ensure_colormap("viridis")
    for ly, t in zip(layers[:3], "ABC"):
        # robust limits: 1st and 99th percentile of the type
        lo, hi = np.percentile(table[t], [1, 99])
        np.testing.assert_allclose(ly.face_contrast_limits, (lo, max(hi, lo + MIN_SPAN)))
        assert ly.opacity == pytest.approx(RESULT_OPACITY) and RESULT_OPACITY < 1
        for i in (3, 17):  # two known spots: viridis colour, alpha fading at the low end
            x = np.clip((table[t][i] - lo) / (hi - lo), 0, 1)
            np.testing.assert_allclose(ly.face_color[i, :3], viridis.map([x])[0, :3], atol=2e-2)
            assert ly.face_color[i, 3] == pytest.approx(min(1.0, 0.25 + 3 * x), abs=2e-2)
    np.testing.assert_allclose(layers[0].data[5], [table.y[5], table.x[5]])
    dom = layers[3].features.dominant_type.astype(str).to_numpy()
    assert (dom == np.array(list("ABC"))[table[list("ABC")].to_numpy().argmax(1)]).all()
    # a re-run with new numbers updates the same layers
    table2 = table_for(seed=1)
    again = show_results(viewer, table2, ["A", "B", "C"], slide="s")
    assert [id(a) for a in again] == [id(b) for b in layers]
    assert len(viewer.layers) == 4
    np.testing.assert_allclose(again[1].features["B"], table2["B"])
    # a run with other types removes the stale layers
    table3 = table2.rename(columns={"C": "D"})
    show_results(viewer, table3, ["A", "B", "D"], slide="s")
    assert sorted(ly.name for ly in viewer.layers) == ["A", "B", "D", "dominant type"]
    # per-type limits (older keyword) and the fixed ones
    show_results(viewer, table3, ["A", "B", "D"], slide="s", per_type_limits=True)
    assert viewer.layers["A"].face_contrast_limits[1] == pytest.approx(table3["A"].max())
    show_results(viewer, table3, ["A", "B", "D"], slide="s", scaling="linear")
    assert tuple(viewer.layers["D"].face_contrast_limits) == (0.0, 1.0)
    # a re-run without a scaling keeps the one the slide has
    show_results(viewer, table3, ["A", "B", "D"], slide="s")
    assert tuple(viewer.layers["A"].face_contrast_limits) == (0.0, 1.0)
    set_grid(viewer, True, "s")
    assert viewer.canvas.grid.enabled and not viewer.layers["dominant type"].visible
    set_grid(viewer, False, "s")
    assert not viewer.canvas.grid.enabled


def test_large_path_raster_and_type_switch(make_napari_viewer):
    viewer = make_napari_viewer()
    table = table_for(n=400)
    layers = show_results(viewer, table, ["A", "B", "C"], slide="big", large=True)
    raster, dominant = layers
    assert isinstance(raster, Image) and isinstance(dominant, Labels)
    assert len(viewer.layers) == 2
    assert raster.opacity < 1 and dominant.opacity < 1
    for t in ("B", "C"):
        set_raster_type(raster, t)
        assert raster.name == f"{t} (proportion)"
        lo, hi = np.percentile(table[t], [1, 99])  # the default robust limits, per type
        np.testing.assert_allclose(raster.contrast_limits, (lo, hi), rtol=1e-6)
        for i in (7, 211):
            row, col = np.rint(raster.world_to_data((table.y[i], table.x[i]))).astype(int)
            assert raster.data[row, col] == pytest.approx(table[t][i], abs=1e-6)
    # not a single Points layer with 400 points was made
    assert not [ly for ly in viewer.layers if isinstance(ly, Points)]
    assert LARGE_SLIDE_SPOTS == 100_000


def test_writer_round_trip(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    table = table_for()
    layers = show_results(viewer, table, ["A", "B", "C"], slide="s")
    path = tmp_path / "props.csv"
    written = write_proportions(str(path), [layers[1].as_layer_data_tuple()])
    assert written == [str(path)]
    back = pd.read_csv(path)
    assert list(back.columns) == ["barcode", "x", "y", "region", "A", "B", "C"]
    np.testing.assert_allclose(
        back[["x", "y", "A", "B", "C"]], table[["x", "y", "A", "B", "C"]], atol=1e-5
    )
    # not a layer of ours: napari's own points CSV (this writer is listed first)
    other = viewer.add_points(np.zeros((3, 2)))
    assert write_proportions(str(tmp_path / "no.csv"), [other.as_layer_data_tuple()]) == [
        str(tmp_path / "no.csv")
    ]
    assert list(pd.read_csv(tmp_path / "no.csv").columns) == ["index", "axis-0", "axis-1"]
    assert result_layers(viewer, "s", "proportion")[0].name == "A"
