"""The 90 % intervals in stlnmf deconvolve's outputs: proportions_q05/q95.csv,
obsm["stlnmf_q05"/"stlnmf_q95"] in result.h5ad, run.json's summary; a saved model keeps
its calibration; --no-intervals and models without one write none."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_stlnmf.cli import main
from napari_stlnmf.io.model_file import load_model, save_model

TINY = ["--epochs", "2", "--layers", "8"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("intervals")
    model = out / "m.safetensors"
    argv = ["deconvolve", "--sample", "mouse_brain", "--out", out / "run", "-q", *TINY]
    assert main([str(a) for a in [*argv, "--save-model", model]]) == 0
    return out


def _read(path):
    return pd.read_csv(path, dtype={"barcode": str, "region": str})


def test_interval_files_have_the_proportions_layout_and_bracket_them(run):
    props = _read(run / "run" / "proportions.csv")
    lo, hi = _read(run / "run" / "proportions_q05.csv"), _read(run / "run" / "proportions_q95.csv")
    assert list(lo.columns) == list(props.columns) == list(hi.columns)
    for c in ("barcode", "x", "y", "region"):
        assert lo[c].equals(props[c]) and hi[c].equals(props[c])
    types = list(props.columns[4:])
    p, a, b = (t[types].to_numpy() for t in (props, lo, hi))
    tol = 1e-5  # six significant digits in the CSVs
    assert (a <= p + tol).all() and (p <= b + tol).all()
    assert (a >= 0).all() and (b <= 1).all()
    assert 0.01 < (b - a).mean() < 0.5
    h5 = ad.read_h5ad(run / "run" / "result.h5ad")
    np.testing.assert_allclose(h5.obsm["stlnmf_q05"].to_numpy(), a, atol=tol)
    np.testing.assert_allclose(h5.obsm["stlnmf_q95"].to_numpy(), b, atol=tol)
    assert list(h5.obsm["stlnmf_q05"].columns) == types
    meta = json.loads((run / "run" / "run.json").read_text())["uncertainty"]
    assert meta["level"] == 0.9 and meta["files"] == ["proportions_q05.csv", "proportions_q95.csv"]
    assert meta["mean_width"] == pytest.approx((b - a).mean(), abs=1e-4)
    assert set(meta["mean_width_per_type"]) == set(types)


def test_a_saved_model_keeps_its_intervals_and_mrna_bounds_bracket_too(run):
    model = run / "m.safetensors"
    argv = ["deconvolve", "--sample", "mouse_brain", "--model", model, "--out", run / "again"]
    assert main([str(a) for a in [*argv, "-q", "--fractions", "mrna"]]) == 0
    props = _read(run / "again" / "proportions.csv")
    lo = _read(run / "again" / "proportions_q05.csv")
    hi = _read(run / "again" / "proportions_q95.csv")
    types = list(props.columns[4:])
    assert (lo[types].to_numpy() <= props[types].to_numpy() + 1e-5).all()
    assert (props[types].to_numpy() <= hi[types].to_numpy() + 1e-5).all()


def test_no_intervals_switch_and_models_without_a_calibration(run, tmp_path):
    out = tmp_path / "off"
    argv = ["deconvolve", "--sample", "mouse_brain", "--out", out, "-q", "--no-intervals", *TINY]
    argv += ["--save-model", tmp_path / "m0.safetensors"]
    assert main([str(a) for a in argv]) == 0
    assert not (out / "proportions_q05.csv").exists()
    assert "uncertainty" not in json.loads((out / "run.json").read_text())
    assert "stlnmf_q05" not in ad.read_h5ad(out / "result.h5ad").obsm
    assert load_model(tmp_path / "m0.safetensors").intervals_ is None
    # a model from before intervals (no interval tensors) still loads and runs
    m = load_model(run / "m.safetensors")
    m.intervals_ = None
    save_model(m, tmp_path / "old.safetensors")
    argv = ["deconvolve", "--sample", "mouse_brain", "--model", tmp_path / "old.safetensors"]
    assert main([str(a) for a in [*argv, "--out", tmp_path / "old", "-q"]]) == 0
    assert not (tmp_path / "old" / "proportions_q05.csv").exists()
