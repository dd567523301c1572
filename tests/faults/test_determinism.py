"""Same seed and device, same numbers: the CLI (another process), the Python API and the
napari widget give identical proportions; another seed gives other numbers."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from napari_stlnmf.pipeline import deconvolve, train

from .conftest import TINY

SEED = 3


def six_digits(values: np.ndarray) -> np.ndarray:
    """What the CSV holds: every value printed with ``%.6g`` and read back."""
    return np.vectorize(lambda v: float(f"{v:.6g}") if np.isfinite(v) else np.nan)(values)


@pytest.fixture(scope="module")
def api(prepared):
    model = train(prepared, seed=SEED, device="cpu", options=TINY)
    return deconvolve(prepared, model)


def test_cli_in_another_process_equals_the_api(api, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "napari_stlnmf.cli", "deconvolve", "--sample", "mouse_brain"]
    cmd += ["--epochs", "2", "--layers", "8", "--seed", str(SEED), "--device", "cpu"]
    cmd += ["--no-figure", "-q", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out / "proportions.csv", dtype={"barcode": str})
    types = api.cell_types
    assert list(table.barcode) == list(api.table.barcode)
    np.testing.assert_array_equal(table[types].to_numpy(), six_digits(api.table[types].to_numpy()))


def test_widget_equals_the_api_exactly(api, make_napari_viewer, reference_file, qtbot):
    from tests.gui.widget_helpers import sample_widget, wait_done

    viewer, widget = sample_widget(make_napari_viewer, TINY["epochs"], TINY["n_layers"])
    widget.seed.value = SEED
    widget.device.value = "cpu"
    widget.ref_path.value = reference_file
    widget.run(train=True, deconvolve=True)
    wait_done(qtbot, widget)
    assert widget.last_error is None, widget.last_error
    assert widget.result.cell_types == api.cell_types
    np.testing.assert_array_equal(widget.result.cell_fractions, api.cell_fractions)
    types = api.cell_types
    np.testing.assert_array_equal(
        widget.result.table[types].to_numpy(), api.table[types].to_numpy()
    )
    assert widget.model.learned_parameters() == api.model.learned_parameters()


def test_api_repeats_itself_and_another_seed_differs(api, prepared):
    again = deconvolve(prepared, train(prepared, seed=SEED, device="cpu", options=TINY))
    np.testing.assert_array_equal(again.cell_fractions, api.cell_fractions)
    other = deconvolve(prepared, train(prepared, seed=SEED + 1, device="cpu", options=TINY))
    diff = np.abs(other.cell_fractions - api.cell_fractions)
    # a different seed simulates other training slides: other learned parameters and
    # visibly other numbers (not just rounding)
    assert other.model.learned_parameters() != api.model.learned_parameters()
    assert np.nanmax(diff) > 1e-4
    assert not np.array_equal(six_digits(other.cell_fractions), six_digits(api.cell_fractions))
