"""Regions per spot from a barcode/region table or a painted label image."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import tifffile
from PIL import Image

from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.regions import image_shapes, read_regions, write_label_image

HIRES, LOWRES = 0.25, 0.08
FULL_W, FULL_H = 1200, 800
SHAPES = {"hires": (200, 300), "lowres": (64, 96)}
SCALES = {"hires": HIRES, "lowres": LOWRES}
BARCODES = ["AAAC-1", "AAAG-1", "AACT-1", "ACGT-1"]
# full-resolution (x, y): inside region 1, inside region 2, outside both, off the image
XY = np.array([[240.0, 160.0], [800.0, 560.0], [1100.0, 100.0], [5000.0, 100.0]])
EXPECTED = [1, 2, 0, 0]
# painted rectangles in full-resolution px: (x0, x1, y0, y1)
RECTS = {1: (100, 400, 50, 300), 2: (600, 1150, 400, 780)}


def _slide():
    rng = np.random.default_rng(0)
    n = len(BARCODES)
    a = ad.AnnData(
        X=sp.csr_matrix(rng.integers(0, 5, size=(n, 3)).astype(np.int32)),
        obs=pd.DataFrame(index=pd.Index(BARCODES)),
        var=pd.DataFrame(index=pd.Index(["G1", "G2", "G3"])),
    )
    a.obsm["spatial"] = XY.copy()
    a.uns["spatial"] = {
        "lib": {
            "images": {k: np.zeros((*s, 3), np.uint8) for k, s in SHAPES.items()},
            "scalefactors": {
                "tissue_hires_scalef": HIRES,
                "tissue_lowres_scalef": LOWRES,
                "spot_diameter_fullres": 90.0,
            },
            "metadata": {"source": "tables", "path": "x"},
        }
    }
    return a


def _label_image(key: str, dtype=np.uint8) -> np.ndarray:
    """Rectangles painted in the pixel grid of image ``key`` (pixel / scale = full-res)."""
    h, w = SHAPES[key]
    s = SCALES[key]
    rows, cols = np.mgrid[0:h, 0:w]
    fx, fy = cols / s, rows / s
    img = np.zeros((h, w), dtype=dtype)
    for label, (x0, x1, y0, y1) in RECTS.items():
        img[(fx >= x0) & (fx <= x1) & (fy >= y0) & (fy <= y1)] = label
    return img


def test_image_shapes():
    shapes = image_shapes(_slide())
    assert shapes == {"hires": ((200, 300), HIRES), "lowres": ((64, 96), LOWRES)}


# ------------------------------------------------------------------------------ tables
def test_csv_int_regions(tmp_path):
    p = tmp_path / "regions.csv"
    order = [2, 0, 3, 1]
    pd.DataFrame({"barcode": [BARCODES[i] for i in order], "region": [7, 3, 9, 5]}).to_csv(
        p, index=False
    )
    r = read_regions(p, _slide())
    assert r.dtype == np.int64
    np.testing.assert_array_equal(r, [3, 5, 7, 9])


def test_csv_string_regions(tmp_path):
    p = tmp_path / "regions.tsv"
    pd.DataFrame({"barcode": BARCODES[::-1], "region": ["white", "grey", "cortex", "001"]}).to_csv(
        p, index=False, sep="\t"
    )
    r = read_regions(p, _slide())
    assert r.dtype.kind == "U"
    assert list(r) == ["001", "cortex", "grey", "white"]


def test_csv_named_region_column(tmp_path):
    p = tmp_path / "regions.csv"
    pd.DataFrame(
        {"barcode": BARCODES, "score": [0.1, 0.2, 0.3, 0.4], "Region": ["a", "b", "a", "b"]}
    ).to_csv(p, index=False)
    assert list(read_regions(p, _slide())) == ["a", "b", "a", "b"]


def test_csv_missing_spots(tmp_path):
    p = tmp_path / "regions.csv"
    pd.DataFrame({"barcode": BARCODES[3:], "region": [1]}).to_csv(p, index=False)
    with pytest.raises(InputError, match="no region for 3 of 4 spots") as e:
        read_regions(p, _slide())
    assert all(b in str(e.value) for b in BARCODES[:3])


def test_csv_duplicated_barcodes(tmp_path):
    p = tmp_path / "regions.csv"
    pd.DataFrame({"barcode": [*BARCODES, BARCODES[1]], "region": [1, 2, 3, 4, 5]}).to_csv(
        p, index=False
    )
    with pytest.raises(InputError, match="more than once") as e:
        read_regions(p, _slide())
    assert BARCODES[1] in str(e.value)


def test_csv_one_column(tmp_path):
    # the delimiter sniffer splits this on a letter ("ba", "code"): must still be InputError
    p = tmp_path / "regions.csv"
    p.write_text("barcode\n" + "\n".join(BARCODES) + "\n")
    with pytest.raises(InputError, match="without a barcode and a region"):
        read_regions(p, _slide())


def test_csv_short_row(tmp_path):
    p = tmp_path / "regions.csv"
    p.write_text("barcode,region\n" + "".join(f"{b},1\n" for b in BARCODES[:3]) + "ACGT-1\n")
    with pytest.raises(InputError, match="without a barcode and a region"):
        read_regions(p, _slide())


@pytest.mark.parametrize("text", ["1\n2\n3\n", "spot\nA1\nB1\n"])
def test_csv_one_column_other_contents(tmp_path, text):
    p = tmp_path / "regions.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=r"regions file .*regions\.csv"):
        read_regions(p, _slide())


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_regions(tmp_path / "nope.csv", _slide())


# ------------------------------------------------------------------------ label images
def _write(path, img):
    if path.suffix == ".png":
        Image.fromarray(img).save(path)
    else:
        tifffile.imwrite(path, img)


@pytest.mark.parametrize("key", ["hires", "lowres"])
@pytest.mark.parametrize("suffix,dtype", [(".tif", np.uint16), (".png", np.uint8)])
def test_label_image(tmp_path, key, suffix, dtype):
    img = _label_image(key, dtype)
    assert set(np.unique(img)) == {0, 1, 2}
    p = tmp_path / f"labels{suffix}"
    _write(p, img)
    r = read_regions(p, _slide())
    assert r.dtype == np.int64
    np.testing.assert_array_equal(r, EXPECTED)


def test_label_image_uses_spot_centre_pixel(tmp_path):
    # one painted pixel exactly under spot 2's centre in hires (col 275, row 25)
    img = np.zeros(SHAPES["hires"], np.uint8)
    img[25, 275] = 4
    p = tmp_path / "labels.tif"
    tifffile.imwrite(p, img)
    np.testing.assert_array_equal(read_regions(p, _slide()), [0, 0, 4, 0])


def test_label_image_matching_no_image(tmp_path):
    p = tmp_path / "labels.tif"
    tifffile.imwrite(p, np.zeros((150, 100), np.uint8))
    with pytest.raises(InputError, match="150x100 px") as e:
        read_regions(p, _slide())
    msg = str(e.value)
    assert "hires 200x300" in msg and "lowres 64x96" in msg


def test_label_image_float_non_integer(tmp_path):
    p = tmp_path / "labels.tif"
    img = _label_image("hires").astype(np.float32)
    img[5, 5] = 1.5
    tifffile.imwrite(p, img)
    with pytest.raises(InputError, match="integer labels"):
        read_regions(p, _slide())


def test_label_image_float_whole_numbers(tmp_path):
    p = tmp_path / "labels.tif"
    tifffile.imwrite(p, _label_image("hires").astype(np.float32))
    np.testing.assert_array_equal(read_regions(p, _slide()), EXPECTED)


def test_label_image_negative(tmp_path):
    p = tmp_path / "labels.tif"
    img = _label_image("hires").astype(np.int16)
    img[0, 0] = -1
    tifffile.imwrite(p, img)
    with pytest.raises(InputError, match="negative"):
        read_regions(p, _slide())


def test_label_image_rgb_rejected(tmp_path):
    p = tmp_path / "labels.png"
    Image.fromarray(np.zeros((*SHAPES["hires"], 3), np.uint8)).save(p)
    with pytest.raises(InputError, match="2-D"):
        read_regions(p, _slide())


def test_label_image_unreadable(tmp_path):
    p = tmp_path / "labels.tif"
    p.write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="not readable"):
        read_regions(p, _slide())


@pytest.mark.parametrize(
    "top,dtype", [(3, np.uint8), (255, np.uint8), (300, np.uint16), (70000, np.uint32)]
)
def test_write_label_image_round_trip(tmp_path, top, dtype):
    labels = _label_image("hires", np.int64)
    labels[10, 10] = top
    p = write_label_image(tmp_path / "labels.tif", labels)
    back = tifffile.imread(p)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, labels)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["labels.tif"]
    np.testing.assert_array_equal(read_regions(p, _slide()), EXPECTED)
