"""The Visium HD CytAssist image: read on request, with Space Ranger's registration."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_stlnmf.io.visium_hd import cytassist_registration, read_visium_hd
from tests.io.hd_folder import make_hd_outs, write_feature_slice

# CytAssist px -> spot (col, row): 0.5 spots per px, shifted; spot -> microscope: a small
# rotation and 4 px per spot, offset to the grid's corner (test helper's X0, Y0)
TO_SPOT = np.array([[0.5, 0.0, -2.0], [0.0, 0.5, -1.0], [0.0, 0.0, 1.0]])
_c, _s = np.cos(0.1), np.sin(0.1)
TO_MICRO = np.array([[4 * _c, -4 * _s, 100.0], [4 * _s, 4 * _c, 60.0], [0.0, 0.0, 1.0]])


@pytest.fixture
def hd(tmp_path):
    out = make_hd_outs(tmp_path, sizes=(8,))
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[5:10, 20:30] = (200, 30, 90)
    Image.fromarray(rgb).save(out.outs / "spatial" / "cytassist_image.tiff")
    return out


def test_cytassist_image_and_registration_are_read_on_request(hd):
    write_feature_slice(hd.outs, TO_SPOT, TO_MICRO)
    plain = read_visium_hd(hd.outs)
    lib = next(iter(plain.uns["spatial"].values()))
    assert "cytassist" not in lib["images"]  # not by default: the CLI does not need it
    a = read_visium_hd(hd.outs, load_images=("hires", "lowres", "cytassist"))
    lib = next(iter(a.uns["spatial"].values()))
    img = lib["images"]["cytassist"]
    assert img.shape == (30, 40, 3) and tuple(img[7, 25]) == (200, 30, 90)
    m = np.asarray(lib["metadata"]["cytassist_to_fullres"])
    np.testing.assert_allclose(m, TO_MICRO @ TO_SPOT)
    # CytAssist px (x=20, y=10) -> spot (8, 4) -> microscope
    p = m @ [20.0, 10.0, 1.0]
    spot = np.array([8.0, 4.0])
    np.testing.assert_allclose(p[:2] / p[2], TO_MICRO[:2, :2] @ spot + TO_MICRO[:2, 2])
    # the tissue images and bins are what they are without it
    np.testing.assert_array_equal(a.obsm["spatial"], plain.obsm["spatial"])


def test_no_feature_slice_keeps_the_image_in_its_frame(hd):
    a = read_visium_hd(hd.outs, load_images=("hires", "cytassist"))
    lib = next(iter(a.uns["spatial"].values()))
    assert "cytassist" in lib["images"] and "cytassist_to_fullres" not in lib["metadata"]


def test_broken_feature_slice_warns_and_leaves_the_image_unregistered(hd):
    import h5py

    with h5py.File(hd.outs / "feature_slice.h5", "w") as f:
        f.attrs["metadata_json"] = '{"transform_matrices": {}}'
    with pytest.warns(UserWarning, match="no usable CytAssist registration"):
        assert cytassist_registration(hd.outs) is None


def test_unreadable_cytassist_image_is_left_out_with_a_warning(hd):
    (hd.outs / "spatial" / "cytassist_image.tiff").write_bytes(b"not a tiff")
    with pytest.warns(UserWarning, match="cannot read the CytAssist image"):
        a = read_visium_hd(hd.outs, load_images=("hires", "cytassist"))
    assert "cytassist" not in next(iter(a.uns["spatial"].values()))["images"]
