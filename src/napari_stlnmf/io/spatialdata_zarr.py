"""SpatialData zarr stores in and out (the optional ``spatialdata`` extra).

In: a store whose table annotates a shapes element (Visium spots as circles, Visium HD
bins as squares, as spatialdata-io writes them) becomes a slide in the project's
in-memory form: the table's counts, each shape's centre as the spot position, and an
image of the store placed by the coordinate system it shares with the shapes.

Out: the proportions go back into the same store as a table (``stlnmf_proportions`` by
default) that annotates the same shapes element by the same instance ids, one column per
cell type, so napari-spatialdata colours the spots by any type. The table is written
beside the store first and moved in at the end: a failure leaves the store as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, one_line

__all__ = [
    "is_spatialdata_store",
    "read_spatialdata",
    "write_proportions_table",
    "TABLE_NAME",
    "INSTANCE_COLUMN",
]

#: The table the proportions are written to.
TABLE_NAME = "stlnmf_proportions"
#: ``obs`` column of a slide read from a store: each spot's instance id in its shapes.
INSTANCE_COLUMN = "spatialdata_instance_id"
#: Images larger than this (longest side, pixels) are read at a coarser pyramid level.
MAX_IMAGE_SIDE = 4096
_ELEMENT_DIRS = ("tables", "shapes", "images", "labels", "points")


def is_spatialdata_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a SpatialData zarr store (a zarr group with element folders)."""
    p = Path(path)
    if not p.is_dir():
        return False
    zarr_group = (p / "zarr.json").is_file() or (p / ".zgroup").is_file()
    return zarr_group and any((p / d).is_dir() for d in _ELEMENT_DIRS)


def _spatialdata():
    try:
        import spatialdata
    except ImportError:
        raise InputError(
            "reading SpatialData stores needs the spatialdata package: "
            "pip install 'napari-stlnmf[spatialdata]'"
        ) from None
    return spatialdata


def _pick_table(sdata, store: Path, table: str | None, bin_size: int | None):
    """(name, table) of the counts table: the one asked for; with Visium HD tables
    (square_NNNum) the one of ``bin_size`` (8 by default); else the only table that
    annotates shapes and is not one of ours."""
    tables = dict(sdata.tables)
    if table is not None:
        if table not in tables:
            raise InputError(f"{store}: no table {table!r} (tables: {sorted(tables)})")
        return table, tables[table]
    square = {n: t for n, t in tables.items() if n.startswith("square_") and n.endswith("um")}
    if square:
        want = f"square_{bin_size or 8:03d}um"
        if want not in square:
            raise InputError(
                f"{store}: no table {want} for {bin_size or 8} um bins (tables: {sorted(tables)})"
            )
        return want, square[want]
    if bin_size is not None:
        raise InputError(f"{store}: not Visium HD bins (no square_NNNum tables): drop --bin-size")
    candidates = {
        n: t for n, t in tables.items() if n != TABLE_NAME and _annotated_shapes(sdata, t)
    }
    if "table" in candidates:
        return "table", candidates["table"]
    if len(candidates) != 1:
        raise InputError(
            f"{store}: {'no table' if not candidates else 'several tables'} annotating "
            f"shapes ({sorted(candidates) or sorted(tables)}); expected one counts table"
        )
    return next(iter(candidates.items()))


def _annotated_shapes(sdata, table) -> list[str]:
    attrs = table.uns.get("spatialdata_attrs") or {}
    region = attrs.get("region")
    regions = [region] if isinstance(region, str) else list(region or [])
    return [r for r in regions if r in sdata.shapes]


