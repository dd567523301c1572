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
from .visium import library

__all__ = [
    "read_regions",
    "regions_from_label_image",
    "labels_at_spots",
    "read_label_image",
    "image_shapes",
    "write_label_image",
]

_IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def image_shapes(adata) -> dict[str, tuple[tuple[int, int], float]]:
    """``{image key: ((height, width), scale from full-resolution px)}`` of a slide."""
    lib = library(adata)[1]
    sf = lib.get("scalefactors") or {}
    out = {}
    for key, img in (lib.get("images") or {}).items():
        scale = 1.0 if key == "fullres" else sf.get(f"tissue_{key}_scalef")
        if scale is None:
            continue
        out[key] = (tuple(np.asarray(img).shape[:2]), float(scale))
    return out


def labels_at_spots(
    labels: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: float = 0.0
) -> np.ndarray:
    """Label of each spot from a label image, spots given in the image's pixel grid.

    Parameters
    ----------
    labels : ndarray (H, W) of int
    rows, cols : ndarray (m,)
        Spot centres in pixels of ``labels`` (fractional allowed).
    radius : float, default 0
        0: the label under the centre. Otherwise the most common label over the spot's
        disk of this radius (in pixels), 0 (unassigned) included; ties go to the
        smaller label. Pixels outside the image count as 0.

    Returns
    -------
    ndarray (m,) of int64
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"a label image must be 2-D, got shape {lab.shape}")
    r0 = np.rint(np.asarray(rows, dtype=np.float64)).astype(np.int64)
    c0 = np.rint(np.asarray(cols, dtype=np.float64)).astype(np.int64)
    if radius <= 0.5:
        return _gather(lab, r0, c0)
    span = int(np.ceil(radius))
    dr, dc = np.mgrid[-span : span + 1, -span : span + 1]
    disk = dr**2 + dc**2 <= radius**2
    dr, dc = dr[disk], dc[disk]
    out = np.empty(len(r0), dtype=np.int64)
    # blocks of spots keep the (spots x disk pixels) gather small
    step = max(1, 4_000_000 // len(dr))
    for s in range(0, len(r0), step):
        g = _gather(lab, r0[s : s + step, None] + dr, c0[s : s + step, None] + dc)
        values = np.unique(g)
        counts = np.stack([(g == v).sum(1) for v in values], axis=1)
        out[s : s + step] = values[np.argmax(counts, axis=1)]
    return out


def _gather(lab: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    inside = (r >= 0) & (r < lab.shape[0]) & (c >= 0) & (c < lab.shape[1])
    out = np.zeros(r.shape, dtype=np.int64)
    out[inside] = lab[r[inside], c[inside]]
    return out


def regions_from_label_image(
    labels: np.ndarray, coords: np.ndarray, scale: float, radius: float = 0.0
) -> np.ndarray:
    """Label under each spot centre (``coords`` in full-resolution (x, y) px; ``scale``
    from full-resolution px to the label image's px); see :func:`labels_at_spots`."""
    xy = np.asarray(coords, dtype=np.float64)
    return labels_at_spots(labels, xy[:, 1] * scale, xy[:, 0] * scale, radius)


def read_label_image(path: str | os.PathLike) -> np.ndarray:
    """A 2-D integer label image from a TIFF or PNG (InputError naming the file if not)."""
    p = Path(path)
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
        img = read_label_image(p)
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
    if table[[table.columns[0], region_col]].isna().to_numpy().any():  # short rows -> None
        raise InputError(f"regions file {p} has rows without a barcode and a region")
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
