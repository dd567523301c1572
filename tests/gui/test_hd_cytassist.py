"""The Visium HD CytAssist image in napari: registered onto the H&E, hidden."""

from __future__ import annotations

import numpy as np

from napari_stlnmf.gui.layers import affine_of_projective, cytassist_layer, slide_layers
from napari_stlnmf.io.visium_hd import read_visium_hd
from tests.io.hd_folder import write_feature_slice
from tests.io.test_visium_hd_cytassist import TO_MICRO, TO_SPOT, hd  # noqa: F401 - fixture


def test_unregistered_cytassist_image_is_not_drawn(hd):  # noqa: F811
    a = read_visium_hd(hd.outs, load_images=("hires", "cytassist"))
    assert cytassist_layer(a) is None  # its own frame: not drawn over the H&E
    assert [kw["name"] for _, kw, _ in slide_layers(a)] == ["hdsample hires", "hdsample spots"]


def test_affine_of_projective():
    affine, err = affine_of_projective(TO_MICRO @ TO_SPOT, 40, 30)
    np.testing.assert_allclose(affine, TO_MICRO @ TO_SPOT)
    assert err == 0.0
    proj = (TO_MICRO @ TO_SPOT).copy()
    proj[2, :2] = [1e-6, -2e-6]  # a slight perspective, as Space Ranger's fits have
    affine, err = affine_of_projective(proj, 40, 30)
    assert np.allclose(affine[2], [0, 0, 1]) and 0 < err < 0.05


def test_napari_reader_shows_the_registered_cytassist_layer(make_napari_viewer, hd):  # noqa: F811
    write_feature_slice(hd.outs, TO_SPOT, TO_MICRO)
    viewer = make_napari_viewer()
    layers = viewer.open(str(hd.outs), plugin="napari-stlnmf")
    names = [ly.name for ly in layers]
    assert names == ["hdsample hires", "hdsample CytAssist", "hdsample spots"]
    cyt = viewer.layers["hdsample CytAssist"]
    assert not cyt.visible and cyt.rgb
    # pixel (row 10, col 20) of the CytAssist image lands where the registration says
    m = TO_MICRO @ TO_SPOT
    x, y, _ = m @ [20.0, 10.0, 1.0]
    np.testing.assert_allclose(cyt.data_to_world((10, 20)), (y, x), atol=1e-6)
