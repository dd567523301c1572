"""No pickle anywhere in the package; torch.load only with weights_only=True."""

import re
from pathlib import Path

import napari_stlnmf

PKG = Path(napari_stlnmf.__file__).parent


def test_no_pickle_or_unsafe_torch_load():
    offenders = []
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        if re.search(r"\bimport pickle\b|\bfrom pickle\b|\bpickle\.load|cloudpickle|joblib", text):
            offenders.append(f"{path}: pickle")
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            if "weights_only=True" not in call:
                offenders.append(f"{path}: {call}")
    assert not offenders, offenders


def test_reading_user_files_never_unpickles(tmp_path, monkeypatch):
    """Slides, references, region tables, label images and models are read without any
    pickle call (an h5ad or model from a stranger cannot run code through pickle)."""
    import pickle

    import numpy as np
    import pandas as pd
    import tifffile

    from napari_stlnmf.io.model_file import load_model, save_model
    from napari_stlnmf.io.reference import read_reference
    from napari_stlnmf.io.regions import read_regions
    from napari_stlnmf.io.samples import load_sample
    from napari_stlnmf.io.spatial import read_spatial
    from napari_stlnmf.pipeline import prepare, train

    sample = load_sample("hippocampus")
    slide, ref = tmp_path / "slide.h5ad", tmp_path / "ref.h5ad"
    sample.spatial.write_h5ad(slide)
    sample.reference.write_h5ad(ref)
    source = read_reference(ref, "cell_type")
    model = train(prepare(sample.spatial, source), options={"epochs": 0, "n_layers": 2})
    save_model(model, tmp_path / "m.safetensors")
    pd.DataFrame({"barcode": sample.spatial.obs_names, "region": 1}).to_csv(
        tmp_path / "r.csv", index=False
    )
    tifffile.imwrite(tmp_path / "labels.tif", np.zeros((5, 5), np.uint8))

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was called while reading a user file")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    adata = read_spatial(slide)
    read_reference(ref, "cell_type")
    read_regions(tmp_path / "r.csv", adata)
    load_model(tmp_path / "m.safetensors")
    tifffile.imread(tmp_path / "labels.tif")
