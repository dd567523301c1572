"""napari opens a SpatialData store with this plugin's reader (``viewer.open(...,
plugin=)``), where the optional spatialdata package is installed."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Points

from napari_stlnmf._reader import get_reader
from napari_stlnmf.io.visium import library
from tests.extras import optional

sd = optional("spatialdata")


def test_viewer_opens_a_store_as_image_and_spots(make_napari_viewer, tmp_path):
    from tests.io.test_spatialdata_zarr import make_store

    store = tmp_path / "slide.zarr"
    sample, s = make_store(store)
    assert get_reader(str(store)) is not None
    assert get_reader(str(tmp_path)) is None
    viewer = make_napari_viewer()
    layers = viewer.open(str(store), plugin="napari-stlnmf")
    assert [type(ly) for ly in layers] == [Image, Points]
    image, spots = layers
    hires = library(sample.spatial)[1]["images"]["hires"]
    assert image.data.shape[:2] == hires.shape[:2]
    assert len(spots.data) == sample.spatial.n_obs
    # the spots sit where the sample's own reader puts them on the same image
    ref = viewer.open(str(_outs_of_sample()), plugin="napari-stlnmf")[1]
    a = np.asarray(spots.data) * spots.scale + spots.translate
    b = np.asarray(ref.data) * ref.scale + ref.translate
    np.testing.assert_allclose(a, b, atol=1e-6)


def _outs_of_sample():
    from napari_stlnmf.io.samples import sample_path

    return sample_path("mouse_brain") / "outs"
