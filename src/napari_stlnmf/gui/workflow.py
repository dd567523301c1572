"""What the dock widget does, without Qt: inputs from layers, reference peeking, applying
results back to the spots layer. The numbers come from :mod:`napari_stlnmf.pipeline`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.errors import InputError
from .layers import META

__all__ = [
    "reference_columns",
    "slide_of",
    "regions_of",
    "apply_result",
    "available_devices",
]


def reference_columns(path: str | Path) -> list[str]:
    """The ``obs`` columns of a single-cell ``.h5ad`` that can hold cell types (usual names
    first, see :func:`napari_stlnmf.io.reference.label_columns`), read without loading the
    matrix; ``[]`` for a signature table / MTX folder (no label column to choose).

    Raises
    ------
    InputError
        The file is unreadable, or it is a spatial slide / has no column that can hold
        cell types (the message says which).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"reference not found: {p}")
    if p.suffix.lower() != ".h5ad":
        return []
    try:
        import h5py
        from anndata.io import read_elem

        with h5py.File(p, "r") as f:
            obs = read_elem(f["obs"])
            spatial = "obsm" in f and "spatial" in f["obsm"]
    except Exception as e:  # anything h5py / anndata raise for a broken file
        raise InputError(f"reference {p} is not a readable .h5ad file ({e})") from None
    from ..io.reference import check_not_a_slide, label_columns

    cols = label_columns(obs)
    check_not_a_slide(cols, spatial, p.name)
    if not cols:
        raise InputError(
            f"reference {p.name} has no column that can hold cell types (text or category "
            f"with at least 2 values); its columns: {', '.join(map(str, obs.columns[:10]))}"
        )
    return cols


def slide_of(spots_layer):
    """The AnnData behind a spots layer made by this plugin."""
    m = spots_layer.metadata.get(META, {}) if spots_layer is not None else {}
    if m.get("kind") != "spots" or m.get("adata") is None:
        name = getattr(spots_layer, "name", None)
        raise InputError(
            f"layer {name!r} is not a slide opened with napari-stlnmf: open a Space Ranger "
            "folder or .h5ad (File > Open) or a sample"
        )
    return m["adata"]


def regions_of(spots_layer, labels_layer=None) -> np.ndarray:
    """Region per spot: from the given Regions layer (label under each spot centre), else
    the spots layer's ``region`` feature."""
    if labels_layer is not None:
        from .regions import sync_regions

        return sync_regions(labels_layer, spots_layer)
    m = spots_layer.metadata[META]
    return np.asarray(m["features"]["region"])


def apply_result(spots_layer, result) -> None:
    """Proportions and the dominant type into the spots layer's features."""
    from ..io.export import dominant_names

    props = result.table[result.cell_types].to_numpy(dtype=np.float64)
    dominant = dominant_names(props, result.cell_types)
    m = spots_layer.metadata[META]
    targets = [m["features"]]
    if hasattr(spots_layer, "features") and len(spots_layer.features) == len(props):
        targets.append(spots_layer.features)
    for feats in targets:
        for j, t in enumerate(result.cell_types):
            feats[f"proportion_{t}"] = props[:, j]
        feats["dominant_type"] = dominant


def available_devices() -> list[str]:
    """Choices for the device box: auto and cpu always, cuda when torch sees a GPU."""
    import torch

    from ..options import DEVICES

    return [d for d in DEVICES if d != "cuda" or torch.cuda.is_available()]


def warm_up_torch() -> None:
    """Run one tiny Adam step on the UI thread once.

    The first optimiser step imports a good part of ``torch.distributed`` lazily; done in
    the training thread, that import holds the interpreter long enough to freeze the
    viewer for ~0.5 s. Doing it when the widget opens moves the cost to where a user
    expects to wait.
    """
    import torch

    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    (p**2).sum().backward()
    opt.step()
