"""npe2 reader: a Space Ranger ``outs/`` folder (Visium or Visium HD), a spatial ``.h5ad``
or a SpatialData ``.zarr`` store (with the optional spatialdata package) -> image + spots.

``get_reader`` only looks at the path (cheap checks, never raises); the returned function
reads the slide and builds the layers with :mod:`napari_stlnmf.gui.layers`.
"""

from __future__ import annotations

from pathlib import Path


def _is_outs(p: Path) -> bool:
    from .io.hd_layout import visium_hd_kind

    if visium_hd_kind(p) is not None:  # Visium HD: binned_outputs/ or segmented_outputs/
        return True
    for d in (p, p / "outs"):
        spatial = d / "spatial"
        if (spatial / "scalefactors_json.json").exists() or any(
            (spatial / f).exists() for f in ("tissue_positions.csv", "tissue_positions_list.csv")
        ):
            return True
    return False


def _is_spatialdata(p: Path) -> bool:
    """A SpatialData zarr store, where the optional spatialdata package is installed."""
    from importlib.util import find_spec

    from .io.spatialdata_zarr import is_spatialdata_store

    return is_spatialdata_store(p) and find_spec("spatialdata") is not None


def _is_spatial_h5ad(p: Path) -> bool:
    """An AnnData file with spot coordinates (obsm["spatial"] or x/y obs columns)."""
    try:
        import h5py

        from .io.tables import XY_COLUMNS

        with h5py.File(p, "r") as f:
            if "obsm" in f and "spatial" in f["obsm"]:
                return True
            obs = f.get("obs")
            if obs is None:
                return False
            names = {str(k).lower() for k in obs.keys()}
            return any(x in names and y in names for x, y in XY_COLUMNS)
    except Exception:  # not HDF5, unreadable, ...: not ours
        return False


def get_reader(path):
    """Return a reader function for ``path`` if it is a slide we can open, else None."""
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        p = Path(path)
        if p.is_dir() and _is_outs(p):
            return read_slide
        if p.is_dir() and _is_spatialdata(p):
            return read_slide
        if p.is_file() and p.suffix.lower() == ".h5ad" and _is_spatial_h5ad(p):
            return read_slide
    except OSError:
        return None
    return None


def read_slide(path, image: str = "hires"):
    """Layer data for a slide: histology image (hires by default) and spots."""
    from .gui.layers import slide_layers
    from .io.spatial import read_spatial

    if isinstance(path, list | tuple):
        path = path[0]
    from .io.hd_layout import visium_hd_kind

    kw = {}
    if image == "fullres":
        kw["fullres_image"] = "auto"
    if visium_hd_kind(Path(path)) == "bins":
        kw["load_images"] = ("hires", "lowres", "cytassist")
    adata = read_spatial(path, **kw)
    return slide_layers(adata, image=image, name=None)
