"""Saving and loading fitted models without pickle."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from napari_stlnmf import STLNMF, Reference, load_model, save_model
from napari_stlnmf.core.simulate import SimulationSettings, simulate_demo_slide
from napari_stlnmf.io.model_file import ModelFileError


@pytest.fixture(scope="module")
def fitted():
    d = simulate_demo_slide(n_rows=10, n_cols=12, n_types=4, n_genes=60, seed=3)
    est = STLNMF(epochs=2, n_layers=15, tied=False, random_state=1)
    est.fit(d["reference"], d["coords"], d["regions"], X=d["counts"])
    return est, d


def test_round_trip_gives_identical_predictions(fitted, tmp_path):
    est, d = fitted
    path = save_model(est, tmp_path / "model.safetensors")
    loaded = load_model(path, genes=d["genes"], cell_types=d["cell_types"])
    a = est.transform(d["counts"], d["coords"], d["regions"])
    b = loaded.transform(d["counts"], d["coords"], d["regions"])
    np.testing.assert_array_equal(a, b)
    # the data term's gene weights come from reference cells, which are not saved
    assert not np.allclose(est.reference_.gene_weights, 1.0)
    np.testing.assert_array_equal(loaded.reference_.gene_weights, est.reference_.gene_weights)
    assert loaded.learned_parameters() == est.learned_parameters()
    assert loaded.n_layers == 15 and loaded.tied is False
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temp file


def test_wrong_genes_or_types_are_named(fitted, tmp_path):
    est, d = fitted
    path = save_model(est, tmp_path / "m.safetensors")
    genes = list(d["genes"])
    genes[0] = "Xist"
    with pytest.raises(ModelFileError, match=r"1 only in the model.*Gene0000.*Xist"):
        load_model(path, genes=genes)
    with pytest.raises(ModelFileError, match="cell types"):
        load_model(path, cell_types=d["cell_types"][::-1])


def test_corrupt_tampered_and_foreign_files(fitted, tmp_path):
    est, _ = fitted
    path = save_model(est, tmp_path / "m.safetensors")
    raw = path.read_bytes()
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match="truncated.safetensors"):
        load_model(bad)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04K\x01.")  # a pickle, never executed
    with pytest.raises(ModelFileError, match="not a readable"):
        load_model(junk)
    # tensors swapped for the wrong shape
    tensors = load_file(str(path))
    tensors["omega_raw"] = tensors["omega_raw"][:, :2].contiguous()
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    shaped = tmp_path / "shape.safetensors"
    save_file(tensors, str(shaped), metadata=meta)
    with pytest.raises(ModelFileError, match="omega_raw.*expected"):
        load_model(shaped)
    # negative gene weights
    tensors = load_file(str(path))
    tensors["gene_weights"] = -tensors["gene_weights"]
    weighted = tmp_path / "weights.safetensors"
    save_file(tensors, str(weighted), metadata=meta)
    with pytest.raises(ModelFileError, match="gene_weights"):
        load_model(weighted)
    # another format version
    info = json.loads(meta["stlnmf"])
    info["format_version"] = 99
    other = tmp_path / "v99.safetensors"
    save_file(load_file(str(path)), str(other), metadata={"stlnmf": json.dumps(info)})
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(other)
    # no metadata at all
    plain = tmp_path / "plain.safetensors"
    save_file(load_file(str(path)), str(plain))
    with pytest.raises(ModelFileError, match="no napari-stlnmf metadata"):
        load_model(plain)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.safetensors")


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        save_model(STLNMF(), tmp_path / "x.safetensors")


DATA = Path(__file__).parent / "data"
OLD_MODEL = DATA / "model_v1_napari_stlnmf_0.1.0.safetensors"


def test_model_saved_by_0_1_0_still_loads_and_predicts_the_same(monkeypatch):
    """Written by napari-stlnmf 0.1.0 (commit 3e5c9a8: settings as a hand-kept list, the
    library sizes attached to the estimator) with ``STLNMF(epochs=1, n_layers=4,
    warm_start=5, tied=False, n_train_slides=1, n_val_slides=1, random_state=2)`` fitted
    on ``simulate_demo_slide(n_rows=8, n_cols=9, n_types=3, n_genes=30, seed=5)``."""
    d = simulate_demo_slide(n_rows=8, n_cols=9, n_types=3, n_genes=30, seed=5)
    model = load_model(OLD_MODEL, genes=d["genes"], cell_types=d["cell_types"])
    expected = np.loadtxt(DATA / "model_v1_napari_stlnmf_0.1.0_proportions.csv", delimiter=",")
    # the fused CPU kernel sums in another order than torch: float32 rounding apart
    np.testing.assert_allclose(
        model.transform(d["counts"], d["coords"], d["regions"]), expected, rtol=0, atol=2e-6
    )
    monkeypatch.setenv("STLNMF_FUSED", "0")  # torch's own path: the numbers of 0.1.0
    np.testing.assert_allclose(
        model.transform(d["counts"], d["coords"], d["regions"]), expected, rtol=0, atol=1e-7
    )
    np.testing.assert_array_equal(model.reference_.library_sizes, [11.5, 20.25, 7.0])
    np.testing.assert_array_equal(model.library_sizes_, [11.5, 20.25, 7.0])
    assert model.n_layers == 4 and model.tied is False and model.random_state == 2
    assert model.prior == "auto" and model.simulation is None  # not saved by 0.1.0: defaults
    assert len(model.history_) == 2


def test_every_setting_and_the_library_sizes_round_trip(tmp_path):
    d = simulate_demo_slide(n_rows=8, n_cols=9, n_types=3, n_genes=30, seed=5)
    ref = Reference.from_signatures(
        d["reference"].signatures, d["genes"], d["cell_types"], library_sizes=[3.0, 4.0, 5.0]
    )
    est = STLNMF(
        epochs=0,
        n_layers=3,
        n_val_slides=4,
        holdout_cells=True,
        simulation=SimulationSettings(depth=0.25),
        prior="none",
        init={"lambda1": 0.5},
        device="cpu",
    ).fit(ref, d["coords"], d["regions"])
    loaded = load_model(save_model(est, tmp_path / "m.safetensors"))
    assert loaded.get_params() == est.get_params()
    assert loaded.simulation == SimulationSettings(depth=0.25)
    np.testing.assert_array_equal(loaded.reference_.library_sizes, [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(
        loaded.transform(d["counts"], d["coords"], d["regions"]),
        est.transform(d["counts"], d["coords"], d["regions"]),
    )


def test_state_round_trip_in_memory(fitted):
    est, d = fitted
    config, tensors, meta = est._get_state()
    json.dumps([config, meta])  # plain JSON
    again = STLNMF._from_state(config, tensors, meta)
    np.testing.assert_array_equal(
        again.transform(d["counts"], d["coords"], d["regions"]),
        est.transform(d["counts"], d["coords"], d["regions"]),
    )
    assert again.regions_ == est.regions_ and again.pitch_ == est.pitch_


def _resave(path, tmp_path, edit):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        info = json.loads(f.metadata()["stlnmf"])
    edit(info)
    out = tmp_path / "edited.safetensors"
    save_file(load_file(str(path)), str(out), metadata={"stlnmf": json.dumps(info)})
    return out


def test_file_without_library_sizes_uses_the_signatures(fitted, tmp_path):
    est, _ = fitted
    path = _resave(
        save_model(est, tmp_path / "m.safetensors"), tmp_path, lambda m: m.pop("library_sizes")
    )
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.library_sizes_, est.reference_.signatures.sum(0))


def test_bad_setting_in_a_file_is_a_model_file_error(fitted, tmp_path):
    est, _ = fitted
    path = save_model(est, tmp_path / "m.safetensors")
    bad = _resave(path, tmp_path, lambda m: m["settings"].update(epochs=-1))
    with pytest.raises(ModelFileError, match=r"edited.safetensors: .*'epochs'"):
        load_model(bad)
    newer = _resave(path, tmp_path, lambda m: m["settings"].update(from_the_future=1))
    assert load_model(newer).epochs == est.epochs  # settings this version lacks are ignored


def test_model_file_error_is_an_input_error():
    from napari_stlnmf.io.errors import InputError

    assert issubclass(ModelFileError, InputError) and issubclass(ModelFileError, ValueError)
