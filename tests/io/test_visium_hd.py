"""Visium HD ``outs/`` folders: bins of each size, rebinning, segmented cells, errors, and
the CLI and napari reader on an HD folder."""

from __future__ import annotations

import contextlib
import json
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.spatial import read_spatial
from napari_stlnmf.io.visium import image_scale, library, spot_diameter
from napari_stlnmf.io.visium_hd import (
    BIN_SIZES,
    read_visium_hd,
    read_visium_hd_cells,
    visium_hd_kind,
)
from tests.io.hd_folder import HIRES, LOWRES, MPP, make_hd_outs


@pytest.fixture(scope="module")
def hd(tmp_path_factory):
    return make_hd_outs(tmp_path_factory.mktemp("hd"), segmented=True)


def expected(hd, size):
    """What a reader should return for ``size`` µm bins, in matrix order."""
    g = hd.grids[size]
    pos = g.positions.iloc[g.in_tissue_rows]
    return pos, g.counts[g.in_tissue_rows]


# ----------------------------------------------------------------------------- bins
@pytest.mark.parametrize("size", BIN_SIZES)
def test_each_bin_size_reads_in_tissue_bins_in_the_visium_form(hd, size):
    a = read_visium_hd(hd.outs, bin_size=size)
    pos, counts = expected(hd, size)
    assert list(a.obs_names) == list(pos.barcode)
    assert a.obs_names[0].startswith(f"s_{size:03d}um_")
    assert a.X.format == "csr" and a.X.dtype == np.int32  # as stored, as read_visium
    np.testing.assert_array_equal(a.X.toarray(), counts)
    assert (a.obs["in_tissue"] == 1).all()
    for c in ("array_row", "array_col"):
        assert a.obs[c].dtype == np.int64
        np.testing.assert_array_equal(a.obs[c], pos[c])
    xy = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy()
    np.testing.assert_allclose(a.obsm["spatial"], xy)
    assert list(a.var_names) == ["Actb", "Gapdh", "Actb-1", "Sox2", "Mbp", "Gfap"]
    assert list(a.var["gene_symbols"]) == ["Actb", "Gapdh", "Actb", "Sox2", "Mbp", "Gfap"]
    lib_id, lib = library(a)
    assert lib_id == "hdsample"
    assert {k: v.shape for k, v in lib["images"].items()} == {
        "hires": (130, 150, 3),
        "lowres": (26, 30, 3),
    }
    sf = lib["scalefactors"]
    assert sf["bin_size_um"] == size and sf["microns_per_pixel"] == MPP
    assert image_scale(a, "hires") == HIRES and image_scale(a, "lowres") == LOWRES
    assert spot_diameter(a) == size / MPP
    assert a.uns["stlnmf_hd"] == {"kind": "bins", "bin_size_um": size, "microns_per_pixel": MPP}


def test_default_is_8um_and_bins_tile_the_grid_as_squares(hd):
    a = read_visium_hd(hd.outs)
    assert a.uns["stlnmf_hd"]["bin_size_um"] == 8
    # Neighbouring bins sit one bin width (bin_size_um / microns_per_pixel px) apart.
    side = a.uns["stlnmf_hd"]["bin_size_um"] / a.uns["stlnmf_hd"]["microns_per_pixel"]
    df = pd.DataFrame(a.obsm["spatial"], columns=["x", "y"]).assign(
        r=a.obs["array_row"].to_numpy(), c=a.obs["array_col"].to_numpy()
    )
    np.testing.assert_allclose(df.x - side * df.c, (df.x - side * df.c).iloc[0])
    np.testing.assert_allclose(df.y - side * df.r, (df.y - side * df.r).iloc[0])


def test_off_tissue_bins_of_the_matrix_are_dropped_unless_asked(hd):
    kept = read_visium_hd(hd.outs, in_tissue_only=False)
    inside = read_visium_hd(hd.outs)
    assert kept.n_obs == inside.n_obs + 2
    assert (kept.obs["in_tissue"] == 0).sum() == 2
    assert set(inside.obs_names) < set(kept.obs_names)


