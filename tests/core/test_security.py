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
