"""Small cohorts for the tests: slides cut from the bundled mouse_brain sample."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from napari_stlnmf.io.samples import load_sample

TINY = ["--epochs", "2", "--layers", "8"]


def write_cohort(folder: Path, n_good: int = 3, bad_at: int | None = 2) -> Path:
    """``n_good`` slides (.h5ad, regions CSV) cut from the sample in x-bands, a corrupt
    slide at row ``bad_at`` (None: none), the sample's reference as ``ref.h5ad`` and
    ``manifest.csv`` (relative paths). Returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    sample = load_sample("mouse_brain")
    a = sample.spatial
    x = a.obsm["spatial"][:, 0]
    edges = np.quantile(x, np.linspace(0, 1, n_good + 1))
    band = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_good - 1)
    rows = []
    for i in range(n_good):
        m = band == i
        sub = ad.AnnData(X=a.X[m].copy(), obs=pd.DataFrame(index=a.obs_names[m]), var=a.var.copy())
        sub.obsm["spatial"] = a.obsm["spatial"][m]
        sub.write_h5ad(folder / f"s{i}.h5ad")
        regions = sample.regions[a.obs_names[m]].rename("region").rename_axis("barcode")
        regions.to_csv(folder / f"s{i}_regions.csv")
        rows.append((f"s{i}.h5ad", f"s{i}_regions.csv", f"slide{i}"))
    if bad_at is not None:
        (folder / "bad.h5ad").write_bytes(b"not an h5ad file")
        rows.insert(bad_at, ("bad.h5ad", "", "bad"))
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows, columns=["path", "regions", "name"]).to_csv(manifest, index=False)
    sample.reference.write_h5ad(folder / "ref.h5ad")
    return manifest
