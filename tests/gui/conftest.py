"""Fixtures shared by the GUI tests."""

import pytest

from napari_stlnmf.io.samples import load_sample


@pytest.fixture(scope="session")
def reference_file(tmp_path_factory):
    """The mouse_brain sample's reference, as the .h5ad file a user would pick."""
    path = tmp_path_factory.mktemp("ref") / "reference.h5ad"
    load_sample("mouse_brain").reference.write_h5ad(path)
    return path
