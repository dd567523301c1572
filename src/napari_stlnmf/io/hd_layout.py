"""Where Space Ranger puts a Visium HD run's files: folder names and a cheap check.

Plain ``os``/``re``/``pathlib`` only, so napari's reader lookup and the CLI parser can
recognise HD folders without importing pandas or anndata; the reading itself is in
:mod:`.visium_hd`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["BIN_SIZES", "bin_folder_name", "visium_hd_kind"]

#: Bin sizes (µm) Space Ranger writes under ``binned_outputs/``.
BIN_SIZES = (2, 8, 16)
BINNED = "binned_outputs"
SEGMENTED = "segmented_outputs"
POSITIONS_PARQUET = "tissue_positions.parquet"
_BIN_DIR = re.compile(r"^square_(\d{3})um$")


def bin_folder_name(bin_size_um: int) -> str:
    """Space Ranger's folder for bins of ``bin_size_um`` µm, e.g. ``square_008um``."""
    return f"square_{int(bin_size_um):03d}um"


def _hd_root(path: Path) -> Path | None:
    """The ``outs/`` folder of an HD run given it, its parent, ``binned_outputs/``, a bin
    folder or ``segmented_outputs/``; None when ``path`` is none of these."""
    for cand in (path, path / "outs"):
        if (cand / BINNED).is_dir() or (cand / SEGMENTED).is_dir():
            return cand
    if path.name in (BINNED, SEGMENTED):
        return path.parent
    if _BIN_DIR.match(path.name) and path.parent.name == BINNED:
        return path.parent.parent
    return None


def visium_hd_kind(path: str | os.PathLike) -> str | None:
    """``"bins"``, ``"cells"`` or None: what :func:`~napari_stlnmf.io.spatial.read_spatial`
    reads from ``path``.

    Cheap (looks at folder names only, never raises): ``"cells"`` for a
    ``segmented_outputs/`` folder, ``"bins"`` for an HD ``outs/`` folder (with
    ``binned_outputs/``), the folder holding it, ``binned_outputs/`` or one bin folder.
    """
    try:
        p = Path(path)
        if not p.is_dir():
            return None
        if p.name == SEGMENTED:
            return "cells"
        if _BIN_DIR.match(p.name) and (p / "spatial" / POSITIONS_PARQUET).is_file():
            return "bins"
        root = _hd_root(p)
        if root is not None and (root / BINNED).is_dir():
            return "bins"
        if root is not None and (root / SEGMENTED).is_dir():
            return "cells"
    except OSError:
        return None
    return None
