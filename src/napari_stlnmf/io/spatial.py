"""One entry point for every spatial input: picks the reader from the path."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad

from .errors import InputError
from .spatialdata_zarr import is_spatialdata_store, read_spatialdata
from .tables import read_h5ad_spatial, read_tables
from .visium import read_visium
from .visium_hd import read_visium_hd, read_visium_hd_cells, visium_hd_kind

__all__ = ["read_spatial"]

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")


def read_spatial(
    path: str | os.PathLike, coords: str | os.PathLike | None = None, **kw
) -> ad.AnnData:
    """Read a spatial slide into the in-memory form of :mod:`napari_stlnmf.io.visium`.

    Parameters
    ----------
    path : str or PathLike
        A SpatialData ``.zarr`` store ->
        :func:`~napari_stlnmf.io.spatialdata_zarr.read_spatialdata`; a Space Ranger
        ``outs/`` folder (or a folder holding ``outs/``) ->
        :func:`~napari_stlnmf.io.visium.read_visium`; a Visium HD one (with
        ``binned_outputs/``), ``binned_outputs/`` or a bin folder ->
        :func:`~napari_stlnmf.io.visium_hd.read_visium_hd`; a ``segmented_outputs/``
        folder -> :func:`~napari_stlnmf.io.visium_hd.read_visium_hd_cells`; a ``.h5ad`` file ->
        :func:`~napari_stlnmf.io.tables.read_h5ad_spatial`; a ``.csv``/``.tsv``/``.txt``
        counts table (optionally gzipped) -> :func:`~napari_stlnmf.io.tables.read_tables`.
    coords : str or PathLike, optional
        Coordinates table; required for a counts table.
    **kw
        Passed on to the chosen reader (e.g. ``library_id``, ``fullres_image`` for
        Visium; ``bin_size``, ``rebin_um`` for Visium HD bins, an error elsewhere when not
        None; ``orientation``, ``sep`` for tables).

    Returns
    -------
    anndata.AnnData

    Raises
    ------
    InputError
        Missing path, unsupported file type, a counts table without ``coords``, or a
        bare 10x ``.h5`` (which has no spot positions).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file or folder: {p}")
    hd_kw = {k: v for k in ("bin_size", "rebin_um") if (v := kw.pop(k, None)) is not None}
    kind = visium_hd_kind(p)
    if kind == "bins":
        return read_visium_hd(p, **hd_kw, **kw)
    if is_spatialdata_store(p):
        if "rebin_um" in hd_kw:
            raise InputError(f"{p}: --rebin-um applies to Space Ranger HD folders, not stores")
        return read_spatialdata(p, bin_size=hd_kw.get("bin_size"), **kw)
    if hd_kw:
        raise InputError(
            f"{p}: not the bins of a Visium HD outs/ folder (no binned_outputs/): "
            f"{' / '.join(hd_kw)} do not apply"
        )
    if kind == "cells":
        return read_visium_hd_cells(p, **kw)
    if p.is_dir():
        return read_visium(p / "outs" if (p / "outs").is_dir() else p, **kw)
    name = p.name.lower()
    if name.endswith(".h5ad"):
        return read_h5ad_spatial(p, **kw)
    if name.endswith(_TABLE_SUFFIXES):
        if coords is None:
            raise InputError(
                f"{p}: a counts table needs spot coordinates: pass --coords COORDS.csv "
                "(barcode, x, y columns)"
            )
        return read_tables(p, coords, **kw)
    if name.endswith(".h5"):
        hint = f" ({p.parent})" if (p.parent / "spatial").is_dir() else ""
        raise InputError(
            f"{p}: a 10x .h5 matrix has no spot positions; pass the Space Ranger outs/ "
            f"folder that holds it and spatial/{hint} instead"
        )
    raise InputError(
        f"{p}: unsupported file type (expected a Space Ranger outs/ folder, .h5ad, "
        ".csv/.tsv/.txt counts table)"
    )