@pytest.mark.parametrize(
    "where, kw, size",
    [
        (lambda o: o.parent, {}, 8),  # the folder holding outs/
        (lambda o: o / "binned_outputs", {"bin_size": 16}, 16),
        (lambda o: o / "binned_outputs" / "square_016um", {}, 16),  # a bin folder: its size
        (lambda o: o / "binned_outputs" / "square_016um", {"bin_size": 2}, 2),  # a sibling
    ],
)
def test_accepts_outs_its_parent_binned_outputs_or_a_bin_folder(hd, where, kw, size):
    a = read_visium_hd(where(hd.outs), **kw)
    assert a.uns["stlnmf_hd"]["bin_size_um"] == size
    assert a.n_obs == len(hd.grids[size].in_tissue_rows)
    assert library(a)[0] == "hdsample"


def test_images_found_in_the_bin_folder_when_outs_spatial_has_none(tmp_path):
    f = make_hd_outs(tmp_path, sizes=(8,), images_in="bins")
    for png in (f.outs / "spatial").glob("*.png"):
        png.unlink()
    a = read_visium_hd(f.outs)
    assert set(library(a)[1]["images"]) == {"hires", "lowres"}
    b = read_visium_hd(f.outs, load_images=())
    assert library(b)[1]["images"] == {}


# ------------------------------------------------------------------------- rebinning
@pytest.mark.parametrize("size", [8, 16])
def test_rebinning_2um_bins_equals_space_rangers_folder_exactly(hd, size):
    ref = read_visium_hd(hd.outs, bin_size=size)
    re = read_visium_hd(hd.outs, rebin_um=size)
    assert sorted(re.obs_names) == sorted(ref.obs_names)
    re = re[ref.obs_names]
    assert re.X.dtype == ref.X.dtype
    np.testing.assert_array_equal(re.X.toarray(), ref.X.toarray())
    pd.testing.assert_frame_equal(re.obs, ref.obs)
    np.testing.assert_allclose(re.obsm["spatial"], ref.obsm["spatial"])
    assert library(re)[1]["scalefactors"]["spot_diameter_fullres"] == size / MPP
    assert re.uns["stlnmf_hd"] == ref.uns["stlnmf_hd"]


