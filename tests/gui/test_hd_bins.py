"""Visium HD bins drawn as squares on their own grid (gui/bins.py): the spots raster, the
result rasters, painted regions and the napari reader, in a real viewer (run under Xvfb)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from napari.layers import Image, Labels

from napari_stlnmf.gui.bins import bin_grid, fit_grid, is_bins
from napari_stlnmf.gui.layers import slide_layers
from napari_stlnmf.gui.meta import Role, is_spots, meta_of
from napari_stlnmf.gui.regions import add_regions_layer, sync_regions, world_to_label_pixels
from napari_stlnmf.gui.results import result_layers, set_raster_type, show_results
from napari_stlnmf.io.visium_hd import read_visium_hd
from tests.io.hd_folder import make_hd_outs

MPP = 0.5  # microns per full-resolution pixel
BIN_UM = 8.0  # a bin is 16 full-resolution px
TYPES = ["A", "B", "C"]


def hd_adata(n: int = 24, angle_deg: float = 0.0, seed: int = 0) -> ad.AnnData:
    """Bins of an ``n x n`` grid (a disc of tissue), rotated by ``angle_deg`` against the
    image, in shuffled order, in the form of :func:`read_visium_hd`."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:n, 0:n]
    tissue = (r - 0.45 * n) ** 2 + (c - 0.55 * n) ** 2 < (0.4 * n) ** 2
    order = rng.permutation(int(tissue.sum()))
    rows, cols = r[tissue][order] + 3, c[tissue][order] + 5  # the grid need not start at 0
    s, th = BIN_UM / MPP, np.deg2rad(angle_deg)
    x = 40.0 + s * (np.cos(th) * cols - np.sin(th) * rows)
    y = 30.0 + s * (np.sin(th) * cols + np.cos(th) * rows)
    m = len(rows)
    genes = [f"G{i}" for i in range(5)]
    adata = ad.AnnData(
        X=sp.csr_matrix(rng.poisson(3.0, size=(m, len(genes))).astype(np.float32)),
        obs=pd.DataFrame(
            {"in_tissue": np.ones(m, np.int64), "array_row": rows, "array_col": cols},
            index=[f"s_008um_{a:05d}_{b:05d}-1" for a, b in zip(rows, cols)],
        ),
        var=pd.DataFrame({"gene_symbols": genes}, index=genes),
    )
    adata.obsm["spatial"] = np.column_stack([x, y])
    side = int(s * (n + 10))
    adata.uns["spatial"] = {
        "hd": {
            "images": {"hires": np.full((side // 2, side // 2, 3), 230, np.uint8)},
            "scalefactors": {
                "tissue_hires_scalef": 0.5,
                "tissue_lowres_scalef": 0.1,
                "spot_diameter_fullres": s,
                "bin_size_um": BIN_UM,
                "microns_per_pixel": MPP,
            },
            "metadata": {},
        }
    }
    adata.uns["stlnmf_hd"] = {"kind": "bins", "bin_size_um": BIN_UM, "microns_per_pixel": MPP}
    return adata


def proportions(adata, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xy = adata.obsm["spatial"]
    table = pd.DataFrame({"barcode": adata.obs_names, "x": xy[:, 0], "y": xy[:, 1], "region": 0})
    props = rng.dirichlet(np.ones(len(TYPES)), size=adata.n_obs)
    for j, t in enumerate(TYPES):
        table[t] = props[:, j]
    return table


def open_slide(viewer, adata):
    """Add the slide's layers; returns (image layer, spots layer)."""
    layers = [getattr(viewer, f"add_{k}")(d, **kw) for d, kw, k in slide_layers(adata)]
    return layers[0], layers[-1]


def bin_pixels(layer, adata) -> tuple[np.ndarray, np.ndarray]:
    """Raster pixel under each bin centre, through the layer's own world -> data transform."""
    rows, cols = world_to_label_pixels(layer, adata.obsm["spatial"])
    # the centre sits on the pixel centre itself, not near an edge
    np.testing.assert_allclose(rows, np.rint(rows), atol=1e-6)
    np.testing.assert_allclose(cols, np.rint(cols), atol=1e-6)
    return np.rint(rows).astype(int), np.rint(cols).astype(int)


def off_tissue(shape, rows, cols) -> np.ndarray:
    mask = np.ones(shape, bool)
    mask[rows, cols] = False
    return mask


def test_fit_recovers_a_rotated_grid_and_keeps_aligned_ones_plain():
    adata = hd_adata(angle_deg=0.8)
    grid = bin_grid(adata)
    np.testing.assert_allclose(grid.bin_px, BIN_UM / MPP)
    obs = adata.obs
    rows = obs.array_row.to_numpy() - obs.array_row.min()
    cols = obs.array_col.to_numpy() - obs.array_col.min()
    assert (grid.rows == rows).all() and (grid.cols == cols).all()
    xy = adata.obsm["spatial"]
    np.testing.assert_allclose(grid.world(rows, cols), xy[:, ::-1], atol=1e-6)
    assert not grid.aligned and not np.allclose(grid.placement()["affine"], np.eye(3))
    plain = bin_grid(hd_adata())
    assert plain.aligned
    place = plain.placement()
    np.testing.assert_allclose(place["scale"], (16.0, 16.0))
    np.testing.assert_allclose(place["affine"], np.eye(3))
    # a flipped axis (array_col growing to the left) needs the affine
    flipped = fit_grid(rows, -cols, xy)
    np.testing.assert_allclose(flipped.world(flipped.rows, flipped.cols), xy[:, ::-1], atol=1e-6)
    assert not flipped.aligned


@pytest.mark.parametrize("angle", [0.0, 0.8])
def test_spots_layer_is_the_bin_grid(make_napari_viewer, angle):
    viewer = make_napari_viewer()
    adata = hd_adata(angle_deg=angle)
    _, spots = open_slide(viewer, adata)
    assert isinstance(spots, Image) and is_spots(spots)
    assert spots.interpolation2d == "nearest"
    m = meta_of(spots)
    assert m["adata"] is adata and m["pitch"] == pytest.approx(16.0)
    assert list(m["features"].barcode) == list(adata.obs_names)
    # one raster pixel per grid position of the bins' bounding box
    span = [int(np.ptp(adata.obs[a])) + 1 for a in ("array_row", "array_col")]
    assert spots.data.shape == tuple(span)
    rows, cols = bin_pixels(spots, adata)
    totals = np.asarray(adata.X.sum(1)).ravel().astype(np.float64)
    np.testing.assert_array_equal(spots.data[rows, cols], np.log1p(totals).astype(np.float32))
    assert np.isnan(spots.data[off_tissue(spots.data.shape, rows, cols)]).all()
    # napari's own single-point transform agrees with the vectorised one
    i = 17
    got = np.rint(spots.world_to_data(adata.obsm["spatial"][i, ::-1])).astype(int)
    assert tuple(got) == (rows[i], cols[i])


def test_results_raster_exact_transparent_and_switching(make_napari_viewer):
    viewer = make_napari_viewer()
    adata = hd_adata(angle_deg=0.8)
    _, spots = open_slide(viewer, adata)
    table = proportions(adata)
    shuffled = table.sample(frac=1.0, random_state=2).reset_index(drop=True)
    # below LARGE_SLIDE_SPOTS, bins still get the raster path
    image, dominant = show_results(viewer, shuffled, TYPES, slide=spots.name)
    assert isinstance(image, Image) and isinstance(dominant, Labels)
    assert meta_of(image)["role"] == Role.RASTER and image.interpolation2d == "nearest"
    assert not spots.visible
    np.testing.assert_allclose(image.affine.affine_matrix, spots.affine.affine_matrix)
    np.testing.assert_allclose(dominant.affine.affine_matrix, spots.affine.affine_matrix)
    rows, cols = bin_pixels(image, adata)
    empty = off_tissue(image.data.shape, rows, cols)
    for t in ("B", "C", "A"):
        set_raster_type(image, t)
        assert image.name == f"{t} (proportion)"
        np.testing.assert_array_equal(image.data[rows, cols], table[t].to_numpy(np.float32))
        assert np.isnan(image.data[empty]).all()
    codes = table[TYPES].to_numpy().argmax(1) + 1
    np.testing.assert_array_equal(dominant.data[rows, cols], codes)
    assert (dominant.data[empty] == 0).all()
    assert dominant.colormap.map(0)[..., 3] == 0  # off-tissue pixels draw nothing
    # a re-run updates the same two layers in place
    again = show_results(viewer, table, TYPES, slide=spots.name)
    assert again[0] is image and again[1] is dominant
    assert len(result_layers(viewer, spots.name)) == 2
    # a result for some of the bins only (e.g. empty bins dropped): the others stay empty
    show_results(viewer, table.iloc[::2], TYPES, slide=spots.name)
    assert image.data.shape == empty.shape
    np.testing.assert_array_equal(image.data[rows[::2], cols[::2]], table.A[::2].astype("f4"))
    assert np.isnan(image.data[rows[1::2], cols[1::2]]).all()


def test_regions_painted_on_the_image_map_onto_bins(make_napari_viewer, tmp_path):
    hd = make_hd_outs(tmp_path)
    adata = read_visium_hd(hd.outs, bin_size=2)
    viewer = make_napari_viewer()
    image, spots = open_slide(viewer, adata)
    labels = add_regions_layer(viewer, spots, image)
    assert labels.data.shape == image.data.shape[:2]
    r0, r1, c0, c1 = 60, 80, 70, 100  # a painted rectangle, label pixels
    paint = np.zeros_like(labels.data)
    paint[r0:r1, c0:c1] = 3
    labels.data = paint
    regions = sync_regions(labels, spots)
    # expected from the geometry alone: label pixel (i, j) covers world
    # [scale * (i - 0.5), scale * (i + 0.5)) on each axis (scale 2, no translate)
    xy = adata.obsm["spatial"]
    scale = float(labels.scale[-1])
    row, col = xy[:, 1] / scale, xy[:, 0] / scale
    inside = (row >= r0 - 0.5) & (row < r1 - 0.5) & (col >= c0 - 0.5) & (col < c1 - 0.5)
    assert 10 < inside.sum() < len(inside)
    np.testing.assert_array_equal(regions, np.where(inside, 3, 0))
    np.testing.assert_array_equal(meta_of(spots)["features"]["region"], regions)


def test_regions_of_a_rotated_grid_through_an_affine_labels_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    adata = hd_adata(angle_deg=0.8)
    _, spots = open_slide(viewer, adata)
    th = np.deg2rad(5.0)
    affine = np.array([[np.cos(th), -np.sin(th), 7.0], [np.sin(th), np.cos(th), -3.0], [0, 0, 1]])
    paint = np.zeros((200, 200), np.int32)
    paint[40:120, 30:90] = 2
    labels = viewer.add_labels(paint, scale=(3.0, 3.0), affine=affine)
    rows, cols = world_to_label_pixels(labels, adata.obsm["spatial"])
    for i in (0, 33, 101):
        np.testing.assert_allclose(
            (rows[i], cols[i]), labels.world_to_data(adata.obsm["spatial"][i, ::-1]), atol=1e-9
        )
    from napari_stlnmf.gui.regions import spot_regions

    got = spot_regions(labels, spots)
    inside = (rows > 40) & (rows < 118.5) & (cols > 30) & (cols < 88.5)
    outside = (rows < 38.5) | (rows > 120) | (cols < 28.5) | (cols > 90)
    assert inside.sum() > 10 and outside.sum() > 10
    assert (got[inside] == 2).all() and (got[outside] == 0).all()


def test_napari_reader_opens_hd_bins_as_the_grid_raster(make_napari_viewer, tmp_path):
    hd = make_hd_outs(tmp_path)
    viewer = make_napari_viewer()
    layers = viewer.open(str(hd.outs), plugin="napari-stlnmf")
    spots = [ly for ly in layers if is_spots(ly)]
    assert len(spots) == 1 and isinstance(spots[0], Image)
    spots = spots[0]
    adata = meta_of(spots)["adata"]
    assert is_bins(adata) and adata.uns["stlnmf_hd"]["bin_size_um"] == 8.0
    np.testing.assert_allclose(spots.scale, (16.0, 16.0))  # 8 um bins at 0.5 um / px
    rows, cols = bin_pixels(spots, adata)
    assert len(set(zip(rows, cols))) == adata.n_obs  # one pixel per bin
    totals = np.asarray(adata.X.sum(1)).ravel().astype(np.float64)
    np.testing.assert_allclose(spots.data[rows, cols], np.log1p(totals), rtol=1e-6)
    assert np.isnan(spots.data[off_tissue(spots.data.shape, rows, cols)]).all()
    # the H&E lies under the bins: the hires image covers the same world
    image = next(ly for ly in layers if not is_spots(ly))
    assert image.rgb
    np.testing.assert_allclose(image.scale, (2.0, 2.0))
