"""Tissue regions per spot, from a table (barcode, region) or a painted label image.

A label image is an integer image in the pixel grid of one of the slide's images (hires,
lowres or full resolution; told apart by shape). Each spot takes the label under its
centre; 0 means unassigned.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["read_regions", "regions_from_label_image", "image_shapes", "write_label_image"]

_IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def image_shapes(adata) -> dict[str, tuple[tuple[int, int], float]]:
    """``{image key: ((height, width), scale from full-resolution px)}`` of a slide."""
    out = {}
    for lib in (adata.uns.get("spatial") or {}).values():
        images = lib.get("images") or {}
        sf = lib.get("scalefactors") or {}
        for key, img in images.items():
            scale = 1.0 if key == "fullres" else sf.get(f"tissue_{key}_scalef")
            if scale is None:
                continue
            out[key] = (tuple(np.asarray(img).shape[:2]), float(scale))
        break  # one library per slide here
    return out


def regions_from_label_image(labels: np.ndarray, coords: np.ndarray, scale: float) -> np.ndarray:
    """Label under each spot centre (``coords`` in full-resolution (x, y) px)."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"a label image must be 2-D, got shape {lab.shape}")
    col = np.rint(np.asarray(coords)[:, 0] * scale).astype(np.int64)
    row = np.rint(np.asarray(coords)[:, 1] * scale).astype(np.int64)
    inside = (row >= 0) & (row < lab.shape[0]) & (col >= 0) & (col < lab.shape[1])
    out = np.zeros(len(coords), dtype=np.int64)
    out[inside] = lab[row[inside], col[inside]]
    return out


def _read_label_image(p: Path) -> np.ndarray:
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            img = tifffile.imread(p)
        else:
            from PIL import Image

            with Image.open(p) as im:
                img = np.asarray(im)
    except Exception as e:
        raise InputError(f"region label image {p} is not readable ({e})") from None
    img = np.squeeze(img)
    if img.ndim != 2:
        raise InputError(f"region label image {p} must be one 2-D channel, got shape {img.shape}")
    if not np.issubdtype(img.dtype, np.integer):
        if not np.all(np.isfinite(img)) or np.any(img != np.round(img)):
            raise InputError(f"region label image {p} must hold integer labels")
        img = img.astype(np.int64)
    if (img < 0).any():
        raise InputError(f"region label image {p} has negative labels")
    return img


def read_regions(path: str | os.PathLike, adata) -> np.ndarray:
    """Region of each spot of ``adata`` from a CSV/TSV (barcode, region) or a label image.

    Parameters
    ----------
    path : path
        ``.csv``/``.tsv`` with the barcode in the first column and the region in the second
        (or a column named ``region``); or a ``.tif``/``.tiff``/``.png`` label image with the
        shape of the slide's hires, lowres or full-resolution image.
    adata : AnnData
        The slide (``obs_names`` = barcodes, ``obsm["spatial"]`` = full-res (x, y) px).

    Returns
    -------
    ndarray of shape (n_spots,)
        Integer labels for an image; the table's values (int when all are integers,
        else str) for a table.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"regions file not found: {p}")
    if p.suffix.lower() in _IMAGE_SUFFIXES:
        img = _read_label_image(p)
        shapes = image_shapes(adata)
        for _key, (shape, scale) in shapes.items():
            if tuple(img.shape) == tuple(shape):
                return regions_from_label_image(img, adata.obsm["spatial"], scale)
        have = ", ".join(f"{k} {s[0]}x{s[1]}" for k, (s, _) in shapes.items()) or "none loaded"
        raise InputError(
            f"region label image {p} is {img.shape[0]}x{img.shape[1]} px, which matches none "
            f"of the slide's images ({have}); paint it on one of those"
        )
    try:
        table = pd.read_csv(p, sep=None, engine="python", dtype=str, keep_default_na=False)
    except Exception as e:
        raise InputError(f"regions file {p} is not a readable table ({e})") from None
    if table.shape[1] < 2:
        raise InputError(f"regions file {p} needs two columns: barcode, region")
    cols = {c.lower(): c for c in table.columns}
    region_col = cols.get("region", table.columns[1])
    barcodes = table[table.columns[0]].astype(str)
    if barcodes.duplicated().any():
        dup = barcodes[barcodes.duplicated()].tolist()[:3]
        raise InputError(f"regions file {p} lists barcodes more than once: {dup}")
    lookup = pd.Series(table[region_col].to_numpy(), index=barcodes.to_numpy())
    missing = [b for b in adata.obs_names if b not in lookup.index]
    if missing:
        raise InputError(
            f"regions file {p} has no region for {len(missing)} of {adata.n_obs} spots "
            f"(e.g. {', '.join(missing[:3])})"
        )
    values = lookup.loc[list(adata.obs_names)].to_numpy()
    try:
        return values.astype(np.int64)
    except ValueError:
        return values.astype(str)


def write_label_image(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write a region label image as a compressed TIFF, atomically."""
    import tifffile

    from .atomic import atomic_write

    arr = np.asarray(labels)
    dtype = np.uint8 if arr.max(initial=0) < 256 else np.uint16 if arr.max() < 65536 else np.uint32
    return atomic_write(
        path, lambda tmp: tifffile.imwrite(tmp, arr.astype(dtype), compression="zlib")
    )
