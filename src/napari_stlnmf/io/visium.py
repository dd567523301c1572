"""Space Ranger (10x Visium) ``outs/`` folders -> AnnData.

In-memory form of a spatial slide (the contract for the whole project; every reader
in :mod:`napari_stlnmf.io` returns it):

- ``X``: scipy.sparse CSR, spots x genes, raw counts (dtype as stored; int32 for
  Space Ranger).
- ``obs_names``: spot barcodes; ``obs`` columns ``in_tissue``, ``array_row``,
  ``array_col`` when known.
- ``var_names``: gene symbols made unique (``var_names_make_unique`` style,
  ``Gene``, ``Gene-1``, ...); ``var["gene_symbols"]`` the original symbols;
  ``var["gene_ids"]`` (e.g. Ensembl IDs) and ``var["feature_types"]`` where present.
- ``obsm["spatial"]``: float64 (n, 2) spot centres in FULL-RESOLUTION pixels as
  (x, y) = (``pxl_col_in_fullres``, ``pxl_row_in_fullres``) (scanpy/squidpy convention).
- ``uns["spatial"][library_id]``: ``{"images": {"hires": arr, "lowres": arr[, "fullres":
  arr]}, "scalefactors": {"tissue_hires_scalef", "tissue_lowres_scalef",
  "spot_diameter_fullres", "fiducial_diameter_fullres", ... as in the json},
  "metadata": {"source": "spaceranger" | "tables" | "h5ad", "path": str[,
  "source_image_path": str]}}``. Images are uint8 (H, W, 3) RGB (a full-resolution image
  may also be (H, W) grey). ``library_id`` defaults to the name of the folder holding
  ``outs/`` (or the given folder's own name when it is not called ``outs``).

So the pixel of spot ``i`` in the hires image is ``obsm["spatial"][i] *
tissue_hires_scalef`` (column x, row y); see :func:`image_scale`. A full-resolution
image has scale 1.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from anndata.utils import make_index_unique

from .errors import InputError
from .tenx import read_10x_h5, read_10x_mtx

__all__ = [
    "read_visium",
    "read_positions",
    "read_scalefactors",
    "read_image",
    "image_scale",
    "spot_diameter",
    "library",
    "POSITION_COLUMNS",
]

POSITION_COLUMNS = (
    "in_tissue",
    "array_row",
    "array_col",
    "pxl_row_in_fullres",
    "pxl_col_in_fullres",
)
POSITION_FILES = ("tissue_positions.csv", "tissue_positions_list.csv", "tissue_positions.parquet")
SCALEFACTORS_FILE = "scalefactors_json.json"
REQUIRED_SCALEFACTORS = ("tissue_hires_scalef", "tissue_lowres_scalef", "spot_diameter_fullres")
IMAGE_FILES = {"hires": "tissue_hires_image.png", "lowres": "tissue_lowres_image.png"}
_SCALE_KEYS = {"hires": "tissue_hires_scalef", "lowres": "tissue_lowres_scalef"}


def _spatial_dir(path: Path) -> Path:
    """The ``spatial/`` folder of an outs folder, of a folder holding ``outs/``, or itself."""
    for candidate in (path / "spatial", path / "outs" / "spatial"):
        if candidate.is_dir():
            return candidate
    return path if path.name == "spatial" else path / "spatial"


def _outs_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    if not path.is_dir():
        raise InputError(f"{path}: expected a Space Ranger outs/ folder, got a file")
    if (path / "spatial").is_dir():
        return path
    if (path / "outs").is_dir():
        return path / "outs"
    return path.parent if path.name == "spatial" else path


def _positions_file(spatial: Path) -> Path:
    for name in POSITION_FILES:
        if (spatial / name).is_file():
            return spatial / name
    raise InputError(f"{spatial}: no spot positions (looked for {', '.join(POSITION_FILES)})")


def read_positions(path: str | os.PathLike) -> pd.DataFrame:
    """Read Space Ranger spot positions.

    Looks in ``spatial/`` for ``tissue_positions.csv`` (header, Space Ranger 2+), then
    ``tissue_positions_list.csv`` (no header, Space Ranger 1), then
    ``tissue_positions.parquet`` (needs pyarrow).

    Parameters
    ----------
    path : str or PathLike
        An ``outs/`` folder, its ``spatial/`` folder, or a positions file.

    Returns
    -------
    pandas.DataFrame
        Indexed by barcode (str), columns :data:`POSITION_COLUMNS` (int64 flags and array
        indices, float64 pixel coordinates in the full-resolution image).

    Raises
    ------
    InputError
        No positions file, an unreadable one, missing columns or duplicated barcodes.
    """
    path = Path(path)
    file = path if path.is_file() else _positions_file(_spatial_dir(path))
    names = ["barcode", *POSITION_COLUMNS]
    try:
        if file.suffix == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise InputError(
                    f"{file}: reading parquet positions needs pyarrow (pip install pyarrow)"
                ) from None
            df = pd.read_parquet(file)
            if "barcode" in df.columns:
                df = df.set_index("barcode")
        else:
            with open(file, encoding="utf-8") as fh:
                first = fh.readline().split(",")[0].strip().strip('"').lower()
            header = 0 if first in ("barcode", "barcodes", "") else None
            df = pd.read_csv(file, header=header)
            if header is None:
                if df.shape[1] != len(names):
                    raise InputError(
                        f"{file}: {df.shape[1]} columns, expected {len(names)} in a positions "
                        f"list without a header ({', '.join(names)})"
                    )
                df.columns = names
            df = df.set_index(df.columns[0])
    except InputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise InputError(f"{file}: cannot read positions (truncated or corrupt?): {e}") from None
    missing = [c for c in POSITION_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{file}: missing columns {', '.join(missing)}")
    df = df.loc[:, list(POSITION_COLUMNS)]
    df.index = df.index.astype(str)
    df.index.name = "barcode"
    dup = df.index[df.index.duplicated()].unique()
    if len(dup):
        raise InputError(f"{file}: {len(dup)} duplicated barcodes, e.g. {', '.join(dup[:3])}")
    try:
        df = df.apply(pd.to_numeric)
    except (ValueError, TypeError) as e:
        raise InputError(f"{file}: non-numeric position values: {e}") from None
    for c in POSITION_COLUMNS[:3]:
        if df[c].notna().all():
            df[c] = df[c].astype(np.int64)
    for c in POSITION_COLUMNS[3:]:
        df[c] = df[c].astype(np.float64)
    return df


def read_scalefactors(path: str | os.PathLike) -> dict[str, float]:
    """Read ``spatial/scalefactors_json.json``.

    Parameters
    ----------
    path : str or PathLike
        An ``outs/`` folder, its ``spatial/`` folder, or the json file.

    Returns
    -------
    dict
        All entries of the json; :data:`REQUIRED_SCALEFACTORS` are checked to be
        positive finite numbers.

    Raises
    ------
    InputError
        Missing file, invalid JSON, or missing / invalid required keys.
    """
    path = Path(path)
    file = path if path.is_file() else _spatial_dir(path) / SCALEFACTORS_FILE
    if not file.is_file():
        raise InputError(f"{file.parent}: no scale factors (looked for {SCALEFACTORS_FILE})")
    try:
        with open(file, encoding="utf-8") as fh:
            sf = json.load(fh)
    except (OSError, ValueError) as e:
        raise InputError(f"{file}: invalid JSON: {e}") from None
    if not isinstance(sf, dict):
        raise InputError(f"{file}: expected a JSON object")
    missing = [k for k in REQUIRED_SCALEFACTORS if k not in sf]
    if missing:
        raise InputError(f"{file}: missing keys {', '.join(missing)}")
    for k in REQUIRED_SCALEFACTORS:
        v = sf[k]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise InputError(f"{file}: '{k}' must be a positive number, got {v!r}")
    return sf


def _to_uint8_rgb(arr: np.ndarray, keep_grey: bool = False) -> np.ndarray:
    """(H, W[, C]) of any dtype -> uint8 (H, W, 3), or (H, W) grey when ``keep_grey``."""
    if arr.ndim == 3 and arr.shape[2] not in (3, 4):
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8:
        step = max(1, arr.shape[0] // 512, arr.shape[1] // 512)
        hi = float(np.percentile(arr[::step, ::step], 99.9)) or 1.0
        out = np.empty(arr.shape, np.uint8)
        for r in range(0, arr.shape[0], 1024):  # row blocks: no full float copy
            block = arr[r : r + 1024].astype(np.float32) * (255.0 / hi)
            out[r : r + 1024] = np.clip(np.nan_to_num(block), 0, 255)
        arr = out
    if arr.ndim == 2:
        return arr if keep_grey else np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG/JPEG tissue image as a uint8 (H, W, 3) RGB array (alpha dropped).

    Raises
    ------
    InputError
        Missing, truncated or unrecognised image file.
    """
    from PIL import Image, UnidentifiedImageError

    file = Path(path)
    try:
        with Image.open(file) as im:
            im.load()
            if im.mode in ("RGB", "L", "I;16", "I;16B", "I", "F"):
                arr = np.asarray(im)
            else:
                arr = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{file}: cannot read image (truncated or corrupt?): {e}") from None
    return _to_uint8_rgb(arr)


