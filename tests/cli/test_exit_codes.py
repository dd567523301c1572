"""Exit codes tell the user's mistakes from the program's: only InputError (and its
subclasses ModelFileError, NotEnoughMemoryError) is bad input, exit 2; any other exception
is an internal error, exit 1; both print one line, ``--debug`` adds the traceback."""

import pytest

import napari_stlnmf.io.samples as samples
from napari_stlnmf._cli_args import EXIT_BAD_INPUT, EXIT_INTERNAL
from napari_stlnmf.cli import main
from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.model_file import ModelFileError

ARGV = ["deconvolve", "--sample", "mouse_brain", "-q"]


def stlnmf_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("stlnmf")]


def failing_load(error: Exception):
    def load_sample(name):
        raise error

    return load_sample


def test_an_internal_value_error_exits_1_as_internal(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(samples, "load_sample", failing_load(ValueError("bad\nshape (3,)")))
    assert main([*ARGV, "--out", str(tmp_path / "out")]) == EXIT_INTERNAL == 1
    err = capsys.readouterr().err
    assert stlnmf_lines(err) == [
        "stlnmf: internal error: ValueError: bad shape (3,) (run with --debug for the traceback)"
    ]
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "error", [InputError("sample x: broken"), ModelFileError("model m: broken")]
)
def test_input_errors_exit_2_with_one_line(error, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(samples, "load_sample", failing_load(error))
    assert main([*ARGV, "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT == 2
    err = capsys.readouterr().err
    assert stlnmf_lines(err) == [f"stlnmf: error: {error}"]
    assert "Traceback" not in err


@pytest.mark.parametrize("error", [ValueError("internal"), InputError("yours")])
def test_debug_shows_the_traceback(error, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(samples, "load_sample", failing_load(error))
    main([*ARGV, "--debug", "--out", str(tmp_path / "out")])
    assert "Traceback" in capsys.readouterr().err


def test_missing_cuda_is_bad_input(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([*ARGV, "--device", "cuda", "--out", str(tmp_path / "out")]) == 2
    (line,) = stlnmf_lines(capsys.readouterr().err)
    assert line.startswith("stlnmf: error:") and "cuda" in line


def test_a_slide_the_engine_refuses_is_bad_input(tmp_path, monkeypatch, capsys):
    """The engine's own checks (here: two spots at one position) reach the user as bad
    input, before any training."""
    real = samples.load_sample

    def load_sample(name):
        sample = real(name)
        sample.spatial.obsm["spatial"][1] = sample.spatial.obsm["spatial"][0]
        return sample

    monkeypatch.setattr(samples, "load_sample", load_sample)
    assert main([*ARGV, "--out", str(tmp_path / "out")]) == 2
    (line,) = stlnmf_lines(capsys.readouterr().err)
    assert line.startswith("stlnmf: error: duplicated coordinates: 1 pairs of spots")


def test_a_model_file_the_system_refuses_is_bad_input(tmp_path, monkeypatch, capsys):
    import napari_stlnmf.io.model_file as model_file

    def save_model(model, path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(model_file, "save_model", save_model)
    path = tmp_path / "model.safetensors"
    argv = ["train", "--sample", "mouse_brain", "--epochs", "0", "--layers", "2", "-q"]
    assert main([*argv, "--save", str(path)]) == 2
    (line,) = stlnmf_lines(capsys.readouterr().err)
    assert line == f"stlnmf: error: --save {path}: could not write the model: Permission denied"
