"""Injected faults: a full disk halfway through any CLI output, Ctrl-C in training or
writing, and an exception or a cancel during training in the widget. Each must leave the
previous outputs (files, model, result, layers) exactly as they were."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import napari_stlnmf.io.export as export_mod
import napari_stlnmf.io.figures as figures_mod
import napari_stlnmf.pipeline as pipeline
from napari_stlnmf.cli import EXIT_INTERRUPTED, main
from napari_stlnmf.io import atomic
from tests.gui.widget_helpers import sample_widget, wait_done

from .conftest import OUTPUTS, TINY, stlnmf_lines

PLAINKL = ["deconvolve", "--sample", "mouse_brain", "--method", "plainkl", "-q"]


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder`` (hidden temporaries included) and its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A finished run's folder and the bytes of its outputs."""
    out = tmp_path_factory.mktemp("previous")
    assert main([*PLAINKL, "--out", str(out)]) == 0
    before = files_of(out)
    assert sorted(before) == sorted(OUTPUTS)
    return out, before


def break_writes(monkeypatch, target: str, error: BaseException) -> list[str]:
    """Writing ``target`` writes half of its bytes, then raises ``error``; other files
    are written normally. Returns the names whose writing started."""
    real = atomic.atomic_write
    started = []

    def atomic_write(path, write):
        started.append(Path(path).name)
        if Path(path).name != target:
            return real(path, write)

        def half_then_fail(tmp):
            write(tmp)
            data = Path(tmp).read_bytes()
            assert len(data) > 1
            Path(tmp).write_bytes(data[: len(data) // 2])
            raise error

        return real(path, half_then_fail)

    monkeypatch.setattr(export_mod, "atomic_write", atomic_write)
    monkeypatch.setattr(figures_mod, "atomic_write", atomic_write)
    return started


@pytest.mark.parametrize("target", OUTPUTS)
def test_full_disk_while_writing_any_output_keeps_the_previous_run(
    previous, target, monkeypatch, capsys
):
    out, before = previous
    started = break_writes(monkeypatch, target, OSError(28, "No space left on device"))
    code = main([*PLAINKL, "--out", str(out)])
    err = capsys.readouterr().err
    assert target in started
    assert code in (1, 2), err
    lines = stlnmf_lines(err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("stlnmf: error:") and "No space left on device" in lines[0]
    assert files_of(out) == before  # byte-identical, and no .tmp left
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("target", ["result.h5ad", "run.json"])
def test_ctrl_c_while_writing_keeps_the_previous_run(previous, target, monkeypatch, capsys):
    out, before = previous
    break_writes(monkeypatch, target, KeyboardInterrupt())
    assert main([*PLAINKL, "--out", str(out)]) == EXIT_INTERRUPTED
    lines = stlnmf_lines(capsys.readouterr().err)
    assert lines == ["stlnmf: interrupted; no partial output was written"]
    assert files_of(out) == before


def interrupt_training(monkeypatch, error_factory, after_epoch: int = 1) -> dict:
    """``pipeline.train`` raises ``error_factory()`` from inside training, after the
    progress report of ``after_epoch``; returns what was seen."""
    real = pipeline.train
    seen = {"epochs": []}

    def train(prepared, **kw):
        user_callback = kw.pop("callback", None)

        def callback(p):
            if user_callback is not None:
                user_callback(p)
            seen["epochs"].append(p.epoch)
            if p.epoch >= after_epoch:
                raise error_factory()

        return real(prepared, callback=callback, **kw)

    monkeypatch.setattr(pipeline, "train", train)
    return seen


def test_ctrl_c_in_cli_training_exits_130_without_outputs(tmp_path, monkeypatch, capsys):
    seen = interrupt_training(monkeypatch, KeyboardInterrupt)
    out = tmp_path / "fresh"
    model = tmp_path / "model.safetensors"
    argv = ["deconvolve", "--sample", "mouse_brain", "--epochs", "5", "--layers", "8", "-q"]
    code = main([*argv, "--out", str(out), "--save-model", str(model)])
    assert code == EXIT_INTERRUPTED
    assert seen["epochs"] == [0, 1]  # interrupted in the middle of training
    assert stlnmf_lines(capsys.readouterr().err) == [
        "stlnmf: interrupted; no partial output was written"
    ]
    assert not out.exists() and not model.exists()
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_in_cli_training_keeps_a_previous_run(previous, monkeypatch, capsys):
    out, before = previous
    interrupt_training(monkeypatch, KeyboardInterrupt)
    argv = ["deconvolve", "--sample", "mouse_brain", "--epochs", "5", "--layers", "8", "-q"]
    assert main([*argv, "--out", str(out)]) == EXIT_INTERRUPTED
    capsys.readouterr()
    assert files_of(out) == before


# ------------------------------------------------------------------------------ widget


@pytest.fixture
def widget_after_a_run(make_napari_viewer, reference_file, qtbot):
    """A widget (tiny settings) that has trained and deconvolved once, successfully."""
    viewer, widget = sample_widget(make_napari_viewer, TINY["epochs"], TINY["n_layers"])
    widget.ref_path.value = reference_file
    assert widget.run(train=True, deconvolve=True) is not None
    wait_done(qtbot, widget)
    assert widget.last_error is None, widget.last_error
    assert widget.result is not None and widget.model is not None
    return viewer, widget


def _digest(data) -> str:
    arr = np.ascontiguousarray(np.asarray(data))
    return hashlib.sha1(arr.tobytes()).hexdigest() + str(arr.shape)


def snapshot(viewer, widget) -> dict:
    """Everything a failed run must not touch."""
    from napari_stlnmf.gui.layers import META

    layers = []
    for ly in viewer.layers:
        entry = {"id": id(ly), "name": ly.name, "type": type(ly).__name__}
        entry["data"] = _digest(ly.data)
        entry["visible"] = ly.visible
        if hasattr(ly, "features") and len(ly.features.columns):
            entry["features"] = ly.features.copy()
        if hasattr(ly, "face_color"):
            entry["face_color"] = _digest(ly.face_color)
        m = ly.metadata.get(META, {})
        if "features" in m:
            entry["meta_features"] = m["features"].copy()
        layers.append(entry)
    model = widget.model
    return {
        "layers": layers,
        "model": model,
        "state": {k: v.clone() for k, v in model.net_.state_dict().items()},
        "result": widget.result,
        "table": widget.result.table.copy(),
        "params": widget.params.toPlainText(),
        "region_table": widget.table.rowCount(),
    }


def assert_unchanged(before: dict, viewer, widget) -> None:
    after = snapshot(viewer, widget)
    assert widget.model is before["model"] and widget.result is before["result"]
    for k, v in before["state"].items():
        assert np.array_equal(v.numpy(), after["state"][k].numpy()), k
    pd.testing.assert_frame_equal(after["table"], before["table"])
    assert after["params"] == before["params"]
    assert after["region_table"] == before["region_table"]
    assert [ly["id"] for ly in after["layers"]] == [ly["id"] for ly in before["layers"]]
    for a, b in zip(after["layers"], before["layers"], strict=True):
        assert a.keys() == b.keys(), a["name"]
        for key in a:
            if isinstance(a[key], pd.DataFrame):
                pd.testing.assert_frame_equal(a[key], b[key], obj=f"{a['name']} {key}")
            else:
                assert a[key] == b[key], (a["name"], key)


def assert_usable(widget, qtbot) -> None:
    """The buttons are back and a following run succeeds with a new result."""
    assert not widget.busy
    assert all(b.isEnabled() for name, b in widget.buttons.items() if name != "Cancel")
    assert not widget.buttons["Cancel"].isEnabled()
    old = widget.result
    widget.last_error = None
    widget.epochs.value = TINY["epochs"]
    assert widget.run(train=True, deconvolve=True) is not None
    wait_done(qtbot, widget)
    assert widget.last_error is None, widget.last_error
    assert widget.result is not None and widget.result is not old


def test_widget_error_during_training_keeps_model_result_and_layers(
    widget_after_a_run, monkeypatch, qtbot
):
    viewer, widget = widget_after_a_run
    before = snapshot(viewer, widget)
    seen = interrupt_training(
        monkeypatch, lambda: RuntimeError("injected failure\nin the middle of training")
    )
    widget.run(train=True, deconvolve=True)
    wait_done(qtbot, widget)
    assert seen["epochs"] == [0, 1]
    assert widget.last_error == "RuntimeError: injected failure in the middle of training"
    assert "\n" not in widget.status.text()
    assert_unchanged(before, viewer, widget)
    monkeypatch.undo()
    assert_usable(widget, qtbot)


def test_widget_cancel_during_training_keeps_model_result_and_layers(widget_after_a_run, qtbot):
    viewer, widget = widget_after_a_run
    before = snapshot(viewer, widget)
    widget.epochs.value = 200
    widget.run(train=True, deconvolve=True)
    qtbot.waitUntil(lambda: len(widget.loss.epochs) >= 2, timeout=120_000)
    widget.cancel()
    wait_done(qtbot, widget, timeout=30_000)
    assert widget.last_error == "cancelled: the previous model and layers are unchanged"
    assert_unchanged(before, viewer, widget)
    assert_usable(widget, qtbot)
