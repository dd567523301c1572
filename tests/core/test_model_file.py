"""Saving and loading fitted models without pickle."""

import json

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from napari_stlnmf import STLNMF, load_model, save_model
from napari_stlnmf.core.simulate import simulate_demo_slide
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
