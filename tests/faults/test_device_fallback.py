"""GPU out-of-memory: training and inference fall back to the CPU with a warning and give
the CPU run's numbers; out of memory on the CPU too is a one-line hint.

No GPU is needed: CUDA is made "available" by patching the device check, and the
estimator's fit/transform raise ``torch.OutOfMemoryError`` while they would run on it.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import napari_stlnmf._fallback as fallback
import napari_stlnmf.core.device as device_mod
from napari_stlnmf.cli import main
from napari_stlnmf.core.estimator import STLNMF, PlainKL
from napari_stlnmf.pipeline import (
    DeviceFallbackWarning,
    NotEnoughMemoryError,
    deconvolve,
    train,
)

from .conftest import TINY, stlnmf_lines

GPU_OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)"


@pytest.fixture
def fake_cuda(monkeypatch):
    """``resolve_device`` accepts cuda as if a GPU were present."""
    real = device_mod.resolve_device

    def resolve(device="auto"):
        d = str(device).lower()
        if d == "auto" or d.startswith("cuda"):
            return torch.device("cuda" if d == "auto" else d)
        return real(device)

    monkeypatch.setattr(device_mod, "resolve_device", resolve)


@pytest.fixture
def oom_fit(monkeypatch, fake_cuda):
    """STLNMF.fit runs out of GPU memory unless it runs on the CPU; returns the devices
    it was called with."""
    calls = []
    real = STLNMF.fit

    def fit(self, *args, **kwargs):
        calls.append(self.device)
        if self.device != "cpu":
            raise torch.OutOfMemoryError(GPU_OOM)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(STLNMF, "fit", fit)
    return calls


@pytest.fixture(scope="module")
def cpu_run(prepared):
    model = train(prepared, seed=3, device="cpu", options=TINY)
    return model, deconvolve(prepared, model)


def test_training_oom_retries_on_cpu_with_the_same_seed(prepared, cpu_run, oom_fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = train(prepared, seed=3, device="cuda", options=TINY)
    fallback = [w for w in caught if issubclass(w.category, DeviceFallbackWarning)]
    assert len(fallback) == 1, [str(w.message) for w in caught]
    text = str(fallback[0].message)
    assert "out of memory" in text and "CPU" in text and "seed (3)" in text
    assert fallback[0].filename == __file__  # points at the caller's line
    assert oom_fit == ["cuda", "cpu"]
    assert model.device == "cpu" and model.random_state == 3
    assert next(model.net_.parameters()).device.type == "cpu"
    ref_model, ref_result = cpu_run
    result = deconvolve(prepared, model)
    np.testing.assert_array_equal(result.cell_fractions, ref_result.cell_fractions)
    assert model.learned_parameters() == ref_model.learned_parameters()


def test_auto_device_falls_back_too(prepared, cpu_run, oom_fit):
    with pytest.warns(DeviceFallbackWarning):
        model = train(prepared, seed=3, device="auto", options=TINY)
    assert oom_fit == ["auto", "cpu"]
    np.testing.assert_array_equal(
        deconvolve(prepared, model).cell_fractions, cpu_run[1].cell_fractions
    )


def test_inference_oom_moves_the_model_to_cpu(prepared, cpu_run, monkeypatch):
    """A model 'on the GPU' whose transform runs out of memory there."""
    model = train(prepared, seed=3, device="cpu", options=TINY)
    on_gpu = {"model": True}
    real_device, real_to_cpu, real_transform = (
        fallback.model_device,
        fallback.to_cpu,
        STLNMF._run,  # transform and transform_intervals both run through it
    )
    calls = []

    def model_device(m):
        return torch.device("cuda") if on_gpu["model"] else real_device(m)

    def to_cpu(m):
        real_to_cpu(m)
        on_gpu["model"] = False

    def transform(self, *args, **kwargs):
        calls.append("cuda" if on_gpu["model"] else "cpu")
        if on_gpu["model"]:
            raise torch.OutOfMemoryError(GPU_OOM)
        return real_transform(self, *args, **kwargs)

    monkeypatch.setattr(fallback, "model_device", model_device)
    monkeypatch.setattr(fallback, "to_cpu", to_cpu)
    monkeypatch.setattr(STLNMF, "_run", transform)
    with pytest.warns(DeviceFallbackWarning, match="deconvolving again on the CPU") as rec:
        result = deconvolve(prepared, model)
    assert len([w for w in rec if issubclass(w.category, DeviceFallbackWarning)]) == 1
    assert calls == ["cuda", "cpu"]
    np.testing.assert_array_equal(result.cell_fractions, cpu_run[1].cell_fractions)
    assert result.metadata["model"]["device"] == "cpu"


def test_plain_kl_on_cuda_falls_back_by_its_device_setting(prepared, fake_cuda, monkeypatch):
    expected = deconvolve(prepared, train(prepared, method="plainkl", device="cpu"))
    model = PlainKL(device="cuda").fit(prepared.reference)
    real = PlainKL.transform

    def transform(self, X, *a, **kw):
        if self.device != "cpu":
            raise RuntimeError("CUDA error: out of memory")
        return real(self, X, *a, **kw)

    monkeypatch.setattr(PlainKL, "transform", transform)
    with pytest.warns(DeviceFallbackWarning):
        result = deconvolve(prepared, model)
    assert model.device == "cpu"
    np.testing.assert_array_equal(result.cell_fractions, expected.cell_fractions)


def test_cpu_out_of_memory_after_fallback_says_what_to_reduce(prepared, fake_cuda, monkeypatch):
    def fit(self, *args, **kwargs):
        if self.device != "cpu":
            raise torch.OutOfMemoryError(GPU_OOM)
        raise MemoryError()

    monkeypatch.setattr(STLNMF, "fit", fit)
    with pytest.warns(DeviceFallbackWarning), pytest.raises(NotEnoughMemoryError) as e:
        train(prepared, seed=3, device="cuda", options=TINY)
    msg = str(e.value)
    assert "\n" not in msg
    assert "2310 spots" in msg and "fewer spots" in msg and "--markers-per-type" in msg


def test_other_gpu_errors_are_not_swallowed(prepared, fake_cuda, monkeypatch):
    def fit(self, *args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(STLNMF, "fit", fit)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeviceFallbackWarning)
        with pytest.raises(RuntimeError, match="device-side assert"):
            train(prepared, seed=3, device="cuda", options=TINY)


def test_cli_prints_the_fallback_warning_and_gives_the_cpu_numbers(
    tmp_path, cpu_run, oom_fit, capsys
):
    argv = ["deconvolve", "--sample", "mouse_brain", "--epochs", "2", "--layers", "8"]
    argv += ["--seed", "3", "--device", "cuda", "--no-figure", "-q", "--out", str(tmp_path)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = stlnmf_lines(err)
    fallback = [ln for ln in lines if "ran out of memory" in ln]
    assert len(fallback) == 1, err
    assert fallback[0].startswith("stlnmf: warning: the GPU ran out of memory while training")
    assert oom_fit == ["cuda", "cpu"]
    table = pd.read_csv(tmp_path / "proportions.csv", dtype={"barcode": str})
    types = cpu_run[1].cell_types
    expected = np.vectorize(lambda v: float(f"{v:.6g}"))(cpu_run[1].table[types].to_numpy())
    np.testing.assert_array_equal(table[types].to_numpy(), expected)


def test_cli_cpu_out_of_memory_is_one_line_exit_2(tmp_path, fake_cuda, monkeypatch, capsys):
    def fit(self, *args, **kwargs):
        if self.device != "cpu":
            raise torch.OutOfMemoryError(GPU_OOM)
        raise MemoryError()

    monkeypatch.setattr(STLNMF, "fit", fit)
    argv = ["deconvolve", "--sample", "mouse_brain", "--device", "cuda", "-q"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    errors = [ln for ln in stlnmf_lines(err) if ln.startswith("stlnmf: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "not enough memory" in errors[0] and "--markers-per-type" in errors[0]
    assert not (tmp_path / "out").exists()