def _find_fullres(outs: Path) -> Path | None:
    tifs = [
        p
        for d in (outs, outs.parent)
        for p in d.iterdir()
        if p.is_file() and p.suffix.lower() in (".tif", ".tiff")
    ]
    return max(tifs, key=lambda p: p.stat().st_size) if tifs else None


def _read_fullres(
    file: Path, xy: np.ndarray, sf: dict, images: dict[str, np.ndarray]
) -> np.ndarray:
    """Read a full-resolution TIFF after checking its size fits the spots and scalefactors."""
    import tifffile

    if not file.is_file():
        raise InputError(f"no such file: {file}")
    try:
        with tifffile.TiffFile(file) as tif:
            series = tif.series[0]
            axes, shape = series.axes, series.shape
            if "Y" not in axes or "X" not in axes:
                raise InputError(f"{file}: image without Y/X axes ({axes})")
            h, w = shape[axes.index("Y")], shape[axes.index("X")]
            diameter = float(sf.get("spot_diameter_fullres", 0.0))
            if len(xy) and (xy[:, 0].max() > w + diameter or xy[:, 1].max() > h + diameter):
                raise InputError(
                    f"{file}: image is {w} x {h} px but spot coordinates reach "
                    f"({xy[:, 0].max():.0f}, {xy[:, 1].max():.0f}); not the full-resolution image"
                )
            key = next((k for k in ("hires", "lowres") if k in images), None)
            if key is not None:
                scale = sf[_SCALE_KEYS[key]]
                eh, ew = images[key].shape[0] / scale, images[key].shape[1] / scale
                if abs(eh - h) > 0.05 * eh + 2 / scale or abs(ew - w) > 0.05 * ew + 2 / scale:
                    raise InputError(
                        f"{file}: image is {w} x {h} px but the {key} image and its scale factor "
                        f"imply about {ew:.0f} x {eh:.0f}; not the full-resolution image"
                    )
            arr = series.asarray()
    except InputError:
        raise
    except Exception as e:  # tifffile raises many types for broken files
        raise InputError(f"{file}: cannot read TIFF (truncated or corrupt?): {e}") from None
    # Move to (Y, X[, channels]) taking the first plane of any other axis.
    order = [axes.index("Y"), axes.index("X")]
    channel = next((axes.index(a) for a in "SC" if a in axes), None)
    if channel is not None:
        order.append(channel)
    rest = [i for i in range(arr.ndim) if i not in order]
    arr = np.transpose(arr, rest + order)[(0,) * len(rest)]
    return _to_uint8_rgb(arr, keep_grey=True)