def test_rebinning_to_24um_sums_3x3_squares_of_8um(hd):
    a = read_visium_hd(hd.outs, rebin_um=24)
    fine = read_visium_hd(hd.outs, bin_size=2)
    k = 12  # 2 um bins per side of a 24 um square
    block = (
        (fine.obs["array_row"] // k).astype(str) + "_" + (fine.obs["array_col"] // k).astype(str)
    )
    sums = pd.DataFrame(fine.X.toarray(), index=block.to_numpy()).groupby(level=0).sum()
    keys = a.obs["array_row"].astype(str) + "_" + a.obs["array_col"].astype(str)
    np.testing.assert_array_equal(a.X.toarray(), sums.loc[keys.to_numpy()].to_numpy())
    assert a.X.sum() == fine.X.sum()
    row, col = a.obs["array_row"].iloc[0], a.obs["array_col"].iloc[0]
    assert a.obs_names[0] == f"s_024um_{row:05d}_{col:05d}-1"
    # centres: the middle of each full 12 x 12 block of 4 px bins from the grid's corner
    full = (a.obs["array_row"] < 3) & (a.obs["array_col"] < 3)
    x = 100 + 48 * (a.obs["array_col"][full] + 0.5)
    y = 60 + 48 * (a.obs["array_row"][full] + 0.5)
    np.testing.assert_allclose(a.obsm["spatial"][full.to_numpy()], np.column_stack([x, y]))
    assert spot_diameter(a) == 24 / MPP
    assert a.uns["stlnmf_hd"]["bin_size_um"] == 24


# ----------------------------------------------------------------------------- cells
def test_segmented_cells_give_polygon_centroids_and_areas(hd):
    c = hd.cells
    for path in (hd.outs, hd.outs.parent, c.folder):
        a = read_visium_hd_cells(path)
        assert list(a.obs_names) == c.barcodes
        np.testing.assert_array_equal(a.X.toarray(), c.counts)
        np.testing.assert_allclose(a.obsm["spatial"], c.xy)
        np.testing.assert_allclose(a.obs["area_px"], c.area)
        np.testing.assert_allclose(a.obs["area_um2"], c.area * MPP**2)
        assert list(a.obs["cell_id"]) == c.ids
        assert library(a)[0] == "hdsample"
        assert a.uns["stlnmf_hd"] == {"kind": "cells", "microns_per_pixel": MPP}
        diameter = np.median(2 * np.sqrt(c.area / np.pi))
        assert spot_diameter(a) == pytest.approx(diameter)


def test_graphclust_annotated_geojson_is_used_when_the_plain_one_is_absent(tmp_path):
    f = make_hd_outs(tmp_path, sizes=(8,), segmented=True)
    seg = f.cells.folder
    (seg / "cell_segmentations.geojson").rename(
        seg / "graphclust_annotated_cell_segmentations.geojson"
    )
    a = read_visium_hd_cells(f.outs)
    np.testing.assert_allclose(a.obsm["spatial"], f.cells.xy)


# ---------------------------------------------------------------------------- errors
@pytest.fixture
def hd_copy(hd, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(hd.outs.parent, root)
    return root / "outs"


def test_missing_bin_folder_names_the_ones_found(tmp_path):
    f = make_hd_outs(tmp_path, sizes=(2, 8))
    with pytest.raises(InputError, match="square_016um.*found square_002um, square_008um"):
        read_visium_hd(f.outs, bin_size=16)


def test_rebin_without_2um_bins_names_the_folder(tmp_path):
    f = make_hd_outs(tmp_path, sizes=(8, 16))
    with pytest.raises(InputError, match="binned_outputs: no square_002um"):
        read_visium_hd(f.outs, rebin_um=24)


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"rebin_um": 5}, "multiple of 2"),
        ({"rebin_um": 0}, "multiple of 2"),
        ({"rebin_um": 7.5}, "whole number"),
        ({"bin_size": 4}, "unknown bin size 4"),
    ],
)
def test_bad_sizes_are_input_errors_naming_the_folder(hd, kw, needle):
    with pytest.raises(InputError, match=needle) as e:
        read_visium_hd(hd.outs, **kw)
    assert str(hd.outs) in str(e.value)


def test_missing_parquet_names_the_file(hd_copy):
    spatial = hd_copy / "binned_outputs" / "square_008um" / "spatial"
    (spatial / "tissue_positions.parquet").unlink()
    with pytest.raises(InputError, match="tissue_positions.parquet") as e:
        read_visium_hd(hd_copy)
    assert str(spatial) in str(e.value)


def test_parquet_without_a_column_or_corrupt_names_the_file(hd_copy):
    file = hd_copy / "binned_outputs" / "square_008um" / "spatial" / "tissue_positions.parquet"
    table = pq.read_table(file)
    pq.write_table(table.drop_columns(["array_col"]), file)
    with pytest.raises(InputError, match=r"tissue_positions.parquet: missing columns array_col"):
        read_visium_hd(hd_copy)
    file.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"tissue_positions.parquet: cannot read parquet"):
        read_visium_hd(hd_copy)


def test_matrix_barcodes_without_position_and_duplicated_bins_are_named(hd_copy):
    file = hd_copy / "binned_outputs" / "square_008um" / "spatial" / "tissue_positions.parquet"
    df = pq.read_table(file).to_pandas()
    first = df.barcode[df.in_tissue == 1].iloc[0]  # in the matrix
    gone = df[df.barcode != first]
    pq.write_table(pa.Table.from_pandas(gone, preserve_index=False), file)
    with pytest.raises(InputError, match=f"1 of .* matrix barcodes have no position, e.g. {first}"):
        read_visium_hd(hd_copy, in_tissue_only=False)
    dup = pd.concat([df, df.iloc[:1]])
    pq.write_table(pa.Table.from_pandas(dup, preserve_index=False), file)
    needle = f"1 grid positions hold more than one bin .* array_row {df.array_row.iloc[0]}, "
    with pytest.raises(InputError, match=needle + f"array_col {df.array_col.iloc[0]}"):
        read_visium_hd(hd_copy)


