"""Space Ranger Visium HD ``outs/`` folders -> AnnData, in the form of :mod:`.visium`.

Layout read (Space Ranger 3+; ``segmented_outputs/`` from Space Ranger 4)::

    outs/
      binned_outputs/square_002um|square_008um|square_016um/
        filtered_feature_bc_matrix.h5    (or the filtered_feature_bc_matrix/ MTX folder)
        spatial/tissue_positions.parquet  barcode, in_tissue, array_row, array_col,
                                          pxl_row_in_fullres, pxl_col_in_fullres
        spatial/scalefactors_json.json    bin_size_um, microns_per_pixel,
                                          spot_diameter_fullres, tissue_*_scalef, ...
        spatial/tissue_hires_image.png, tissue_lowres_image.png   (where present)
      spatial/tissue_hires_image.png, tissue_lowres_image.png, cytassist_image.tiff
      segmented_outputs/
        filtered_feature_cell_matrix.h5   barcodes cellid_000000001-1, ...
        cell_segmentations.geojson        one Polygon per cell, properties.cell_id = 1, ...
        spatial/scalefactors_json.json

Bins are squares on a regular grid: ``obs["array_row"]``/``obs["array_col"]`` index the
grid, ``obsm["spatial"]`` holds bin centres in full-resolution pixels (x, y), and
``uns["stlnmf_hd"]`` gives ``bin_size_um`` and ``microns_per_pixel`` so that a renderer can
draw each bin as a square of ``bin_size_um / microns_per_pixel`` full-resolution pixels.
The CytAssist image (``load_images`` with ``"cytassist"``) lives in its own camera frame:
it is kept in ``uns["spatial"][lib]["images"]["cytassist"]`` and, where the run's
``feature_slice.h5`` holds Space Ranger's registration, the 3 x 3 matrix taking its
(x, y) pixels to full-resolution (x, y) pixels is
``uns["spatial"][lib]["metadata"]["cytassist_to_fullres"]`` (the product of the slide's
``spot_colrow_to_microscope_colrow`` and ``cytassist_colrow_to_spot_colrow``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata.utils import make_index_unique

from .errors import InputError
from .hd_layout import (
    _BIN_DIR,
    BIN_SIZES,
    BINNED,
    POSITIONS_PARQUET,
    SEGMENTED,
    _hd_root,
    bin_folder_name,
    visium_hd_kind,
)
from .tenx import read_10x_h5, read_10x_mtx
from .visium import (
    IMAGE_FILES,
    POSITION_COLUMNS,
    SCALEFACTORS_FILE,
    _check_spots_on_images,
    _default_library_id,
    _find_fullres,
    _read_counts,
    _read_fullres,
    read_image,
    read_scalefactors,
)

__all__ = [
    "read_visium_hd",
    "read_visium_hd_cells",
    "visium_hd_kind",
    "bin_folder_name",
    "BIN_SIZES",
]

DEFAULT_BIN_SIZE = 8
CELL_MATRIX = "filtered_feature_cell_matrix"
CYTASSIST_FILE = "cytassist_image.tiff"
FEATURE_SLICE = "feature_slice.h5"
CELL_GEOJSONS = ("cell_segmentations.geojson", "graphclust_annotated_cell_segmentations.geojson")
_CELL_BARCODE = r"^cellid_(\d+)-\d+$"


def _available_bins(binned: Path) -> list[str]:
    if not binned.is_dir():
        return []
    return sorted(p.name for p in binned.iterdir() if p.is_dir() and _BIN_DIR.match(p.name))


def _bin_dir(path: Path, size: int) -> tuple[Path, Path]:
    """``(outs root, bin folder)`` for bins of ``size`` µm below ``path``."""
    if _BIN_DIR.match(path.name) and (path / "spatial").is_dir():
        # A bin folder given itself: its siblings hold the other sizes.
        if path.name == bin_folder_name(size):
            return (_hd_root(path) or path.parent), path
        binned = path.parent
    else:
        root = _hd_root(path)
        if root is None:
            raise InputError(f"{path}: not a Visium HD outs/ folder (no {BINNED}/ folder)")
        binned = root / BINNED
    folder = binned / bin_folder_name(size)
    if not folder.is_dir():
        found = _available_bins(binned)
        raise InputError(
            f"{binned}: no {bin_folder_name(size)}/ folder for {size} µm bins (found "
            f"{', '.join(found) if found else 'no square_*um folders'})"
        )
    return (_hd_root(folder) or binned.parent), folder


def _import_pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Visium HD needs pyarrow (pip install pyarrow)") from None
    return pa, pc, pq


def _read_parquet(file: Path):
    """The positions table (pyarrow Table): the columns this reader uses, barcodes as
    ``string``."""
    pa, pc, pq = _import_pyarrow()
    if not file.is_file():
        raise InputError(f"{file.parent}: no bin positions (looked for {POSITIONS_PARQUET})")
    columns = ["barcode", *POSITION_COLUMNS]
    try:
        names = pq.read_schema(file).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise InputError(f"{file}: missing columns {', '.join(missing)}")
        table = pq.read_table(file, columns=columns)
    except InputError:
        raise
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{file}: cannot read parquet (truncated or corrupt?): {e}") from None
    barcodes = table.column("barcode")
    if not pa.types.is_string(barcodes.type):  # e.g. large_string: one type for index_in
        try:
            table = table.set_column(0, "barcode", pc.cast(barcodes, pa.string()))
        except pa.ArrowException as e:
            raise InputError(f"{file}: barcodes are not text ({barcodes.type}): {e}") from None
    return table


def _column(table, name: str, file: Path, integer: bool) -> np.ndarray:
    """One numeric column as numpy (int64 grid indices / flags, or float64 pixels)."""
    pa, _, _ = _import_pyarrow()
    col = table.column(name)
    if pa.types.is_integer(col.type) or pa.types.is_boolean(col.type):
        if col.null_count:
            raise InputError(f"{file}: column '{name}' has {col.null_count} missing values")
        return col.to_numpy().astype(np.int64 if integer else np.float64, copy=False)
    if not pa.types.is_floating(col.type):
        raise InputError(f"{file}: column '{name}' is not numeric ({col.type})")
    values = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if integer:
        if not np.isfinite(values).all() or (values != np.round(values)).any():
            raise InputError(f"{file}: column '{name}' must hold whole numbers")
        return values.astype(np.int64)
    return values


def _match(table, barcodes: Sequence[str], file: Path) -> np.ndarray:
    """Row of ``table`` for each matrix barcode (C++ hashing: no Python loop over bins)."""
    pa, pc, _ = _import_pyarrow()
    value_set = table.column("barcode").combine_chunks()  # one hash table, not one per chunk
    idx = pc.index_in(pa.array(barcodes, type=pa.string()), value_set=value_set)
    missing = idx.is_null().to_numpy(zero_copy_only=False)
    if missing.any():
        examples = [barcodes[i] for i in np.flatnonzero(missing)[:3]]
        raise InputError(
            f"{file}: {int(missing.sum())} of {len(barcodes)} matrix barcodes have no position, "
            f"e.g. {', '.join(examples)}"
        )
    return idx.to_numpy(zero_copy_only=False).astype(np.int64)


def _check_grid(rows: np.ndarray, cols: np.ndarray, file: Path) -> None:
    """One bin per grid position (a numeric check: hashing millions of barcode strings
    would take seconds)."""
    if not len(rows):
        raise InputError(f"{file}: no bins")
    if rows.min() < 0 or cols.min() < 0:
        raise InputError(f"{file}: negative array_row / array_col values")
    width = int(cols.max()) + 1
    keys = rows * width + cols
    if width * (int(rows.max()) + 1) <= 4 * len(keys) + 1024:
        counts = np.bincount(keys)
        dup = np.flatnonzero(counts > 1)
    else:
        uniq, counts = np.unique(keys, return_counts=True)
        dup = uniq[counts > 1]
    if len(dup):
        r, c = divmod(int(dup[0]), width)
        raise InputError(
            f"{file}: {len(dup)} grid positions hold more than one bin (duplicated rows?), "
            f"e.g. array_row {r}, array_col {c}"
        )


def _images(dirs: Sequence[Path], load_images: Sequence[str]) -> tuple[dict, Path]:
    """Images from the first of ``dirs`` holding any of them: ``(images, that folder)``."""
    unknown = [k for k in load_images if k not in IMAGE_FILES]
    if unknown:
        raise InputError(f"unknown image {unknown[0]!r}: choose from {', '.join(IMAGE_FILES)}")
    for d in dirs:
        found = {k: d / IMAGE_FILES[k] for k in load_images if (d / IMAGE_FILES[k]).is_file()}
        if found:
            return {k: read_image(f) for k, f in found.items()}, d
    return {}, dirs[0]


def _hd_scalefactors(file: Path, folder_size: int) -> dict:
    """Scale factors of a bin folder; ``bin_size_um`` must match the folder's name and
    ``microns_per_pixel`` is filled from ``bin_size_um / spot_diameter_fullres`` (the
    identity Space Ranger's files satisfy) when absent."""
    sf = dict(read_scalefactors(file))
    size = sf.get("bin_size_um", folder_size)
    if (
        isinstance(size, bool)
        or not isinstance(size, int | float)
        or not math.isclose(float(size), folder_size)
    ):
        raise InputError(
            f"{file}: bin_size_um is {size!r} but the folder {file.parent.parent.name} holds "
            f"{folder_size} µm bins"
        )
    sf["bin_size_um"] = float(folder_size)
    mpp = sf.get("microns_per_pixel")
    if mpp is None:
        sf["microns_per_pixel"] = folder_size / float(sf["spot_diameter_fullres"])
    elif isinstance(mpp, bool) or not isinstance(mpp, int | float) or not mpp > 0:
        raise InputError(f"{file}: 'microns_per_pixel' must be a positive number, got {mpp!r}")
    return sf


def _rebin(counts, rows: np.ndarray, cols: np.ndarray, grid: dict[str, np.ndarray], k: int):
    """Sum bins into k x k squares of the grid.

    Returns ``(counts, block_row, block_col, xy, inverse)``: the counts as one sparse
    product with a 0/1 indicator matrix; each square's centre as the mean centre of all its
    finer bins in the positions file (in or out of tissue), so that squares at the tissue
    edge sit where the grid puts them; ``inverse`` the square of each input bin.
    """
    n = len(rows)
    width = int(max(grid["array_col"].max(), cols.max())) // k + 1
    keys = (rows // k) * width + cols // k
    blocks, inverse = np.unique(keys, return_inverse=True)
    indicator = sp.csr_matrix(
        (np.ones(n, dtype=counts.dtype), (inverse, np.arange(n))), shape=(len(blocks), n)
    )
    summed = (indicator @ counts).tocsr()
    summed.sort_indices()
    all_keys = (grid["array_row"] // k) * width + grid["array_col"] // k
    where = np.searchsorted(blocks, all_keys).clip(max=len(blocks) - 1)
    inside = blocks[where] == all_keys
    where = where[inside]
    members = np.bincount(where, minlength=len(blocks))
    xy = np.column_stack(
        [
            np.bincount(where, weights=grid[c][inside], minlength=len(blocks)) / members
            for c in ("pxl_col_in_fullres", "pxl_row_in_fullres")
        ]
    )
    return summed, blocks // width, blocks % width, xy, inverse


def _rebin_barcodes(size_um: int, rows: np.ndarray, cols: np.ndarray) -> pd.Index:
    """Barcodes in Space Ranger's spelling, ``s_024um_00012_00003-1`` (vectorised)."""
    r = pd.Series(rows).astype(str).str.zfill(5)
    c = pd.Series(cols).astype(str).str.zfill(5)
    return pd.Index((f"s_{size_um:03d}um_" + r + "_" + c + "-1").to_numpy())


def _check_sizes(bin_size: int | None, rebin_um: int | None, where: Path) -> int:
    """The bin folder to read (µm), after checking ``bin_size`` and ``rebin_um``."""
    if rebin_um is not None:
        if isinstance(rebin_um, bool) or not isinstance(rebin_um, int | np.integer):
            raise InputError(f"{where}: rebin_um must be a whole number of µm, got {rebin_um!r}")
        if rebin_um < 2 or rebin_um % 2:
            raise InputError(
                f"{where}: rebin_um must be a positive multiple of 2 µm (the finest bins), "
                f"got {rebin_um}"
            )
        return 2
    size = DEFAULT_BIN_SIZE if bin_size is None else bin_size
    if size not in BIN_SIZES:
        raise InputError(
            f"{where}: unknown bin size {size!r} µm: choose {', '.join(map(str, BIN_SIZES))} "
            "(or rebin_um for other sizes)"
        )
    return int(size)


def read_visium_hd(
    path: str | os.PathLike,
    bin_size: int | None = None,
    rebin_um: int | None = None,
    library_id: str | None = None,
    load_images: Sequence[str] = ("hires", "lowres"),
    fullres_image: str | os.PathLike | None = None,
    in_tissue_only: bool = True,
) -> ad.AnnData:
    """Read the bins of a Space Ranger Visium HD run into the form of :mod:`.visium`.

    Parameters
    ----------
    path : str or PathLike
        The ``outs/`` folder (holding ``binned_outputs/``), the folder holding ``outs/``,
        ``binned_outputs/`` itself, or one ``square_XXXum`` bin folder (its own size is
        read unless ``bin_size`` names another one).
    bin_size : {2, 8, 16} or None
        Bin size in µm, picks ``binned_outputs/square_XXXum``; None means 8 µm (or the
        size of the bin folder given as ``path``).
    rebin_um : int, optional
        Sum the 2 µm bins into squares of ``rebin_um`` µm (a multiple of 2, e.g. 24, 32,
        40) instead; needs ``square_002um``. Overrides ``bin_size``.
    library_id : str, optional
        Key in ``uns["spatial"]``; defaults to the name of the folder holding ``outs/``.
    load_images : sequence of {"hires", "lowres", "cytassist"}
        Images to load when present, from the bin folder's ``spatial/`` or else from
        ``outs/spatial/``; ``"cytassist"``: ``outs/spatial/cytassist_image.tiff`` in its
        own frame, with its registration (module docs).
    fullres_image : str or PathLike, optional
        A full-resolution TIFF, or ``"auto"`` (the largest ``*.tif`` in ``outs/`` or its
        parent), as in :func:`~napari_stlnmf.io.visium.read_visium`.
    in_tissue_only : bool
        Keep only bins with ``in_tissue == 1`` (before rebinning).

    Returns
    -------
    anndata.AnnData
        ``X`` raw counts (CSR, dtype as stored), ``obs`` ``in_tissue``, ``array_row``,
        ``array_col`` (the grid of the bins returned), ``obsm["spatial"]`` bin centres
        (x, y) in full-resolution pixels, ``uns["spatial"][library_id]`` with images and
        scale factors (``bin_size_um``, ``microns_per_pixel``, ``spot_diameter_fullres``
        for the bins returned), ``uns["stlnmf_hd"]`` ``{"kind": "bins", "bin_size_um",
        "microns_per_pixel"}``.

    Raises
    ------
    InputError
        Not an HD folder, an unknown or missing bin size (naming the sizes found), a
        ``rebin_um`` that is not a multiple of 2, or missing / corrupt files.
    """
    p = Path(path)
    if not p.is_dir():
        raise InputError(f"no such folder: {p}" if not p.exists() else f"{p}: not a folder")
    own = _BIN_DIR.match(p.name)
    if own and bin_size is None and rebin_um is None:
        bin_size = int(own.group(1))
    size = _check_sizes(bin_size, rebin_um, p)
    root, folder = _bin_dir(p, size)
    spatial = folder / "spatial"
    pos_file = spatial / POSITIONS_PARQUET

    counts, barcodes, var = _read_counts(folder)
    table = _read_parquet(pos_file)
    picked = _match(table, barcodes, pos_file)
    grid = {c: _column(table, c, pos_file, integer=i < 3) for i, c in enumerate(POSITION_COLUMNS)}
    del table  # the barcode strings: the largest part of a 2 um table
    _check_grid(grid["array_row"], grid["array_col"], pos_file)
    names = pd.Index(barcodes, dtype=object)
    if in_tissue_only:
        keep = grid["in_tissue"][picked] == 1
        if not keep.any():
            raise InputError(f"{pos_file}: none of the matrix barcodes is in tissue")
        if not keep.all():
            counts, picked, names = counts[np.flatnonzero(keep)].tocsr(), picked[keep], names[keep]
    in_tissue = grid["in_tissue"][picked]
    rows, cols = grid["array_row"][picked], grid["array_col"][picked]
    xy = np.column_stack([grid["pxl_col_in_fullres"][picked], grid["pxl_row_in_fullres"][picked]])
    bad = ~np.isfinite(xy).all(axis=1) | (xy < 0).any(axis=1)
    if bad.any():
        raise InputError(
            f"{pos_file}: {int(bad.sum())} bins have NaN or negative pixel coordinates, "
            f"e.g. {', '.join(names[bad][:3])}"
        )
    sf = _hd_scalefactors(spatial / SCALEFACTORS_FILE, size)
    if rebin_um is not None:
        k = rebin_um // 2
        counts, rows, cols, xy, inverse = _rebin(counts, rows, cols, grid, k)
        names = _rebin_barcodes(rebin_um, rows, cols)
        # A square is in tissue when any of its bins is.
        in_tissue = (np.bincount(inverse, weights=in_tissue == 1, minlength=len(rows)) > 0) * 1
        sf["bin_size_um"] = float(rebin_um)
        sf["spot_diameter_fullres"] = float(sf["spot_diameter_fullres"]) * k
    del grid

    tissue_images = [k for k in load_images if k != "cytassist"]
    images, image_dir = _images([spatial, root / "spatial"], tissue_images)
    _check_spots_on_images(xy, images, sf, names, pos_file, image_dir)
    metadata = {"source": "spaceranger", "path": str(root), "bins": str(folder)}
    _add_fullres(fullres_image, root, xy, sf, images, metadata)
    if "cytassist" in load_images:
        _add_cytassist(root, images, metadata)

    obs = pd.DataFrame(
        {"in_tissue": in_tissue.astype(np.int64), "array_row": rows, "array_col": cols},
        index=names.rename(None),
    )
    adata = ad.AnnData(X=counts, obs=obs, var=_unique_var(var))
    adata.obsm["spatial"] = np.ascontiguousarray(xy, dtype=np.float64)
    lib = library_id or _default_library_id(root)
    adata.uns["spatial"] = {lib: {"images": images, "scalefactors": sf, "metadata": metadata}}
    adata.uns["stlnmf_hd"] = {
        "kind": "bins",
        "bin_size_um": float(sf["bin_size_um"]),
        "microns_per_pixel": float(sf["microns_per_pixel"]),
    }
    return adata


def cytassist_registration(root: Path) -> np.ndarray | None:
    """The 3 x 3 projective matrix from CytAssist (x, y) pixels to full-resolution (x, y)
    pixels, from ``feature_slice.h5`` (``metadata_json``'s ``transform_matrices``), or
    None when the run has no such file or registration."""
    files = sorted(Path(root).glob(f"*{FEATURE_SLICE}"))
    if not files:
        return None
    import h5py

    try:
        with h5py.File(files[0], "r") as f:
            meta = json.loads(f.attrs["metadata_json"])
        tm = meta.get("transform_matrices") or {}
        to_spot = np.asarray(tm["cytassist_colrow_to_spot_colrow"], dtype=np.float64)
        to_micro = np.asarray(tm["spot_colrow_to_microscope_colrow"], dtype=np.float64)
        m = to_micro.reshape(3, 3) @ to_spot.reshape(3, 3)
    except (OSError, KeyError, TypeError, ValueError) as e:
        warnings.warn(
            f"{files[0]}: no usable CytAssist registration ({e}); the CytAssist image "
            "stays in its own frame",
            stacklevel=3,
        )
        return None
    if not np.isfinite(m).all() or abs(m[2, 2]) < 1e-12:
        return None
    return m / m[2, 2]


def _add_cytassist(root: Path, images: dict, metadata: dict) -> None:
    """The CytAssist image, with its registration to full-resolution pixels when known."""
    import tifffile

    from .visium import _to_uint8_rgb

    file = root / "spatial" / CYTASSIST_FILE
    if not file.is_file():
        return
    try:
        arr = np.squeeze(tifffile.imread(file))
    except Exception as e:  # noqa: BLE001 - tifffile raises many types; the image is optional
        warnings.warn(f"{file}: cannot read the CytAssist image ({e}); left out", stacklevel=3)
        return
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # channels first -> last
    if arr.ndim not in (2, 3):
        warnings.warn(f"{file}: CytAssist image of shape {arr.shape}; left out", stacklevel=3)
        return
    images["cytassist"] = _to_uint8_rgb(arr, keep_grey=True)
    matrix = cytassist_registration(root)
    if matrix is not None:
        metadata["cytassist_to_fullres"] = matrix.tolist()


def _add_fullres(fullres_image, root: Path, xy, sf: dict, images: dict, metadata: dict) -> None:
    """Load ``fullres_image`` (a TIFF, or ``"auto"``) into ``images["fullres"]``, as
    :func:`~napari_stlnmf.io.visium.read_visium` does."""
    if fullres_image is None:
        return
    tif = _find_fullres(root) if str(fullres_image) == "auto" else Path(fullres_image)
    if tif is None:
        warnings.warn(f"no *.tif/*.tiff found in {root} or its parent", stacklevel=3)
        return
    images["fullres"] = _read_fullres(tif, xy, sf, images)
    metadata["source_image_path"] = str(tif)


def _unique_var(var: pd.DataFrame) -> pd.DataFrame:
    var = var.copy()
    var.index = make_index_unique(pd.Index(var["gene_symbols"].astype(str))).rename(None)
    return var


# ----------------------------------------------------------------------------- cells
def _segmented_dir(path: Path) -> Path:
    if path.name == SEGMENTED and path.is_dir():
        return path
    for cand in (path / SEGMENTED, path / "outs" / SEGMENTED):
        if cand.is_dir():
            return cand
    raise InputError(
        f"{path}: no {SEGMENTED}/ folder (cell segmentation needs Space Ranger 4 or later)"
    )


def _read_cell_counts(seg: Path):
    h5 = seg / f"{CELL_MATRIX}.h5"
    if h5.is_file():
        return read_10x_h5(h5), h5
    if (seg / CELL_MATRIX).is_dir():
        return read_10x_mtx(seg / CELL_MATRIX), seg / CELL_MATRIX
    raise InputError(
        f"{seg}: no cell count matrix (looked for {CELL_MATRIX}.h5 and {CELL_MATRIX}/)"
    )


def _exterior_rings(geometry, file: Path, i: int) -> list:
    """The outer ring(s) of a Polygon / MultiPolygon (holes are left out)."""
    kind = (geometry or {}).get("type")
    coords = (geometry or {}).get("coordinates") or []
    if kind == "Polygon" and coords:
        return [coords[0]]
    if kind == "MultiPolygon" and coords:
        return [part[0] for part in coords if part]
    raise InputError(f"{file}: feature {i} is not a Polygon or MultiPolygon ({kind!r})")


def _polygon_centroids(file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cell ids, centroids (n, 2) x/y, areas)`` of a Space Ranger cell GeoJSON.

    Centroids and areas are those of the polygons' outer rings (shoelace formula, over all
    vertices at once); a MultiPolygon's parts are weighted by their areas.
    """
    try:
        with open(file, encoding="utf-8") as fh:
            doc = json.load(fh)
        features = doc["features"]
        ids = [f["properties"]["cell_id"] for f in features]
    except (OSError, ValueError) as e:
        raise InputError(f"{file}: invalid GeoJSON: {e}") from None
    except (KeyError, TypeError):
        raise InputError(
            f"{file}: expected a FeatureCollection whose features carry properties.cell_id"
        ) from None
    if not features:
        raise InputError(f"{file}: no cell polygons")
    try:
        cell_ids = np.asarray(ids, dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError(f"{file}: cell_id values must be whole numbers") from None
    rings = [_exterior_rings(f.get("geometry"), file, i) for i, f in enumerate(features)]
    owner = np.repeat(np.arange(len(rings)), [len(r) for r in rings])
    flat_rings = list(chain.from_iterable(rings))
    lengths = np.fromiter(map(len, flat_rings), dtype=np.int64, count=len(flat_rings))
    if (lengths < 3).any():
        raise InputError(f"{file}: a polygon ring has fewer than 3 vertices")
    try:
        vertices = np.array(list(chain.from_iterable(flat_rings)), dtype=np.float64)[:, :2]
    except (TypeError, ValueError, IndexError):
        raise InputError(f"{file}: polygon coordinates are not numeric pairs") from None
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    nxt = np.arange(len(vertices)) + 1
    nxt[starts + lengths - 1] = starts  # each ring wraps to its first vertex
    x, y = vertices[:, 0], vertices[:, 1]
    cross = x * y[nxt] - x[nxt] * y
    area = 0.5 * np.add.reduceat(cross, starts)
    cx = np.add.reduceat((x + x[nxt]) * cross, starts)
    cy = np.add.reduceat((y + y[nxt]) * cross, starts)
    mean_x = np.add.reduceat(x, starts) / lengths
    mean_y = np.add.reduceat(y, starts) / lengths
    flat = np.abs(area) < 1e-12
    safe = np.where(flat, 1.0, 6.0 * area)
    ring_x = np.where(flat, mean_x, cx / safe)  # a flat ring: its vertex mean
    ring_y = np.where(flat, mean_y, cy / safe)
    weight = np.where(flat, 1e-12, np.abs(area))
    n = len(rings)
    total = np.bincount(owner, weights=weight, minlength=n)
    xy = np.column_stack(
        [
            np.bincount(owner, weights=weight * ring_x, minlength=n) / total,
            np.bincount(owner, weights=weight * ring_y, minlength=n) / total,
        ]
    )
    return cell_ids, xy, np.bincount(owner, weights=np.abs(area), minlength=n)


def _cell_scalefactors(dirs: Sequence[Path]) -> tuple[dict, Path]:
    """Scale factors for the cells: the first ``scalefactors_json.json`` found in ``dirs``
    with valid hires/lowres factors (``spot_diameter_fullres`` is set from the cells)."""
    for d in dirs:
        file = d / SCALEFACTORS_FILE
        if not file.is_file():
            continue
        try:
            with open(file, encoding="utf-8") as fh:
                sf = json.load(fh)
        except (OSError, ValueError) as e:
            raise InputError(f"{file}: invalid JSON: {e}") from None
        if not isinstance(sf, dict):
            raise InputError(f"{file}: expected a JSON object")
        for key in ("tissue_hires_scalef", "tissue_lowres_scalef"):
            v = sf.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise InputError(f"{file}: '{key}' must be a positive number, got {v!r}")
        return dict(sf), file
    raise InputError(
        f"{dirs[0]}: no scale factors (looked for {SCALEFACTORS_FILE} in "
        f"{', '.join(str(d) for d in dirs)})"
    )


def read_visium_hd_cells(
    path: str | os.PathLike,
    library_id: str | None = None,
    load_images: Sequence[str] = ("hires", "lowres"),
    fullres_image: str | os.PathLike | None = None,
) -> ad.AnnData:
    """Read the segmented cells of a Space Ranger 4 Visium HD run (``segmented_outputs/``).

    Parameters
    ----------
    path : str or PathLike
        The ``outs/`` folder, the folder holding it, or ``segmented_outputs/`` itself.
    library_id : str, optional
        Key in ``uns["spatial"]``; defaults to the name of the folder holding ``outs/``.
    load_images : sequence of {"hires", "lowres"}
        Images to load when present (``segmented_outputs/spatial/`` or ``outs/spatial/``).
    fullres_image : str or PathLike, optional
        A full-resolution TIFF, or ``"auto"``, as in :func:`read_visium_hd`.

    Returns
    -------
    anndata.AnnData
        One observation per cell of ``filtered_feature_cell_matrix``: ``X`` raw counts,
        ``obs["cell_id"]`` (the GeoJSON's ``properties.cell_id``), ``obs["area_px"]``
        (full-resolution pixels²) and ``obs["area_um2"]`` when ``microns_per_pixel`` is
        known; ``obsm["spatial"]`` the polygon centroids (x, y) in full-resolution
        pixels; ``uns["spatial"][library_id]`` as for bins, with ``spot_diameter_fullres``
        the median cell's equivalent diameter; ``uns["stlnmf_hd"]`` ``{"kind": "cells",
        "microns_per_pixel"}``. Polygons themselves are not kept.

    Raises
    ------
    InputError
        No ``segmented_outputs/``, no cell matrix or GeoJSON (``cell_segmentations.geojson``
        or ``graphclust_annotated_cell_segmentations.geojson``), matrix cells without a
        polygon, or corrupt files.
    """
    p = Path(path)
    if not p.is_dir():
        raise InputError(f"no such folder: {p}" if not p.exists() else f"{p}: not a folder")
    seg = _segmented_dir(p)
    root = seg.parent
    geojson = next((seg / n for n in CELL_GEOJSONS if (seg / n).is_file()), None)
    if geojson is None:
        raise InputError(f"{seg}: no cell polygons (looked for {', '.join(CELL_GEOJSONS)})")
    (counts, barcodes, var), matrix_file = _read_cell_counts(seg)
    parsed = pd.Series(barcodes, dtype=object).str.extract(_CELL_BARCODE, expand=False)
    if parsed.isna().any():
        bad = [barcodes[i] for i in np.flatnonzero(parsed.isna().to_numpy())[:3]]
        raise InputError(
            f"{matrix_file}: barcodes are not cell ids (cellid_000000001-1), e.g. {', '.join(bad)}"
        )
    ids, centroids, areas = _polygon_centroids(geojson)
    id_index = pd.Index(ids)
    if id_index.has_duplicates:
        dup = id_index[id_index.duplicated()].unique()
        raise InputError(f"{geojson}: {len(dup)} duplicated cell_id values, e.g. {dup[0]}")
    cell_ids = parsed.astype(np.int64).to_numpy()
    where = id_index.get_indexer(cell_ids)
    if (where < 0).any():
        missing = [barcodes[i] for i in np.flatnonzero(where < 0)[:3]]
        raise InputError(
            f"{geojson}: {int((where < 0).sum())} of {len(barcodes)} cells of {matrix_file.name} "
            f"have no polygon, e.g. {', '.join(missing)}"
        )
    xy, area = centroids[where], areas[where]
    bad = ~np.isfinite(xy).all(axis=1) | (xy < 0).any(axis=1)
    if bad.any():
        raise InputError(f"{geojson}: {int(bad.sum())} cells have NaN or negative centroids")

    spatial_dirs = [seg / "spatial", root / "spatial"]
    spatial_dirs += [f / "spatial" for f in sorted((root / BINNED).glob("square_*um"))]
    sf, sf_file = _cell_scalefactors(spatial_dirs)
    if "spot_diameter_fullres" in sf:
        sf["bin_spot_diameter_fullres"] = sf["spot_diameter_fullres"]
    # Points drawn at the size of a typical cell, not of a 2 um bin.
    sf["spot_diameter_fullres"] = float(np.median(2.0 * np.sqrt(area / np.pi)))
    names = pd.Index(np.asarray(barcodes, dtype=object))
    images, image_dir = _images(spatial_dirs[:2], load_images)
    _check_spots_on_images(xy, images, sf, names, geojson, image_dir)

    metadata = {"source": "spaceranger", "path": str(root), "cells": str(geojson)}
    _add_fullres(fullres_image, root, xy, sf, images, metadata)

    obs = pd.DataFrame({"cell_id": cell_ids, "area_px": area}, index=names)
    mpp = sf.get("microns_per_pixel")
    hd = {"kind": "cells"}
    if isinstance(mpp, int | float) and not isinstance(mpp, bool) and mpp > 0:
        obs["area_um2"] = area * float(mpp) ** 2
        hd["microns_per_pixel"] = float(mpp)
    adata = ad.AnnData(X=counts, obs=obs, var=_unique_var(var))
    adata.obsm["spatial"] = np.ascontiguousarray(xy, dtype=np.float64)
    lib = library_id or _default_library_id(root)
    adata.uns["spatial"] = {lib: {"images": images, "scalefactors": sf, "metadata": metadata}}
    adata.uns["stlnmf_hd"] = hd
    return adata
