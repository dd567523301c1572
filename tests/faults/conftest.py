"""Shared helpers of the fault, fallback and determinism tests."""

import pytest

from napari_stlnmf.io.reference import reference_from_anndata
from napari_stlnmf.io.samples import load_sample
from napari_stlnmf.pipeline import prepare

#: the tiny STL NMF settings every test here uses (CLI: --epochs 2 --layers 8)
TINY = {"epochs": 2, "n_layers": 8}
OUTPUTS = ("proportions.csv", "region_means.csv", "result.h5ad", "run.json", "proportions.png")


@pytest.fixture(scope="session")
def mouse_brain():
    return load_sample("mouse_brain")


@pytest.fixture(scope="session")
def prepared(mouse_brain):
    """The bundled sample as the CLI prepares it (marker genes, the sample's regions)."""
    ref = reference_from_anndata(mouse_brain.reference, mouse_brain.label_key)
    return prepare(mouse_brain.spatial, ref, regions=mouse_brain.regions)


@pytest.fixture(scope="session")
def reference_file(tmp_path_factory, mouse_brain):
    path = tmp_path_factory.mktemp("ref") / "reference.h5ad"
    mouse_brain.reference.write_h5ad(path)
    return path


def stlnmf_lines(err: str) -> list[str]:
    """The lines the CLI itself printed on stderr (progress is off with -q)."""
    return [ln for ln in err.strip().splitlines() if ln.startswith("stlnmf")]