def _read_counts(outs: Path):
    h5 = outs / "filtered_feature_bc_matrix.h5"
    if not h5.is_file():
        prefixed = sorted(outs.glob("*filtered_feature_bc_matrix.h5"))
        h5 = prefixed[0] if len(prefixed) == 1 else h5
    if h5.is_file():
        return read_10x_h5(h5)
    if (outs / "filtered_feature_bc_matrix").is_dir():
        return read_10x_mtx(outs / "filtered_feature_bc_matrix")
    raise InputError(
        f"{outs}: no count matrix (looked for filtered_feature_bc_matrix.h5 and "
        "filtered_feature_bc_matrix/ with matrix.mtx.gz)"
    )


def _check_spots_on_images(xy, images, sf, barcodes, pos_file: Path, spatial: Path) -> None:
    """Spots must lie on the hires/lowres images (within a spot diameter and 5 %): spots
    off the image mean wrong positions or wrong scale factors."""
    diameter = float(sf.get("spot_diameter_fullres", 0.0))
    for key, img in images.items():
        scale = float(sf[_SCALE_KEYS[key]])
        h, w = img.shape[0] / scale, img.shape[1] / scale  # the image in full-res px
        off = (xy[:, 0] > 1.05 * w + diameter) | (xy[:, 1] > 1.05 * h + diameter)
        if off.any():
            raise InputError(
                f"{pos_file}: {int(off.sum())} spots lie outside the {key} image "
                f"({spatial / IMAGE_FILES[key]}, {w:.0f} x {h:.0f} full-resolution px with "
                f"{_SCALE_KEYS[key]} {scale:g} from {SCALEFACTORS_FILE}), e.g. "
                f"{', '.join(barcodes[off][:3])}; wrong positions or scale factors?"
            )


