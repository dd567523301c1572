"""``stlnmf batch`` refuses bad input before starting any cluster: one line, exit 2."""

from __future__ import annotations

from napari_stlnmf.cli import main


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("stlnmf")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return code, lines[0]


def test_missing_manifest(tmp_path, capsys):
    code, line = _run(["batch", tmp_path / "m.csv", "--model", "x", "--out", tmp_path], capsys)
    assert code == 2 and "manifest" in line and "no such file" in line


def test_neither_reference_nor_model(tmp_path, capsys):
    m = tmp_path / "m.csv"
    m.write_text("path\na.h5ad\n")
    code, line = _run(["batch", m, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "--reference" in line and "--model" in line
    assert not (tmp_path / "o").exists()


def test_missing_model_file(tmp_path, capsys):
    m = tmp_path / "m.csv"
    m.write_text("path\na.h5ad\n")
    code, line = _run(
        ["batch", m, "--model", tmp_path / "none.safetensors", "--out", tmp_path / "o"], capsys
    )
    assert code == 2 and "none.safetensors" in line and "no such model file" in line


def test_unreachable_scheduler(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("napari_stlnmf.cohort.CONNECT_TIMEOUT", "2s")
    m = tmp_path / "m.csv"
    m.write_text("path\na.h5ad\n")
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"x")
    argv = ["batch", m, "--model", model, "--out", tmp_path / "o"]
    code, line = _run([*argv, "--scheduler", "tcp://127.0.0.1:9"], capsys)
    assert code == 2 and "--scheduler tcp://127.0.0.1:9" in line and "could not connect" in line


def test_out_is_a_file(tmp_path, capsys):
    m = tmp_path / "m.csv"
    m.write_text("path\na.h5ad\n")
    f = tmp_path / "file"
    f.write_text("")
    code, line = _run(["batch", m, "--reference", m, "--out", f], capsys)
    assert code == 2 and "is not a folder" in line


def test_sample_refuses_hd_options(capsys, tmp_path):
    code, line = _run(
        ["deconvolve", "--sample", "mouse_brain", "--bin-size", "8", "--out", tmp_path], capsys
    )
    assert code == 2 and "not a Visium HD slide" in line and "--bin-size" in line
