"""The GUI's layer state (issue 14): metadata follows the schema of ``gui.meta`` and stays
plain; live objects live beside the layers and survive napari's public-only proxies (the
viewer a widget opened from the Plugins menu gets); only public napari API is used; the
dock trusts the pipeline's error types."""

from __future__ import annotations

import gc
import json
import warnings

import numpy as np
import pytest
from napari.layers import Image, Labels, Points
from napari.utils._proxies import PublicOnlyProxy

from napari_stlnmf.gui.layers import slide_layers
from napari_stlnmf.gui.meta import (
    Kind,
    Role,
    is_result,
    kind_of,
    meta_of,
    result_layers,
    result_meta,
    role_of,
    spots_meta,
)
from napari_stlnmf.gui.regions import regions_layer_of, spot_regions, spots_of
from napari_stlnmf.gui.regions_widget import RegionsWidget
from napari_stlnmf.gui.results import set_grid, set_raster_type, set_scaling, show_results
from napari_stlnmf.io.samples import load_sample
from tests.gui.test_layers import table_for

TYPES = ["A", "B", "C"]


def add_slide(viewer, name="s", sample="hippocampus"):
    adata = load_sample(sample).spatial
    for data, kw, kind in slide_layers(adata, name=name):
        getattr(viewer, f"add_{kind}")(data, **kw)
    return viewer.layers[name]


@pytest.fixture
def no_private_access():
    """Fail on napari's "Private attribute access ... in this context" warning: the
    proxy napari gives plugin widgets will refuse such access in a later release."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Private attribute access", category=FutureWarning)
        yield


def test_kinds_roles_and_accessors(make_napari_viewer):
    viewer = make_napari_viewer()
    spots = add_slide(viewer)
    layers = show_results(viewer, table_for(), TYPES, slide="s")
    assert kind_of(spots) is Kind.SPOTS and role_of(spots) is None
    assert spots_meta(spots)["barcodes"][0] == str(load_sample("hippocampus").spatial.obs_names[0])
    assert [role_of(ly) for ly in layers] == [Role.PROPORTION] * 3 + [Role.DOMINANT]
    assert result_meta(layers[0])["cell_type"] == "A"
    assert is_result(layers[3], (Role.DOMINANT, Role.RASTER_DOMINANT))
    assert not is_result(layers[3], Role.PROPORTION)
    assert result_layers(viewer, "s", Role.DOMINANT) == [layers[3]]
    assert result_layers(viewer, "other") == []
    # StrEnum: the stored values still read as the plain strings they were
    assert meta_of(layers[0])["kind"] == "result" and meta_of(layers[0])["role"] == "proportion"
    with pytest.raises(ValueError, match="not a spots layer"):
        spots_meta(layers[0])
    with pytest.raises(ValueError, match="not a result layer"):
        result_meta(spots)
    other = viewer.add_points(np.zeros((2, 2)), metadata={"stlnmf": {"kind": "unheard of"}})
    assert kind_of(other) is None and kind_of(None) is None and meta_of(None) == {}


def test_metadata_other_than_the_slide_is_plain_json(make_napari_viewer):
    """Metadata travels in layer-data tuples and saved files: only the spots layer keeps
    live data (the AnnData and its per-spot tables); no layer holds a layer, a Qt object
    or a raster."""
    viewer = make_napari_viewer()
    spots = add_slide(viewer, sample="mouse_brain")  # with its H&E
    from napari_stlnmf.gui.regions import add_regions_layer

    add_regions_layer(viewer, spots)
    show_results(viewer, table_for(), TYPES, slide="s")
    show_results(viewer, table_for(n=400), TYPES, slide="big", large=True)
    kinds = set()
    for layer in viewer.layers:
        m = meta_of(layer)
        kinds.add(kind_of(layer))
        if kind_of(layer) is Kind.SPOTS:
            assert set(m) <= {
                "kind",
                "adata",
                "barcodes",
                "coords_xy",
                "spot_diameter",
                "pitch",
                "library_id",
                "features",
            }
            continue
        assert json.loads(json.dumps(m))["kind"] == str(kind_of(layer)), layer.name
    assert kinds == {Kind.IMAGE, Kind.SPOTS, Kind.REGIONS, Kind.RESULT}


def test_widgets_behind_napari_proxy_keep_their_links(make_napari_viewer, qtbot, no_private_access):
    """napari gives menu-opened widgets a PublicOnlyProxy viewer, whose layers are new
    short-lived proxies on every access: a Regions layer's link to its slide and a raster
    layer's proportions must outlive them, and nothing may touch private attributes."""
    viewer = make_napari_viewer()
    proxy = PublicOnlyProxy(viewer)
    spots = add_slide(viewer)
    widget = RegionsWidget(proxy)
    assert isinstance(widget.add_layer(), PublicOnlyProxy)
    gc.collect()
    regions = regions_layer_of(viewer, spots)
    assert isinstance(regions, Labels) and spots_of(regions) is spots
    # a stroke over the first spot reaches the spots' regions and the live count
    m = spots_meta(spots)
    x, y = m["coords_xy"][0]
    row, col = np.rint(regions.world_to_data((y, x))).astype(int)
    regions.data_setitem((np.array([row]), np.array([col])), 7)
    qtbot.waitUntil(lambda: "7: " in widget.status.text(), timeout=5000)
    assert spot_regions(regions, spots)[0] == 7 == m["features"]["region"][0]

    layers = show_results(proxy, table_for(n=400), TYPES, slide="big", large=True)
    assert all(isinstance(ly, PublicOnlyProxy) for ly in layers)
    del layers
    gc.collect()
    raster = result_layers(proxy, "big", Role.RASTER)[0]
    assert isinstance(raster, Image)
    set_raster_type(proxy.layers[raster.name], "C")
    assert raster.name == "C (proportion)" and meta_of(raster)["current"] == "C"
    set_scaling(proxy, "linear", "big")
    assert tuple(raster.contrast_limits) == (0.0, 1.0)

    show_results(proxy, table_for(), TYPES, slide="s")
    # the dock counts regions once per sync, however many layers came since
    from napari_stlnmf.gui import regions as regions_module

    assert len(regions_module._LINKS[regions].listeners) == 1
    set_grid(proxy, True, "s")
    set_grid(proxy, False, "s")
    assert not viewer.canvas.grid.enabled
    assert all(isinstance(ly, Points) for ly in result_layers(viewer, "s", Role.PROPORTION))


def test_fail_trusts_the_pipeline_error_types(make_napari_viewer):
    from napari_stlnmf.gui.dock import StlnmfWidget
    from napari_stlnmf.pipeline import NotEnoughMemoryError

    viewer = make_napari_viewer()
    widget = StlnmfWidget(viewer)
    hint = "not enough memory to train on 10 spots x 5 genes, even on the CPU: split the slide"
    widget._fail(NotEnoughMemoryError(hint))
    assert hint in widget.last_error  # its own message: it says what to reduce
    widget._fail(MemoryError())
    assert widget.last_error.startswith("out of memory: ")
    # a message that merely mentions memory is not reclassified
    widget._fail(RuntimeError("pinned out of memory buffer"))
    assert "pinned out of memory buffer" in widget.last_error
    assert not widget.last_error.startswith("out of memory: ")
    assert not widget.busy