def _default_library_id(outs: Path) -> str:
    outs = outs.resolve()
    name = outs.parent.name if outs.name == "outs" else outs.name
    return name or "library"


def read_visium(
    path: str | os.PathLike,
    library_id: str | None = None,
    load_images: Sequence[str] = ("hires", "lowres"),
    fullres_image: str | os.PathLike | None = None,
    in_tissue_only: bool = True,
) -> ad.AnnData:
    """Read a Space Ranger ``outs/`` folder into the in-memory form of this module.

    Parameters
    ----------
    path : str or PathLike
        The ``outs/`` folder (any folder holding ``spatial/``), or a folder holding
        ``outs/``.
    library_id : str, optional
        Key in ``uns["spatial"]``; defaults to the name of the folder holding ``outs/``.
    load_images : sequence of {"hires", "lowres"}
        Images to load when present (missing ones are skipped).
    fullres_image : str or PathLike, optional
        A full-resolution TIFF to load as ``images["fullres"]``, or ``"auto"`` to use
        the largest ``*.tif``/``*.tiff`` in ``outs/`` or its parent (if any). Its size
        is checked against the spot coordinates and the hires/lowres scale factors.
    in_tissue_only : bool
        Keep only spots with ``in_tissue == 1``.

    Returns
    -------
    anndata.AnnData

    Raises
    ------
    InputError
        Missing or corrupt files, matrix barcodes without positions, an empty matrix,
        NaN or negative coordinates, bad scale factors, or an implausible TIFF.
    """
    outs = _outs_dir(path)
    unknown = [k for k in load_images if k not in IMAGE_FILES]
    if unknown:
        raise InputError(f"unknown image {unknown[0]!r}: choose from {', '.join(IMAGE_FILES)}")
    spatial = _spatial_dir(outs)
    if not spatial.is_dir():
        raise InputError(
            f"{outs}: no spatial/ folder (looked for {', '.join(POSITION_FILES)} "
            f"and {SCALEFACTORS_FILE} in {spatial})"
        )
    counts, barcodes, var = _read_counts(outs)
    positions = read_positions(spatial)
    pos_file = _positions_file(spatial)
    missing = pd.Index(barcodes).difference(positions.index, sort=False)
    if len(missing):
        raise InputError(
            f"{pos_file}: {len(missing)} of {len(barcodes)} matrix barcodes have no position, "
            f"e.g. {', '.join(missing[:3])}"
        )
    pos = positions.loc[barcodes]
    if in_tissue_only:
        keep = (pos["in_tissue"] == 1).to_numpy()
        if not keep.any():
            raise InputError(f"{pos_file}: none of the matrix barcodes is in tissue")
        if not keep.all():
            counts, pos = counts[np.flatnonzero(keep)].tocsr(), pos.loc[keep]
    xy = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(np.float64)
    bad = ~np.isfinite(xy).all(axis=1) | (xy < 0).any(axis=1)
    if bad.any():
        raise InputError(
            f"{pos_file}: {int(bad.sum())} spots have NaN or negative pixel coordinates, "
            f"e.g. {', '.join(pos.index[bad][:3])}"
        )
    sf = read_scalefactors(spatial)

    images: dict[str, np.ndarray] = {}
    for key in load_images:
        if (spatial / IMAGE_FILES[key]).is_file():
            images[key] = read_image(spatial / IMAGE_FILES[key])
    _check_spots_on_images(xy, images, sf, pos.index, pos_file, spatial)
    metadata: dict[str, str] = {"source": "spaceranger", "path": str(outs)}
    if fullres_image is not None:
        tif = _find_fullres(outs) if str(fullres_image) == "auto" else Path(fullres_image)
        if tif is None:
            warnings.warn(f"no *.tif/*.tiff found in {outs} or its parent", stacklevel=2)
        else:
            images["fullres"] = _read_fullres(tif, xy, sf, images)
            metadata["source_image_path"] = str(tif)

    var = var.copy()
    var.index = make_index_unique(pd.Index(var["gene_symbols"].astype(str))).rename(None)
    obs = pd.DataFrame(
        {c: pos[c].to_numpy() for c in ("in_tissue", "array_row", "array_col")},
        index=pos.index.rename(None),
    )
    adata = ad.AnnData(X=counts, obs=obs, var=var)
    adata.obsm["spatial"] = xy
    lib = library_id or _default_library_id(outs)
    adata.uns["spatial"] = {lib: {"images": images, "scalefactors": sf, "metadata": metadata}}
    return adata