def test_scalefactors_for_another_bin_size_are_refused(hd_copy):
    file = hd_copy / "binned_outputs" / "square_008um" / "spatial" / "scalefactors_json.json"
    sf = json.loads(file.read_text())
    sf["bin_size_um"] = 16.0
    file.write_text(json.dumps(sf))
    with pytest.raises(InputError, match="scalefactors_json.json: bin_size_um is 16.0"):
        read_visium_hd(hd_copy)


def test_cells_errors_name_the_file(hd_copy, tmp_path):
    seg = hd_copy / "segmented_outputs"
    geojson = seg / "cell_segmentations.geojson"
    doc = json.loads(geojson.read_text())
    doc["features"] = [f for f in doc["features"] if f["properties"]["cell_id"] != 12]
    geojson.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="cell_segmentations.geojson: 1 of 5 cells .* no polygon"):
        read_visium_hd_cells(hd_copy)
    geojson.write_text("{not json")
    with pytest.raises(InputError, match="cell_segmentations.geojson: invalid GeoJSON"):
        read_visium_hd_cells(hd_copy)
    geojson.unlink()
    with pytest.raises(InputError, match="no cell polygons"):
        read_visium_hd_cells(hd_copy)
    plain = make_hd_outs(tmp_path / "plain", sizes=(8,))
    with pytest.raises(InputError, match="no segmented_outputs/ folder"):
        read_visium_hd_cells(plain.outs)


# ------------------------------------------------------------------- read_spatial routing
def test_read_spatial_routes_hd_folders_and_refuses_bin_options_elsewhere(hd, tmp_path):
    assert visium_hd_kind(hd.outs) == "bins"
    assert visium_hd_kind(hd.outs.parent) == "bins"
    assert visium_hd_kind(hd.outs / "binned_outputs" / "square_002um") == "bins"
    assert visium_hd_kind(hd.outs / "segmented_outputs") == "cells"
    assert visium_hd_kind(tmp_path) is None
    assert visium_hd_kind(tmp_path / "nothing") is None
    a = read_spatial(hd.outs, bin_size=16)
    assert a.uns["stlnmf_hd"]["bin_size_um"] == 16
    assert read_spatial(hd.outs, rebin_um=32).uns["stlnmf_hd"]["bin_size_um"] == 32
    assert read_spatial(hd.outs, bin_size=None).uns["stlnmf_hd"]["bin_size_um"] == 8
    assert read_spatial(hd.outs / "segmented_outputs").uns["stlnmf_hd"]["kind"] == "cells"

    from tests.io.visium_fixtures import make_outs

    visium = make_outs(tmp_path)
    assert "stlnmf_hd" not in read_spatial(visium.outs).uns
    with pytest.raises(InputError, match="not the bins of a Visium HD .* bin_size do not apply"):
        read_spatial(visium.outs, bin_size=8)


def test_h5ad_round_trip_keeps_the_hd_metadata(hd, tmp_path):
    a = read_visium_hd(hd.outs, rebin_um=16)
    a.write_h5ad(tmp_path / "hd.h5ad")
    b = ad.read_h5ad(tmp_path / "hd.h5ad")
    assert b.uns["stlnmf_hd"]["bin_size_um"] == 16
    np.testing.assert_array_equal(b.X.toarray(), a.X.toarray())


# ------------------------------------------------------------------ CLI and napari reader
N_GENES, TYPES = 30, ("Astro", "Neuron", "Oligo")


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory):
    """An HD folder whose 2 um bins mix three types by column, and their reference."""
    root = tmp_path_factory.mktemp("hdcli")
    rng = np.random.default_rng(1)
    genes = [f"Gene{i:02d}" for i in range(N_GENES)]
    profiles = np.full((len(TYPES), N_GENES), 0.3)
    for t in range(len(TYPES)):
        profiles[t, 10 * t : 10 * t + 10] = 5.0
    cells = np.repeat(np.arange(len(TYPES)), 20)
    ref = ad.AnnData(
        X=rng.poisson(profiles[cells]).astype(np.float32),
        obs=pd.DataFrame(
            {"cell_type": np.asarray(TYPES)[cells]}, index=[f"c{i}" for i in range(len(cells))]
        ),
        var=pd.DataFrame(index=genes),
    )
    ref.write_h5ad(root / "ref.h5ad")
    n = 40
    col = np.tile(np.arange(n), n)
    weights = np.stack([col < 14, (col >= 14) & (col < 27), col >= 27], axis=1).astype(float)
    counts_2um = rng.poisson(weights @ profiles / 8)
    hd = make_hd_outs(root, counts_2um=counts_2um, gene_ids=genes, gene_names=genes, n=n)
    return hd, root / "ref.h5ad"


