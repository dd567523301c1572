"""The sample data sets shipped inside the package (``napari_stlnmf/samples/``).

``mouse_brain``
    Real 10x CytAssist FFPE mouse-brain H&E and in-tissue spot layout (2,310 spots) with
    counts composed from real hippocampus scRNA-seq cells placed by an anatomical drawing
    of the H&E (11 regions: cortex, fibre tracts, hippocampal CA1/CA3/dentate cell layers
    and neuropil, thalamus, ventricle/choroid plexus, ...), a disjoint real reference of
    the same types (15 cells per type) and exact ground truth.
``hippocampus``
    The real spacexr (RCTD) toy Visium hippocampus (313 spots, no image) and its real
    DropViz reference; 124 genes shared; no ground truth.

``scripts/make_samples.py`` builds them; each folder's ``SOURCE.md`` gives origin,
licence and recipe. Nothing here imports napari.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import pandas as pd

from .errors import InputError
from .tables import read_h5ad_spatial
from .visium import read_visium

__all__ = ["SAMPLES", "Sample", "load_sample", "sample_path"]

SAMPLES = ("mouse_brain", "hippocampus")

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"

_ATTRIBUTION = {
    "mouse_brain": (
        "H&E image and spot positions: 10x Genomics, CytAssist FFPE Mouse Brain Rep 1 "
        "(CC BY 4.0). Spot counts: synthetic mixtures of real cells from the spacexr/RCTD "
        "hippocampus reference (GPL-3.0; DropViz, Saunders et al. 2018; Cable et al. 2022), "
        "placed by an anatomical drawing of the H&E and composed by scripts/make_samples.py."
    ),
    "hippocampus": (
        "Visium hippocampus spots and scRNA-seq reference from the spacexr/RCTD vignette "
        "(GPL-3.0; Cable et al. 2022; reference cells from DropViz, Saunders et al. 2018)."
    ),
}


@dataclass
class Sample:
    """One bundled sample.

    Attributes
    ----------
    name : str
        One of :data:`SAMPLES`.
    spatial : anndata.AnnData
        The slide in the project's in-memory form (CSR counts, ``obsm["spatial"]`` in
        full-resolution pixels, ``uns["spatial"]``).
    reference : anndata.AnnData
        Single-cell reference, raw counts, cell type in ``obs[label_key]``.
    label_key : str
        The ``reference.obs`` column holding the cell type.
    regions : pandas.Series or None
        Region (int, 1..K) per spot barcode, where known.
    region_names : dict of int to str, or None
        Name of each region id (``mouse_brain``: anatomical, e.g. ``"CA1_layer"``).
    truth : pandas.DataFrame or None
        True cell-number fractions, spot barcodes x cell types, rows sum to 1.
    n_cells : pandas.Series or None
        Number of cells per spot barcode.
    attribution : str
        Origin and licence, one paragraph.
    """

    name: str
    spatial: ad.AnnData
    reference: ad.AnnData
    label_key: str
    regions: pd.Series | None
    truth: pd.DataFrame | None
    n_cells: pd.Series | None
    attribution: str
    region_names: dict[int, str] | None = None


def sample_path(name: str) -> Path:
    """The folder of the bundled sample ``name``.

    Raises
    ------
    InputError
        ``name`` is not one of :data:`SAMPLES`, or its folder is missing.
    """
    if name not in SAMPLES:
        raise InputError(f"unknown sample {name!r}: choose from {', '.join(SAMPLES)}")
    path = SAMPLES_DIR / name
    if not path.is_dir():
        raise InputError(f"{path}: sample folder missing (run scripts/make_samples.py)")
    return path


def _read_reference(file: Path, label_key: str) -> ad.AnnData:
    if not file.is_file():
        raise InputError(f"no such file: {file}")
    ref = ad.read_h5ad(file)
    if label_key not in ref.obs:
        raise InputError(f"{file}: no obs column {label_key!r}")
    return ref


def load_sample(name: str) -> Sample:
    """Load a bundled sample (see the module docstring).

    Parameters
    ----------
    name : str
        ``"mouse_brain"`` or ``"hippocampus"``.

    Returns
    -------
    Sample

    Raises
    ------
    InputError
        Unknown name (the message lists the available ones) or missing files.
    """
    path = sample_path(name)
    label_key = "cell_type"
    reference = _read_reference(path / "reference.h5ad", label_key)
    if name == "hippocampus":
        spatial = read_h5ad_spatial(path / "spots.h5ad")
        return Sample(name, spatial, reference, label_key, None, None, None, _ATTRIBUTION[name])

    spatial = read_visium(path / "outs", library_id=name)
    table = pd.read_csv(path / "truth.csv", index_col="barcode")
    table.index = table.index.astype(str)
    missing = spatial.obs_names.difference(table.index)
    if len(missing):
        raise InputError(f"{path / 'truth.csv'}: {len(missing)} spots have no ground truth")
    table = table.loc[spatial.obs_names]
    regions = table["region"].astype(int).rename("region")
    n_cells = table["n_cells"].astype(int).rename("n_cells")
    types = [c for c in table.columns if c not in ("region", "n_cells")]
    truth = table[types].astype(float).div(n_cells, axis=0)
    names = None
    if (path / "region_names.csv").is_file():
        key = pd.read_csv(path / "region_names.csv")
        names = {int(r): str(n) for r, n in zip(key["region"], key["name"])}
    return Sample(
        name, spatial, reference, label_key, regions, truth, n_cells, _ATTRIBUTION[name], names
    )