def read_spatialdata(
    path: str | os.PathLike, *, table: str | None = None, bin_size: int | None = None
):
    """Read a slide from a SpatialData zarr store.

    Parameters
    ----------
    path : path to the ``.zarr`` store.
    table : str, optional
        The counts table; by default ``square_008um`` (or ``bin_size``) for Visium HD
        stores, else ``table`` or the only table that annotates a shapes element.
    bin_size : int, optional
        Visium HD stores: the bins to read (2, 8 or 16).

    Returns
    -------
    anndata.AnnData
        Counts (``layers["counts"]`` when ``X`` is normalised), ``obsm["spatial"]`` the
        shape centres, ``obs[INSTANCE_COLUMN]`` the instance ids, ``uns["spatial"]`` a
        library with the store's image (``hires``) and where it came from (table, shapes
        element, keys) for :func:`write_proportions_table`.

    Raises
    ------
    InputError
        spatialdata not installed, an unreadable store, no counts table, a table whose
        instances are missing from its shapes, bad counts.
    """
    from .tables import spatial_anndata

    sd = _spatialdata()
    store = Path(path)
    try:
        with _quiet():
            sdata = sd.read_zarr(store)
    except Exception as e:  # zarr, ome-zarr and pydantic errors alike: the store is bad
        raise InputError(f"{store}: not a readable SpatialData store ({one_line(e)})") from None
    name, tbl = _pick_table(sdata, store, table, bin_size)
    attrs = tbl.uns.get("spatialdata_attrs") or {}
    region_key, instance_key = attrs.get("region_key"), attrs.get("instance_key")
    elements = _annotated_shapes(sdata, tbl)
    if not elements or region_key not in tbl.obs or instance_key not in tbl.obs:
        raise InputError(f"{store}: table {name!r} does not annotate a shapes element")
    counts = tbl.obs[region_key].astype(str).value_counts()
    element = max(elements, key=lambda e: counts.get(e, 0))
    rows = tbl[(tbl.obs[region_key].astype(str) == element).to_numpy()]
    shapes = sdata.shapes[element]
    ids = rows.obs[instance_key].to_numpy()
    missing = ~pd.Index(ids).isin(shapes.index)
    if missing.any():
        raise InputError(
            f"{store}: {int(missing.sum())} instances of table {name!r} are not in shapes "
            f"{element!r} (e.g. {list(ids[missing][:3])})"
        )
    geo = shapes.loc[ids]
    xy, diameter = _centres_and_diameter(geo)
    image, to_image = _image_for(sd, sdata, shapes)
    # positions stay in the shapes' own units when the image is a plain scale of them
    # (Visium: full-resolution pixels), else they are put in the image's pixels
    scale = _uniform_scale(to_image) if to_image is not None else None
    if to_image is not None and scale is None:
        xy = xy @ to_image[:2, :2].T + to_image[:2, 2]
        diameter *= float(np.sqrt(abs(np.linalg.det(to_image[:2, :2]))))
        scale = 1.0
    import anndata as ad

    obs = pd.DataFrame({INSTANCE_COLUMN: ids}, index=rows.obs_names.astype(str))
    if not obs.index.is_unique:
        obs.index = pd.Index([str(i) for i in ids])
    adata = ad.AnnData(X=rows.X, obs=obs, var=pd.DataFrame(index=rows.var_names.astype(str)))
    if "counts" in rows.layers:
        adata.layers["counts"] = rows.layers["counts"]
    for col in ("gene_ids", "gene_symbols"):
        if col in rows.var:
            adata.var[col] = rows.var[col].to_numpy()
    adata.obsm["spatial"] = xy
    lib = store.name.removesuffix(".zarr") or "slide"
    sf = {"spot_diameter_fullres": float(diameter)}
    images = {}
    if image is not None:
        images["hires"] = image
        sf["tissue_hires_scalef"] = float(scale)
    adata.uns["spatial"] = {
        lib: {
            "images": images,
            "scalefactors": sf,
            "metadata": {
                "source": "spatialdata",
                "path": str(store.resolve()),
                "table": name,
                "shapes": element,
                "region_key": str(region_key),
                "instance_key": str(instance_key),
            },
        }
    }
    return spatial_anndata(adata, store)


def _centres_and_diameter(geo) -> tuple[np.ndarray, float]:
    kinds = set(geo.geometry.geom_type)
    if kinds <= {"Point"}:
        xy = np.column_stack([geo.geometry.x.to_numpy(), geo.geometry.y.to_numpy()])
        radius = geo["radius"].to_numpy(dtype=float) if "radius" in geo else np.array([1.0])
        return xy.astype(np.float64), float(2 * np.median(radius))
    centres = geo.geometry.centroid
    xy = np.column_stack([centres.x.to_numpy(), centres.y.to_numpy()])
    return xy.astype(np.float64), float(np.sqrt(np.median(geo.geometry.area.to_numpy())))


def _affine(transformation) -> np.ndarray:
    return np.asarray(
        transformation.to_affine_matrix(input_axes=("x", "y"), output_axes=("x", "y")),
        dtype=np.float64,
    )


def _image_for(sd, sdata, shapes):
    """(uint8 image (H, W, 3), affine from shape units to its pixels) of the store's image
    that shares a coordinate system with the shapes (hires first), or (None, None)."""
    from spatialdata.transformations import get_transformation

    to_cs = get_transformation(shapes, get_all=True)
    names = sorted(sdata.images, key=lambda n: ("hires" not in n, "lowres" not in n, n))
    for name in names:
        img = sdata.images[name]
        img_cs = get_transformation(img, get_all=True)
        shared = [cs for cs in to_cs if cs in img_cs]
        if not shared:
            continue
        levels = list(sd.get_pyramid_levels(img)) if not hasattr(img, "dims") else [img]
        full_w = levels[0].sizes["x"]
        level = next(
            (lv for lv in levels if max(lv.sizes["y"], lv.sizes["x"]) <= MAX_IMAGE_SIDE),
            levels[-1],
        )
        f = full_w / level.sizes["x"]  # level-0 pixels per pixel of this level
        cs = shared[0]
        img_to_cs = _affine(img_cs[cs]) @ np.diag([f, f, 1.0])
        shapes_to_img = np.linalg.inv(img_to_cs) @ _affine(to_cs[cs])
        arr = np.asarray(level.transpose("y", "x", "c").values)
        from .visium import _to_uint8_rgb

        return _to_uint8_rgb(arr), shapes_to_img
    return None, None


