"""The dock's state as slides, regions and references come and go: it scrolls instead of
growing, long messages wrap, background refreshes raise no error toasts, a new slide clears
the previous slide's results, the label key and the regions layer are guessed."""

import anndata as ad
import pandas as pd
import pytest
from qtpy.QtCore import QPoint, QRect

from napari_stlnmf.gui.dock import NO_REGIONS_LAYER, regions_layer_for
from napari_stlnmf.gui.layers import slide_layers
from napari_stlnmf.gui.regions import add_regions_layer
from napari_stlnmf.gui.scroll import MAX_HINT_HEIGHT
from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.samples import load_sample
from tests.gui.widget_helpers import sample_widget, wait_done

TINY = {"epochs": 2, "n_layers": 5}


@pytest.fixture
def errors(monkeypatch):
    """Every error notification: the dock's own and any napari shows (e.g. an exception
    in an event handler)."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    import napari_stlnmf.gui.dock as dock

    seen = []
    real = dock.notify

    def record(message, error=False):
        if error:
            seen.append(message)
        real(message, error)

    monkeypatch.setattr(dock, "notify", record)
    start = len(notification_manager.records)
    yield (
        lambda: (
            seen
            + [
                n.message
                for n in notification_manager.records[start:]
                if n.severity >= NotificationSeverity.ERROR and n.message not in seen
            ]
        )
    )


def add_slide(viewer, adata, name):
    """Open ``adata`` like File > Open does (image + spots); returns the spots layer."""
    for data, kw, kind in slide_layers(adata, name=name):
        getattr(viewer, f"add_{kind}")(data, **kw)
    return viewer.layers[name]


def renamed_genes(adata):
    other = adata.copy()
    other.var = pd.DataFrame(index=[f"NotAGene{i}" for i in range(other.n_vars)])
    return other


def overlaps(a, b) -> bool:
    return a.top() <= b.bottom() and b.top() <= a.bottom()


def test_dock_scrolls_and_a_long_error_wraps_without_overlapping(make_napari_viewer, qtbot):
    viewer, widget = sample_widget(make_napari_viewer, **TINY, show=True)
    widget.show_advanced.value = True  # the tallest form
    path = "/a/very/long/folder/name/without/any/spaces/" * 4 + "reference_file_name.h5ad"
    words = "the reference does not fit this slide because of many reasons " * 8
    message = f"{words}{path}"
    assert len(message) >= 600
    widget._fail(InputError(message))
    qtbot.wait(50)
    assert widget.status.text() == message  # all of it, as set (breaks are display-only)
    assert widget.sizeHint().height() <= MAX_HINT_HEIGHT <= 700
    assert widget.height() <= viewer.window._qt_window.height()
    # the body is never wider than the visible area: nothing is cut off on the right
    assert widget.body.width() <= widget.scroll.viewport().width()
    # rows in the body's own coordinates: stacked, none on top of another
    natives = [w.native for w in widget.form if w.visible]
    natives += [widget.overlap, widget.buttons["Train"], widget.status, widget.loss, widget.params]
    rows = [QRect(w.mapTo(widget.body, QPoint(0, 0)), w.size()) for w in natives]
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            assert not overlaps(a, b), (a, b)
    # the label got the height its wrapped text needs: more than 5 lines, none clipped
    status = widget.status
    assert (
        status.height() >= status.heightForWidth(status.width()) > 5 * status.fontMetrics().height()
    )
    # it scrolls: the body is taller than the dock's viewport
    assert widget.body.height() > widget.scroll.viewport().height()
    assert widget.scroll.verticalScrollBar().maximum() > 0


def test_a_new_slide_raises_no_toast_and_clears_the_previous_results(
    make_napari_viewer, reference_file, errors, qtbot
):
    viewer, widget = sample_widget(make_napari_viewer, **TINY)
    first = widget.spots.value
    widget.ref_path.value = reference_file
    assert widget.label_key.value == "cell_type"
    widget.run(train=True, deconvolve=True)
    wait_done(qtbot, widget)
    assert widget.last_error is None, widget.last_error
    assert widget.model_origin == "trained on 'mouse_brain spots'"
    # the outcome sentence, the parameters table, the region table
    status = widget.status.text()
    assert status.startswith(("trained in ", "validation did not improve in 2 epochs"))
    assert "(best at epoch" in status or "the untrained network is kept" in status
    assert status.endswith("deconvolved 2310 spots")
    assert widget.params.scalars.rowCount() == 5
    assert widget.params.omega.rowCount() == 17  # cell types, one column per region
    assert widget.params.omega.columnCount() == len(widget.model.regions_)
    assert widget.params_caption.text() == "learned parameters (trained on 'mouse_brain spots')"
    assert widget.table.rowCount() > 0 and len(widget.loss.epochs) == 3

    # a slide with no gene in common: chosen at once, said in the overlap label, no toast
    other = add_slide(viewer, renamed_genes(load_sample("mouse_brain").spatial), "other spots")
    assert widget.spots.value is other
    assert "only 0 genes shared" in widget.overlap.text()
    assert errors() == [] and widget.last_error is None
    # the previous slide's results are gone; the model stays and says where it came from
    assert widget.result is None
    assert widget.loss.is_placeholder and widget.params.is_empty
    assert widget.table.rowCount() == 0
    assert "trained on 'mouse_brain spots' is kept" in widget.status.text()
    assert "mouse_brain spots" in widget.params.placeholder.text()
    assert widget.model is not None

    # removing it (and the other layers changing) raises nothing either
    viewer.layers.remove(other)
    assert widget.spots.value is first
    assert errors() == []
    # an action the user clicks does: Train on a slide without shared genes
    other = add_slide(viewer, renamed_genes(load_sample("mouse_brain").spatial), "other 2")
    assert widget.run() is None
    assert len(errors()) == 1 and "only 0 genes shared" in errors()[0]

    # the kept model deconvolves another slide with the same genes, and says which it is
    same = add_slide(viewer, load_sample("mouse_brain").spatial, "copy spots")
    assert widget.spots.value is same
    assert "307 shared genes" in widget.overlap.text()
    widget.run(train=False, deconvolve=True)
    wait_done(qtbot, widget)
    assert widget.status.text() == (
        "deconvolved 2310 spots with the model trained on 'mouse_brain spots'"
    )
    assert widget.result is not None and widget.params.is_empty


def test_label_key_guess_and_reference_problems(
    make_napari_viewer, reference_file, tmp_path, errors, qtbot
):
    viewer, widget = sample_widget(make_napari_viewer, **TINY)
    ref = ad.read_h5ad(reference_file)
    ref.obs = ref.obs.rename(columns={"cell_type": "cluster"})
    ref.obs.insert(0, "sample", ["a", "b"] * (ref.n_obs // 2) + ["a"] * (ref.n_obs % 2))
    path = tmp_path / "clusters.h5ad"
    ref.write_h5ad(path)
    widget.ref_path.value = path
    # one of io.reference.LABEL_KEY_GUESSES, though not the first column
    assert widget.label_key.value == "cluster"
    assert "17 cell types" in widget.overlap.text() and "307 shared genes" in widget.overlap.text()
    assert errors() == []
    # a broken file picked by the user: said in the overlap label and as a toast
    bad = tmp_path / "broken.h5ad"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    widget.ref_path.value = bad
    assert widget.overlap.text().startswith("reference not usable: ")
    assert "broken.h5ad" in widget.overlap.text()
    assert len(errors()) == 1 and "broken.h5ad" in errors()[0]
    assert widget.reference is None


def test_regions_layer_of_the_chosen_slide_is_selected(make_napari_viewer, qtbot):
    viewer, widget = sample_widget(make_napari_viewer, **TINY)
    spots = widget.spots.value
    assert widget.regions.value is None
    assert widget.regions.current_choice == NO_REGIONS_LAYER
    # a Labels layer of the user's own is offered but not chosen; result layers are not offered
    own = viewer.add_labels(viewer.layers["mouse_brain hires"].data[..., 0] * 0, name="mine")
    assert own in widget.regions.choices and widget.regions.value is None
    painted = add_regions_layer(viewer, spots, viewer.layers["mouse_brain hires"])
    assert regions_layer_for(viewer, spots) is painted
    qtbot.waitUntil(lambda: widget.regions.value is painted, timeout=2000)
    # another slide: its own regions; back: the painted layer again
    other = add_slide(viewer, load_sample("mouse_brain").spatial, "copy spots")
    assert widget.spots.value is other and widget.regions.value is None
    widget.spots.value = spots
    assert widget.regions.value is painted
    viewer.layers.remove(painted)
    assert widget.regions.value is None