def library(adata: ad.AnnData, library_id: str | None = None) -> tuple[str | None, dict]:
    """The slide's ``uns["spatial"]`` library as ``(library_id, library dict)``.

    The library named ``library_id`` (KeyError when absent), else the first one (every
    reader here writes one library per slide); ``(None, {})`` when there is none.
    """
    libs = adata.uns.get("spatial") or {}
    if library_id is not None:
        if library_id not in libs:
            raise KeyError(f"uns['spatial'] has no library {library_id!r}")
        return str(library_id), libs[library_id] or {}
    for lib_id, lib in libs.items():
        return str(lib_id), lib or {}
    return None, {}


def image_scale(adata: ad.AnnData, image_key: str, library_id: str | None = None) -> float:
    """Factor from full-resolution pixels to pixels of image ``image_key``.

    ``"hires"`` -> ``tissue_hires_scalef``, ``"lowres"`` -> ``tissue_lowres_scalef``,
    ``"fullres"`` -> 1.0, from the library of :func:`library`. KeyError when the slide
    has no such scale factor.
    """
    if image_key == "fullres":
        return 1.0
    if image_key not in _SCALE_KEYS:
        raise KeyError(f"unknown image {image_key!r}")
    scalefactors = library(adata, library_id)[1].get("scalefactors") or {}
    return float(scalefactors[_SCALE_KEYS[image_key]])


def spot_diameter(adata: ad.AnnData, library_id: str | None = None) -> float | None:
    """Spot diameter in full-resolution pixels (library of :func:`library`), or None when
    unknown."""
    try:
        lib = library(adata, library_id)[1]
    except KeyError:
        return None
    d = (lib.get("scalefactors") or {}).get("spot_diameter_fullres")
    return None if d is None else float(d)