def _uniform_scale(m: np.ndarray, tol: float = 1e-6) -> float | None:
    s = m[0, 0]
    ok = abs(m[1, 1] - s) <= tol * abs(s) and abs(m[0, 1]) <= tol * abs(s)
    ok = ok and abs(m[1, 0]) <= tol * abs(s) and np.allclose(m[:2, 2], 0, atol=1e-6)
    return float(s) if ok and s > 0 else None


def store_of(adata) -> dict | None:
    """The SpatialData origin of a slide read by :func:`read_spatialdata`, else None."""
    from .visium import library

    meta = library(adata)[1].get("metadata") or {}
    return dict(meta) if meta.get("source") == "spatialdata" else None


def write_proportions_table(adata, result, *, name: str = TABLE_NAME) -> Path:
    """Write a deconvolution's proportions into the store the slide came from.

    Parameters
    ----------
    adata : AnnData
        The slide, as :func:`read_spatialdata` returned it.
    result : DeconvolutionResult
        Of :func:`napari_stlnmf.pipeline.deconvolve`.
    name : str, default ``"stlnmf_proportions"``
        The table's name in the store; an earlier table of that name is replaced.

    Returns the store's path. The table has one row per spot (the same instance ids of
    the same shapes element, in ``obs``), ``X`` the proportions (one column per cell
    type, NaN for spots with no counts), ``layers["q05"]`` and ``layers["q95"]`` (the 90 %
    intervals, when the run has them), ``obs["dominant_type"]`` and
    ``obs["tissue_region"]``, and the run's metadata (JSON) in ``uns["stlnmf"]``.
    """
    import json

    import anndata as ad

    from .export import _jsonable, dominant_names

    sd = _spatialdata()
    from spatialdata.models import TableModel

    origin = store_of(adata)
    if origin is None:
        raise InputError("the slide was not read from a SpatialData store")
    store = Path(origin["path"])
    region_key, instance_key = origin["region_key"], origin["instance_key"]
    values = np.asarray(result.table[result.cell_types].to_numpy(), dtype=np.float32)
    obs = pd.DataFrame(
        {
            region_key: pd.Categorical([origin["shapes"]] * adata.n_obs),
            instance_key: adata.obs[INSTANCE_COLUMN].to_numpy(),
            "tissue_region": result.table["region"].astype(str).to_numpy(),
            "dominant_type": dominant_names(values, result.cell_types, none="none"),
        },
        index=adata.obs_names.astype(str),
    )
    table = ad.AnnData(X=values, obs=obs, var=pd.DataFrame(index=list(result.cell_types)))
    if getattr(result, "lower", None) is not None:
        # napari-spatialdata's View widget picks a table layer to colour by
        table.layers["q05"] = np.asarray(result.lower, dtype=np.float32)
        table.layers["q95"] = np.asarray(result.upper, dtype=np.float32)
    table.uns["stlnmf"] = json.dumps(_jsonable(result.metadata))
    table = TableModel.parse(
        table, region=origin["shapes"], region_key=region_key, instance_key=instance_key
    )
    try:
        with _quiet():
            _swap_in(sd, store, name, table)
    except OSError as e:
        raise InputError(
            f"could not write table {name!r} into {store}: {e.strerror or one_line(e)}; "
            "the store is unchanged"
        ) from e
    return store


@contextmanager
def _quiet():
    """spatialdata's and zarr's notes on writing (a table written alone annotates shapes
    that its temporary store lacks; zarr's future defaults) are not the user's business."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is annotating.*not present")
        warnings.filterwarnings("ignore", message=".*autosharding.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def _swap_in(sd, store: Path, name: str, table) -> None:
    """Write ``table`` into a temporary store beside ``store``, then move its folder in."""
    if (store / ".zgroup").is_file():  # an older (zarr v2) store: spatialdata writes it
        sdata = sd.read_zarr(store)
        sdata.tables[name] = table
        sdata.write_element(name, overwrite=True)
        return
    tmp = Path(tempfile.mkdtemp(prefix=f".{store.name}.", suffix=".tmp", dir=store.parent))
    try:
        sd.SpatialData(tables={name: table}).write(tmp / "t.zarr", overwrite=True)
        tables = store / "tables"
        if not tables.is_dir():
            shutil.copytree(tmp / "t.zarr" / "tables", tables, dirs_exist_ok=False)
        else:
            new = tables / f".{name}.new"
            old = tables / f".{name}.old"
            shutil.rmtree(new, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp / "t.zarr" / "tables" / name, new)
            if (tables / name).exists():
                os.replace(tables / name, old)
            os.replace(new, tables / name)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sdata = sd.read_zarr(store)
    if sdata.has_consolidated_metadata():
        sdata.write_consolidated_metadata()
