"""SpatialData zarr stores: a slide in, the proportions back as a linked table.

Runs where the optional ``spatialdata`` extra is installed (CI installs it). The stores
are made here from the bundled mouse_brain sample: Visium spots as circles in
full-resolution pixels, the hires H&E as an image scaled into the same coordinate system,
and a counts table annotating the circles, as spatialdata-io writes a Visium slide.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.cli import main
from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.samples import load_sample
from napari_stlnmf.io.spatial import read_spatial
from napari_stlnmf.io.spatialdata_zarr import INSTANCE_COLUMN, TABLE_NAME, is_spatialdata_store
from napari_stlnmf.io.visium import library
from tests.extras import optional

sd = optional("spatialdata")

TINY = ["--epochs", "2", "--layers", "8"]


def make_store(path, translate: float = 0.0):
    """The sample as a SpatialData store; ``translate`` shifts the image in the global
    coordinate system (then positions are read in the image's pixels)."""
    import anndata as ad
    import geopandas as gpd
    from shapely.geometry import Point
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity, Scale, Sequence, Translation

    sample = load_sample("mouse_brain")
    a = sample.spatial
    lib = library(a)[1]
    s = lib["scalefactors"]["tissue_hires_scalef"]
    radius = lib["scalefactors"]["spot_diameter_fullres"] / 2
    xy = a.obsm["spatial"]
    ids = np.arange(10, 10 + a.n_obs)[::-1]  # instance ids unrelated to row order
    shapes = gpd.GeoDataFrame(
        {"geometry": [Point(x, y) for x, y in xy], "radius": radius}, index=ids
    )
    shapes = ShapesModel.parse(shapes, transformations={"global": Identity()})
    img = np.moveaxis(np.asarray(lib["images"]["hires"]), 2, 0)
    to_global = Scale([1 / s, 1 / s], axes=("y", "x"))
    if translate:
        to_global = Sequence([to_global, Translation([translate, 0], axes=("x", "y"))])
    image = Image2DModel.parse(img, dims=("c", "y", "x"), transformations={"global": to_global})
    table = ad.AnnData(
        X=sp.csr_matrix(a.X),
        obs=pd.DataFrame({"region": "spots", "spot_id": ids}, index=a.obs_names),
        var=pd.DataFrame(index=a.var_names),
    )
    table.obs["region"] = table.obs["region"].astype("category")
    table = TableModel.parse(table, region="spots", region_key="region", instance_key="spot_id")
    sdata = sd.SpatialData(
        images={"sample_hires_image": image}, shapes={"spots": shapes}, tables={"table": table}
    )
    sdata.write(path)
    return sample, s


def test_a_store_reads_as_the_slide(tmp_path):
    store = tmp_path / "slide.zarr"
    sample, s = make_store(store)
    assert is_spatialdata_store(store) and not is_spatialdata_store(tmp_path)
    a = read_spatial(store)
    ref = sample.spatial
    assert list(a.obs_names) == list(ref.obs_names)
    np.testing.assert_array_equal(a.X.toarray(), sp.csr_matrix(ref.X).toarray())
    np.testing.assert_allclose(a.obsm["spatial"], ref.obsm["spatial"])
    lib = library(a)[1]
    assert lib["scalefactors"]["tissue_hires_scalef"] == pytest.approx(s)
    assert lib["images"]["hires"].shape == library(ref)[1]["images"]["hires"].shape
    np.testing.assert_array_equal(lib["images"]["hires"], library(ref)[1]["images"]["hires"])
    assert list(a.obs[INSTANCE_COLUMN][:2]) == [10 + ref.n_obs - 1, 10 + ref.n_obs - 2]
    assert lib["metadata"]["shapes"] == "spots" and lib["metadata"]["table"] == "table"


def test_a_shifted_image_puts_the_spots_in_its_pixels(tmp_path):
    store = tmp_path / "slide.zarr"
    sample, s = make_store(store, translate=100.0)
    a = read_spatial(store)
    lib = library(a)[1]
    assert lib["scalefactors"]["tissue_hires_scalef"] == 1.0
    expected = (sample.spatial.obsm["spatial"] - [100.0, 0.0]) * s
    np.testing.assert_allclose(a.obsm["spatial"], expected, rtol=1e-9, atol=1e-6)


def test_deconvolve_writes_a_table_linked_to_the_shapes(tmp_path, capsys):
    store = tmp_path / "slide.zarr"
    sample, _ = make_store(store)
    ref = tmp_path / "ref.h5ad"
    sample.reference.write_h5ad(ref)
    out = tmp_path / "out"
    argv = ["deconvolve", "--spatial", store, "--reference", ref, "--label-key", "cell_type"]
    argv += ["--out", out, "--save-model", tmp_path / "m.safetensors", *TINY]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert f"wrote table {TABLE_NAME} into" in capsys.readouterr().err
    props = pd.read_csv(out / "proportions.csv", dtype={"barcode": str}).set_index("barcode")
    types = [c for c in props.columns if c not in ("x", "y", "region")]

    sdata = sd.read_zarr(store)
    assert set(sdata.tables) == {"table", TABLE_NAME}
    t = sdata.tables[TABLE_NAME]
    attrs = t.uns["spatialdata_attrs"]
    assert attrs["region"] == "spots" and attrs["instance_key"] == "spot_id"
    assert list(t.var_names) == types
    np.testing.assert_allclose(t.X, props.loc[t.obs_names, types].to_numpy(), rtol=1e-5)
    # what napari-spatialdata does to colour the circles by a type: values per shape
    for cell_type in types[:3]:
        v = sd.get_values(
            value_key=cell_type, sdata=sdata, element_name="spots", table_name=TABLE_NAME
        )
        assert v.index.equals(sdata.shapes["spots"].index)
        by_id = dict(zip(t.obs["spot_id"], props.loc[t.obs_names, cell_type]))
        np.testing.assert_allclose(v[cell_type].to_numpy(), [by_id[i] for i in v.index], rtol=1e-5)
    assert json.loads(t.uns["stlnmf"])["cell_types"] == types
    q05 = pd.read_csv(out / "proportions_q05.csv", dtype={"barcode": str}).set_index("barcode")
    np.testing.assert_allclose(
        t.layers["q05"], q05.loc[t.obs_names, types].to_numpy(), rtol=1e-5, atol=1e-7
    )
    assert (t.layers["q05"] <= t.X + 1e-6).all() and (t.X <= t.layers["q95"] + 1e-6).all()
    assert set(t.obs["dominant_type"]) <= set(types)
    # the counts table is untouched; a second run replaces ours and leaves nothing behind
    np.testing.assert_array_equal(
        sdata.tables["table"].X.toarray(), sp.csr_matrix(sample.spatial.X).toarray()
    )
    argv2 = ["deconvolve", "--spatial", store, "--model", tmp_path / "m.safetensors"]
    assert (
        main([str(a) for a in [*argv2, "--out", tmp_path / "out2", "-q", "--fractions", "mrna"]])
        == 0
    )
    again = sd.read_zarr(store)
    assert json.loads(again.tables[TABLE_NAME].uns["stlnmf"])["fractions"] == "mrna"
    assert sorted(p.name for p in (store / "tables").iterdir()) == sorted(
        ["table", TABLE_NAME, "zarr.json"]
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_no_store_table_leaves_the_store_alone(tmp_path, capsys):
    store = tmp_path / "slide.zarr"
    sample, _ = make_store(store)
    ref = tmp_path / "ref.h5ad"
    sample.reference.write_h5ad(ref)
    argv = ["deconvolve", "--spatial", store, "--reference", ref, "--label-key", "cell_type"]
    argv += ["--out", tmp_path / "out", "--no-store-table", "-q", *TINY]
    assert main([str(a) for a in argv]) == 0
    assert set(sd.read_zarr(store).tables) == {"table"}


def test_a_failed_write_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    from napari_stlnmf.io import spatialdata_zarr
    from napari_stlnmf.pipeline import DeconvolutionResult  # noqa: F401  (the result type)

    store = tmp_path / "slide.zarr"
    make_store(store)
    a = read_spatial(store)
    types = ["A", "B"]
    table = pd.DataFrame(
        {"barcode": a.obs_names, "x": 0.0, "y": 0.0, "region": "0", "A": 0.25, "B": 0.75}
    )

    class Result:
        cell_types = types
        metadata = {"cell_types": types}

    Result.table = table

    def full_disk(self, *args, **kw):
        (kw.get("file_path") or args[0]).mkdir(parents=True, exist_ok=True)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sd.SpatialData, "write", full_disk)
    with pytest.raises(InputError, match="No space left on device.*unchanged"):
        spatialdata_zarr.write_proportions_table(a, Result())
    monkeypatch.undo()
    assert set(sd.read_zarr(store).tables) == {"table"}
    assert [p.name for p in tmp_path.iterdir()] == ["slide.zarr"]


def test_bad_stores_are_one_clear_error(tmp_path):
    store = tmp_path / "x.zarr"
    make_store(store)
    with pytest.raises(InputError, match="drop --bin-size"):
        read_spatial(store, bin_size=8)
    with pytest.raises(InputError, match="--rebin-um"):
        read_spatial(store, rebin_um=4)
    broken = tmp_path / "broken.zarr"
    (broken / "tables").mkdir(parents=True)
    (broken / "zarr.json").write_text("{not json")
    with pytest.raises(InputError, match="broken.zarr"):
        read_spatial(broken)


def test_a_cohort_of_stores(tmp_path, capsys):
    """stlnmf batch over SpatialData stores: each store gets its table."""
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    sample, _ = make_store(a)
    make_store(b)
    ref = tmp_path / "ref.h5ad"
    sample.reference.write_h5ad(ref)
    (tmp_path / "m.csv").write_text("path\na.zarr\nb.zarr\n")
    argv = ["batch", tmp_path / "m.csv", "--reference", ref, "--label-key", "cell_type"]
    argv += ["--out", tmp_path / "cohort", "--workers", "2", "-q", *TINY]
    assert main([str(x) for x in argv]) == 0, capsys.readouterr().err
    for store in (a, b):
        assert TABLE_NAME in sd.read_zarr(store).tables
    summary = json.loads((tmp_path / "cohort" / "run.json").read_text())
    assert [s["name"] for s in summary["slides"]] == ["a", "b"]
    assert summary["status"]["done"] == 2