@pytest.mark.parametrize(
    "extra, size", [([], 8), (["--bin-size", "16"], 16), (["--rebin-um", "24"], 24)]
)
def test_cli_deconvolves_an_hd_folder(cli_inputs, tmp_path, capsys, extra, size):
    from napari_stlnmf.cli import main

    hd, ref = cli_inputs
    out = tmp_path / "out"
    argv = ["deconvolve", "--spatial", hd.outs, "--reference", ref, "--label-key", "cell_type"]
    argv += ["--method", "plainkl", "--no-figure", "-q", "--out", out, *extra]
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 0, err
    table = pd.read_csv(out / "proportions.csv")
    slide = read_visium_hd(hd.outs, **({"rebin_um": 24} if size == 24 else {"bin_size": size}))
    assert list(table.barcode) == list(slide.obs_names)
    np.testing.assert_allclose(table[["x", "y"]], slide.obsm["spatial"], atol=1e-6)
    np.testing.assert_allclose(table[list(TYPES)].sum(1), 1.0, atol=1e-5)
    if size == 8:  # the left columns are Astro, the right ones Oligo
        left = table.x < table.x.quantile(0.2)
        right = table.x > table.x.quantile(0.8)
        assert (table.loc[left, "Astro"] > 0.6).all() and (table.loc[right, "Oligo"] > 0.6).all()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--rebin-um", "5"], "multiple of 2"),
        (["--bin-size", "4"], "invalid choice"),
        (["--bin-size", "8", "--rebin-um", "24"], "not allowed with"),
    ],
)
def test_cli_bad_bin_options_exit_2_with_one_line(cli_inputs, tmp_path, capsys, extra, needle):
    from napari_stlnmf.cli import main

    hd, ref = cli_inputs
    argv = ["deconvolve", "--spatial", hd.outs, "--reference", ref, "--out", tmp_path / "o"]
    # argparse refuses --bin-size values itself (SystemExit 2); the reader refuses the rest
    with pytest.raises(SystemExit) if "--bin-size" in extra else contextlib.nullcontext():
        code = main([str(a) for a in [*argv, "-q", *extra]])
        assert code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("stlnmf")]
    assert len(lines) == 1 and needle in lines[0], err


def test_cli_bin_sizes_are_the_readers():
    from napari_stlnmf._cli_args import HD_BIN_SIZES

    assert HD_BIN_SIZES == BIN_SIZES


def test_napari_reader_opens_hd_folders(hd):
    from napari_stlnmf._reader import get_reader, read_slide

    for path in (hd.outs, hd.outs.parent, hd.outs / "segmented_outputs"):
        assert get_reader(str(path)) is read_slide
    layers = read_slide(str(hd.outs))
    # bins are drawn as the squares they are: a raster on the bin grid over the H&E
    # (tests/gui/test_hd_bins.py checks it pixel by pixel)
    assert [kind for _, _, kind in layers] == ["image", "image"]
    bins = layers[1][1]["metadata"]["stlnmf"]["adata"]
    assert bins.n_obs == len(hd.grids[8].in_tissue_rows)
    cells = read_slide(str(hd.outs / "segmented_outputs"))
    assert len(cells[-1][0]) == len(hd.cells.ids)


def test_napari_viewer_open_reads_an_hd_folder(hd, make_napari_viewer):
    from napari.layers import Image

    viewer = make_napari_viewer()
    layers = viewer.open(str(hd.outs), plugin="napari-stlnmf")
    assert [type(ly) for ly in layers] == [Image, Image]
    assert layers[1].metadata["stlnmf"]["adata"].n_obs == len(hd.grids[8].in_tissue_rows)
