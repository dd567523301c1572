"""The STL NMF dock widget: the whole workflow on the bundled sample, cancel, bad input,
model save/load, export (pytest-qt, real napari viewer under Xvfb)."""

import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_stlnmf.core.estimator import DEFAULT_WARM_START
from napari_stlnmf.gui.regions import add_regions_layer
from napari_stlnmf.gui.results import result_layers
from napari_stlnmf.io.reference import read_reference
from napari_stlnmf.io.samples import load_sample
from napari_stlnmf.pipeline import deconvolve, prepare, train
from tests.gui.widget_helpers import sample_widget, wait_done

TINY = {"epochs": 2, "n_layers": 8}


@pytest.fixture
def setup(make_napari_viewer, reference_file, qtbot):
    return sample_widget(make_napari_viewer, TINY["epochs"], TINY["n_layers"])


def paint_two_regions(viewer, spots):
    image = viewer.layers["mouse_brain hires"]
    regions = add_regions_layer(viewer, spots, image)
    h, w = regions.data.shape
    rr, cc = np.mgrid[0 : h // 2, 0:w]
    regions.data_setitem((rr.ravel(), cc.ravel()), 1)
    rr, cc = np.mgrid[h // 2 : h, 0:w]
    regions.data_setitem((rr.ravel(), cc.ravel()), 2)
    return regions


def test_full_workflow_matches_the_python_api(setup, reference_file, qtbot):
    viewer, widget = setup
    spots = viewer.layers["mouse_brain spots"]
    assert widget.spots.value is spots
    regions = paint_two_regions(viewer, spots)
    # the slide's painted regions are chosen by themselves
    qtbot.waitUntil(lambda: widget.regions.value is regions, timeout=2000)
    widget.ref_path.value = reference_file
    assert widget.label_key.value == "cell_type"
    assert "cell_type" in widget.label_key.choices
    assert "307 shared genes" in widget.overlap.text()
    assert "17 cell types" in widget.overlap.text()
    # the widget's defaults are the CLI's, and its switches reach the estimator options
    opts = widget.options()
    assert opts["gene_weights"] == "auto" and opts["warm_start"] == DEFAULT_WARM_START
    widget.gene_weights.value = "none"
    assert widget.options()["gene_weights"] == "none"
    widget.gene_weights.value = "auto"
    assert widget.markers.value == "auto"

    worker = widget.run(train=True, deconvolve=True)
    assert worker is not None
    wait_done(qtbot, widget)
    assert widget.last_error is None, widget.last_error
    assert len(widget.loss.epochs) >= 2  # epoch 0 (untrained) and later
    assert widget.params.toPlainText().startswith("λ1 = ")
    assert widget.params.scalars.rowCount() == 5
    assert widget.params.omega.columnCount() == 2  # the two painted regions

    types = widget.result.cell_types
    layers = result_layers(viewer, "mouse_brain spots", "proportion")
    assert [ly.name for ly in layers] == types
    assert len(result_layers(viewer, "mouse_brain spots", "dominant")) == 1
    feats = spots.features
    for t in types:
        assert f"proportion_{t}" in feats.columns
    assert set(feats.dominant_type) <= set(types)
    region_values = feats.region.to_numpy()
    assert sorted(set(region_values)) == [1, 2]
    assert widget.table.rowCount() == 2

    # the same run from Python, same seed: the same numbers
    ref = read_reference(reference_file, "cell_type")
    prep = prepare(load_sample("mouse_brain").spatial, ref, regions=region_values)
    model = train(prep, seed=0, options={**TINY, "tied": True, "lr": 0.1, "n_train_slides": 3})
    api = deconvolve(prep, model)
    np.testing.assert_allclose(
        widget.result.table[types].to_numpy(), api.table[types].to_numpy(), atol=1e-6
    )

    # a re-run replaces the layers in place
    before = [id(ly) for ly in viewer.layers]
    widget.run(train=False, deconvolve=True)
    wait_done(qtbot, widget)
    assert [id(ly) for ly in viewer.layers] == before


def test_cancel_stops_and_keeps_state(setup, reference_file, qtbot):
    viewer, widget = setup
    widget.ref_path.value = reference_file
    widget.epochs.value = 200
    n_layers = len(viewer.layers)
    widget.run(train=True, deconvolve=True)
    qtbot.waitUntil(lambda: len(widget.loss.epochs) >= 2, timeout=120_000)
    t0 = time.perf_counter()
    widget.cancel()
    wait_done(qtbot, widget, timeout=30_000)
    print(f"cancel took {time.perf_counter() - t0:.2f} s")
    assert widget.model is None and widget.result is None
    assert len(viewer.layers) == n_layers
    assert "cancelled" in widget.status.text()
    assert all(b.isEnabled() for name, b in widget.buttons.items() if name != "Cancel")


def test_bad_reference_is_a_notification_and_the_widget_recovers(
    setup, reference_file, tmp_path, qtbot
):
    viewer, widget = setup
    bad = tmp_path / "broken.h5ad"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    widget.ref_path.value = bad
    assert widget.last_error and "broken.h5ad" in widget.last_error
    assert widget.run() is None  # refuses, no worker, no traceback
    other = tmp_path / "other_genes.h5ad"
    ref = load_sample("mouse_brain").reference.copy()
    ref.var_names = [f"NotAGene{i}" for i in range(ref.n_vars)]
    ref.write_h5ad(other)
    widget.ref_path.value = other
    assert "shared" in widget.last_error and "other_genes.h5ad" in widget.last_error
    widget.ref_path.value = reference_file
    assert "307 shared genes" in widget.overlap.text()
    widget.run()
    wait_done(qtbot, widget)
    assert widget.result is not None


def test_save_load_same_predictions_and_export(setup, reference_file, tmp_path, qtbot):
    viewer, widget = setup
    widget.ref_path.value = reference_file
    widget.run()
    wait_done(qtbot, widget)
    first = widget.result.table.copy()
    path = widget.save_model(str(tmp_path / "m.safetensors"))
    assert path is not None and path.exists()
    widget.model = None
    assert widget.load_model(str(path)) is not None
    widget.run(train=False, deconvolve=True)
    wait_done(qtbot, widget)
    types = widget.result.cell_types
    np.testing.assert_allclose(widget.result.table[types], first[types], atol=1e-6)

    out = {
        k: tmp_path / n
        for k, n in [
            ("proportions CSV", "p.csv"),
            ("result h5ad", "r.h5ad"),
            ("region means CSV", "m.csv"),
        ]
    }
    for kind, p in out.items():
        assert widget.export(kind, str(p)) is not None
    table = pd.read_csv(out["proportions CSV"])
    assert list(table.columns) == ["barcode", "x", "y", "region", *types]
    assert ad.read_h5ad(out["result h5ad"]).obsm["stlnmf_proportions"].shape == (2310, 17)
    assert "n_spots" in pd.read_csv(out["region means CSV"]).columns

    # a model for other genes: refused with what differs, model kept
    other = load_sample("hippocampus")
    from napari_stlnmf.gui.layers import slide_layers

    for data, kw, kind in slide_layers(other.spatial, name="hippo spots"):
        getattr(viewer, f"add_{kind}")(data, **kw)
    widget.spots.reset_choices()
    widget.spots.value = viewer.layers["hippo spots"]
    kept = widget.model
    assert widget.load_model(str(path)) is None
    assert "lacks" in widget.last_error and "genes" in widget.last_error
    assert widget.model is kept
