"""Build the two sample data sets shipped in ``src/napari_stlnmf/samples/``.

usage: .venv/bin/python scripts/make_samples.py [--data /work/shared/data]

Deterministic (one seeded ``numpy.random.Generator``, ``SEED`` below); needs numpy, scipy,
pandas, anndata, h5py and Pillow. Running it twice gives byte-identical files.

``hippocampus/``
    The real spacexr (RCTD) toy Visium hippocampus: ``spots.h5ad`` (313 spots x 276 genes)
    and its real DropViz scRNA-seq ``reference.h5ad`` (510 cells x 307 genes, 17 types),
    re-saved with gzip level 9 (same content, about 10 % smaller). No image, no ground truth.

``mouse_brain/``
    The real 10x CytAssist FFPE mouse-brain ``spatial/`` folder (H&E hires + lowres,
    ``tissue_positions.csv``, ``scalefactors_json.json``) copied byte for byte into
    ``outs/spatial/``, plus ``outs/filtered_feature_bc_matrix.h5`` for its 2,310 in-tissue
    spots whose counts are composed from real hippocampus reference cells:

    1. Split: each type's 30 reference cells are permuted (seeded); the first 15 form the
       *spot pool* (names in ``spot_pool_cells.txt``), the other 15 the shipped
       ``reference.h5ad`` (CSR int32 counts, ``obs["cell_type"]``). The two are disjoint.
    2. Regions from the image: for every in-tissue spot, the mean RGB of the hires image
       inside the spot disk (radius ``spot_diameter_fullres * tissue_hires_scalef / 2``
       around ``(pxl_col, pxl_row) * tissue_hires_scalef``); each channel standardised,
       concatenated with the full-res spot coordinates divided by ``8`` spot pitches
       (pitch = median nearest-neighbour distance); k-means (``scipy.cluster.vq.kmeans2``,
       k-means++ start, seeded) into 5 clusters; then two synchronous passes of majority
       smoothing over each spot and its in-tissue hex neighbours (``(r, c +- 2)``,
       ``(r +- 1, c +- 1)``; a tie keeps the spot's label). Regions are renumbered 1..5 by
       decreasing size (0 means "unassigned" in the GUI).
    3. Region compositions: per region, ``k ~ U{3, 4, 5}`` dominant types drawn without
       replacement; they share 85 % by ``Dirichlet(2, ..., 2)``, the other types share the
       remaining 15 % by ``Dirichlet(1, ..., 1)``.
    4. Per spot: composition ``x exp(f_t)``, renormalised, where ``f_t`` is one smooth
       Gaussian random field per type (random Fourier features of a squared-exponential
       kernel, length scale 4 spot pitches, 2,000 features, standardised over the spots to
       mean 0 and sd 0.6).
    5. Cells per spot ``n = 1 + NegBin(r=2, mean 5)`` (mean 6, over-dispersed); cells per
       type ``~ Multinomial(n, p_spot)``; each cell drawn with replacement from its type's
       spot pool.
    6. Counts: expected = (sum of the chosen cells' raw counts) x per-gene platform effect
       (log-normal, sd 0.3, normalised to geometric mean 1) x per-spot capture efficiency
       (log-normal, sd 0.2); counts = Poisson(expected) as int32. Depth is left at the
       summed-cell depth. All 307 reference genes are kept; gene id = gene name = symbol
       (the source has no Ensembl IDs).
    7. Ground truth: ``truth.csv`` (barcode, region, n_cells, then the number of cells of
       each type; fractions = counts / n_cells) and ``regions.csv`` (barcode, region).
    ``mouse_brain/SOURCE.md`` is written with the resulting numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from PIL import Image
from scipy.cluster.vq import kmeans2
from scipy.spatial import cKDTree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from napari_stlnmf.io.tenx import write_10x_h5  # noqa: E402

SEED = 20240611
N_REGIONS = 5
POOL_PER_TYPE = 15
COORD_PITCHES = 8.0  # coordinates / (this many spot pitches) in the k-means features
SMOOTH_PASSES = 2
DOMINANT_SHARE = 0.85
GRF_LENGTH_PITCHES = 4.0
GRF_SD = 0.6
GRF_FEATURES = 2000
NB_R, NB_MEAN = 2.0, 5.0  # extra cells per spot beyond the first
PLATFORM_SD = 0.3
CAPTURE_SD = 0.2

OUT = REPO / "src" / "napari_stlnmf" / "samples"
MB_SRC = "visium_mouse_brain_cytassist_ffpe_hires_only"
HC_SRC = "visium_hippocampus_spacexr_demo"
SPATIAL_FILES = (
    "tissue_hires_image.png",
    "tissue_lowres_image.png",
    "tissue_positions.csv",
    "scalefactors_json.json",
)


def write_h5ad(adata: ad.AnnData, path: Path) -> None:
    adata.write_h5ad(path, compression="gzip", compression_opts=9)


def hippocampus(data: Path) -> None:
    out = OUT / "hippocampus"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("spots.h5ad", "reference.h5ad"):
        a = ad.read_h5ad(data / HC_SRC / name)
        write_h5ad(a, out / name)
        b = ad.read_h5ad(out / name)
        assert (a.X != b.X).nnz == 0 and a.obs.equals(b.obs) and a.var_names.equals(b.var_names)
        for k in a.obsm:
            assert np.array_equal(a.obsm[k], b.obsm[k])
        print(f"hippocampus/{name}: {b.n_obs} x {b.n_vars}")


def spot_mean_rgb(img: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Mean RGB inside a disk of ``radius`` pixels around each (x, y) (hires pixels)."""
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dx**2 + dy**2 <= radius**2
    dy, dx = dy[inside], dx[inside]
    xi = np.rint(x).astype(int)[:, None] + dx[None, :]
    yi = np.rint(y).astype(int)[:, None] + dy[None, :]
    h, w = img.shape[:2]
    xi, yi = np.clip(xi, 0, w - 1), np.clip(yi, 0, h - 1)
    return img[yi, xi].astype(float).mean(axis=1)


def hex_neighbours(rows: np.ndarray, cols: np.ndarray) -> list[np.ndarray]:
    where = {(int(r), int(c)): i for i, (r, c) in enumerate(zip(rows, cols))}
    steps = ((0, 2), (0, -2), (1, 1), (1, -1), (-1, 1), (-1, -1))
    return [
        np.array([where[(r + a, c + b)] for a, b in steps if (r + a, c + b) in where], dtype=int)
        for r, c in zip(rows.tolist(), cols.tolist())
    ]


def smooth(labels: np.ndarray, nbrs: list[np.ndarray], k: int) -> np.ndarray:
    new = labels.copy()
    for i, nb in enumerate(nbrs):
        votes = np.bincount(labels[np.append(nb, i)], minlength=k)
        if votes[labels[i]] < votes.max():
            new[i] = int(np.argmax(votes))
    return new


def kmeans(features: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    try:
        _, lab = kmeans2(features, k, iter=50, minit="++", rng=rng)
    except TypeError:  # scipy < 1.15
        _, lab = kmeans2(features, k, iter=50, minit="++", seed=rng)
    return lab


def random_fields(xy_pitch: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` smooth Gaussian fields at the points (spots x n), mean 0, sd ``GRF_SD``."""
    out = np.empty((len(xy_pitch), n))
    for t in range(n):
        w = rng.normal(0.0, 1.0 / GRF_LENGTH_PITCHES, size=(GRF_FEATURES, 2))
        b = rng.uniform(0.0, 2 * np.pi, size=GRF_FEATURES)
        a = rng.normal(size=GRF_FEATURES)
        f = np.cos(xy_pitch @ w.T + b) @ a
        out[:, t] = GRF_SD * (f - f.mean()) / f.std()
    return out


def mouse_brain(data: Path) -> None:
    rng = np.random.default_rng(SEED)
    out = OUT / "mouse_brain"
    spatial_out = out / "outs" / "spatial"
    spatial_out.mkdir(parents=True, exist_ok=True)
    spatial_src = data / MB_SRC / "outs" / "spatial"
    for name in SPATIAL_FILES:
        shutil.copyfile(spatial_src / name, spatial_out / name)

    # 1. split the reference
    ref = ad.read_h5ad(data / HC_SRC / "reference.h5ad")
    types = list(ref.obs["cell_type"].cat.categories)
    labels = ref.obs["cell_type"].astype(str).to_numpy()
    pool_idx, ref_idx = [], []
    for t in types:
        idx = rng.permutation(np.flatnonzero(labels == t))
        assert len(idx) == 2 * POOL_PER_TYPE, (t, len(idx))
        pool_idx.append(np.sort(idx[:POOL_PER_TYPE]))
        ref_idx.append(idx[POOL_PER_TYPE:])
    ref_keep = np.sort(np.concatenate(ref_idx))
    shipped = ref[ref_keep].copy()
    shipped.X = sp.csr_matrix(shipped.X, dtype=np.int32)
    shipped.obs["cell_type"] = pd.Categorical(
        shipped.obs["cell_type"].astype(str), categories=types
    )
    write_h5ad(shipped, out / "reference.h5ad")
    pool_all = np.sort(np.concatenate(pool_idx))
    (out / "spot_pool_cells.txt").write_text(
        "".join(f"{n}\n" for n in ref.obs_names[pool_all]), encoding="utf-8"
    )

    # 2. regions from the image
    sf = json.loads((spatial_src / "scalefactors_json.json").read_text())
    s = sf["tissue_hires_scalef"]
    pos = pd.read_csv(spatial_src / "tissue_positions.csv", index_col=0)
    pos = pos[pos["in_tissue"] == 1]
    barcodes = pos.index.to_numpy().astype(str)
    n_spots = len(pos)
    xy = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(float)
    d, _ = cKDTree(xy).query(xy, 2)
    pitch = float(np.median(d[:, 1]))
    img = np.asarray(Image.open(spatial_src / "tissue_hires_image.png").convert("RGB"))
    rgb = spot_mean_rgb(img, xy[:, 0] * s, xy[:, 1] * s, sf["spot_diameter_fullres"] * s / 2)
    rgb_z = (rgb - rgb.mean(0)) / rgb.std(0)
    coords = (xy - xy.mean(0)) / (COORD_PITCHES * pitch)
    lab = kmeans(np.hstack([rgb_z, coords]), N_REGIONS, rng)
    nbrs = hex_neighbours(pos["array_row"].to_numpy(), pos["array_col"].to_numpy())
    for _ in range(SMOOTH_PASSES):
        lab = smooth(lab, nbrs, N_REGIONS)
    sizes = np.bincount(lab, minlength=N_REGIONS)
    assert (sizes > 0).all(), sizes
    order = np.argsort(-sizes, kind="stable")
    renumber = np.empty(N_REGIONS, dtype=int)
    renumber[order] = np.arange(1, N_REGIONS + 1)
    region = renumber[lab]

    # 3. region compositions
    n_types = len(types)
    comp = np.zeros((N_REGIONS, n_types))
    dominant = []
    for r in range(N_REGIONS):
        k = int(rng.integers(3, 6))
        dom = rng.choice(n_types, size=k, replace=False)
        rest = np.setdiff1d(np.arange(n_types), dom)
        comp[r, dom] = DOMINANT_SHARE * rng.dirichlet(np.full(k, 2.0))
        comp[r, rest] = (1 - DOMINANT_SHARE) * rng.dirichlet(np.ones(len(rest)))
        dominant.append(dom[np.argsort(-comp[r, dom])])

    # 4. per-spot compositions with smooth random fields
    fields = random_fields(xy / pitch, n_types, rng)
    p = comp[region - 1] * np.exp(fields)
    p /= p.sum(1, keepdims=True)

    # 5. cells
    n_cells = 1 + rng.negative_binomial(NB_R, NB_R / (NB_R + NB_MEAN), size=n_spots)
    cell_counts = np.vstack([rng.multinomial(n, pi) for n, pi in zip(n_cells, p)])
    pool_by_type = [pool_idx[t] for t in range(n_types)]
    rows, cols = [], []
    for i in range(n_spots):
        for t in np.flatnonzero(cell_counts[i]):
            chosen = rng.choice(pool_by_type[t], size=int(cell_counts[i, t]), replace=True)
            rows.extend([i] * len(chosen))
            cols.extend(chosen.tolist())
    incidence = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(n_spots, ref.n_obs)
    )  # duplicates are summed
    summed = np.asarray((incidence @ sp.csr_matrix(ref.X, dtype=float)).todense())

    # 6. counts
    n_genes = ref.n_vars
    z = rng.normal(0.0, PLATFORM_SD, size=n_genes)
    platform = np.exp(z - z.mean())
    capture = np.exp(rng.normal(0.0, CAPTURE_SD, size=n_spots))
    expected = summed * platform[None, :] * capture[:, None]
    counts = rng.poisson(expected).astype(np.int32)
    genes = [str(g) for g in ref.var_names]
    write_10x_h5(
        out / "outs" / "filtered_feature_bc_matrix.h5",
        sp.csr_matrix(counts),
        list(barcodes),
        genes,
        genes,
    )

    # 7. ground truth
    truth = pd.DataFrame(cell_counts, index=pd.Index(barcodes, name="barcode"), columns=types)
    truth.insert(0, "n_cells", n_cells)
    truth.insert(0, "region", region)
    truth.to_csv(out / "truth.csv", lineterminator="\n")
    truth[["region"]].to_csv(out / "regions.csv", lineterminator="\n")

    umi = counts.sum(1)
    stats = {
        "n_spots": n_spots,
        "n_genes": n_genes,
        "pitch": pitch,
        "median_cells": float(np.median(n_cells)),
        "mean_cells": float(n_cells.mean()),
        "max_cells": int(n_cells.max()),
        "median_umi": float(np.median(umi)),
        "umi_range": (int(umi.min()), int(umi.max())),
        "region_sizes": np.bincount(region, minlength=N_REGIONS + 1)[1:].tolist(),
        "dominant": [[(types[t], comp[r, t]) for t in dominant[r]] for r in range(N_REGIONS)],
        "type_cells": dict(zip(types, cell_counts.sum(0).tolist())),
        "density": counts.astype(bool).mean(),
    }
    write_source_md(out / "SOURCE.md", stats)
    print(json.dumps({k: v for k, v in stats.items() if k != "dominant"}, default=str))


def write_source_md(path: Path, st: dict) -> None:
    regions = "\n".join(
        f"| {r + 1} | {st['region_sizes'][r]} | "
        + ", ".join(f"{t} {share:.2f}" for t, share in st["dominant"][r])
        + " |"
        for r in range(N_REGIONS)
    )
    n_spots, n_genes, pitch = st["n_spots"], st["n_genes"], st["pitch"]
    med_cells, mean_cells, max_cells = st["median_cells"], st["mean_cells"], st["max_cells"]
    med_umi, (umi_lo, umi_hi), density = st["median_umi"], st["umi_range"], st["density"]
    text = f"""# mouse_brain: real CytAssist H&E and spot layout, counts composed from real cells

A sample Visium slide made from real parts, with exact ground truth. Built by
`scripts/make_samples.py` (seed `{SEED}`, deterministic); the recipe is in that script's
docstring and summarised below.

## Origin and licences
- **Image and spots** (`outs/spatial/`: `tissue_hires_image.png`, `tissue_lowres_image.png`,
  `tissue_positions.csv`, `scalefactors_json.json`, byte-identical copies): 10x Genomics public
  dataset **CytAssist FFPE Mouse Brain, Rep 1** (Visium CytAssist, Space Ranger 2.x), taken from
  GitHub BioData-Yipeng/SpatialRNA-seq-mouse-brain-example-analysis-with-Seurat, commit
  `8d7417110db5b8f566e2397699a28af870664ba6`, path `data/spatial/`. 10x Genomics publishes its
  demo data under **CC BY 4.0**; credit 10x Genomics. The real count matrix is not included.
- **Cells** (the counts in `outs/filtered_feature_bc_matrix.h5` and `reference.h5ad`): the
  hippocampus scRNA-seq reference of the spacexr (RCTD) package, GitHub dmcable/spacexr, commit
  `744153c633da7ff70d0988308a160633fcf44af7`, `inst/extdata/Reference/Visium_Ref/` (**GPL-3.0**);
  510 cells (17 types x 30) x 307 genes from DropViz (Saunders A. et al., *Cell* 174,
  1015-1030, 2018); used in Cable D.M. et al., *Nat. Biotechnol.* 40, 517-526 (2022).

The counts are **synthetic compositions of real cells**: they are not the measured expression of
this section, and the cell types (hippocampal DropViz types) need not match the anatomy under each
spot. Regions follow the image's structure, but their compositions are random.

## Files
| file | content |
|---|---|
| `outs/spatial/*` | real Space Ranger 2.x spatial folder (hires 1872 x 2000, lowres 562 x 600) |
| `outs/filtered_feature_bc_matrix.h5` | 10x HDF5 v3, {n_spots:,} in-tissue spots x {n_genes} genes|
| `reference.h5ad` | 255 real cells (15 per type) x {n_genes} genes, CSR int32, `obs["cell_type"]` |
| `spot_pool_cells.txt` | the other 255 cells (15 per type), used only to build the spots |
| `truth.csv` | `barcode, region, n_cells`, then the number of cells of each type per spot |
| `regions.csv` | `barcode, region` (1..5) |

Gene ids: the source has no Ensembl IDs, so `features/id` = `features/name` = the MGI symbol
(none are invented); `features/genome` is `unknown`.

## Recipe (seed {SEED})
1. Each type's 30 cells are permuted; 15 go to the spot pool, 15 to the shipped reference
   (disjoint: the reference never contains a cell that is in a spot).
2. Regions: mean RGB of the hires image inside each spot disk (radius
   `spot_diameter_fullres * tissue_hires_scalef / 2`), standardised, plus the spot coordinates
   divided by {COORD_PITCHES:g} spot pitches (pitch {pitch:.0f} full-res px); k-means
   (k-means++, seeded) into {N_REGIONS} clusters; {SMOOTH_PASSES} passes of majority smoothing
   over the hex neighbours; numbered 1..{N_REGIONS} by decreasing size.
3. Region composition: 3-5 dominant types share {DOMINANT_SHARE:.0%} (Dirichlet(2)), the rest share
   {1 - DOMINANT_SHARE:.0%} (Dirichlet(1)).
4. Spot composition = region composition x exp(Gaussian random field per type; squared-exponential
   kernel, length {GRF_LENGTH_PITCHES:g} pitches, sd {GRF_SD}), renormalised.
5. Cells per spot = 1 + NegBin(r={NB_R:g}, mean {NB_MEAN:g}); cells per type ~ Multinomial; each
   cell drawn with replacement from its type's 15 pool cells.
6. Counts = Poisson(sum of the cells' raw counts x per-gene platform effect (log-normal sd
   {PLATFORM_SD}, geometric mean 1) x per-spot capture efficiency (log-normal sd {CAPTURE_SD}));
   depth left at the summed-cell depth.

## Numbers
- Spots {n_spots:,}; genes {n_genes} (all shared with `reference.h5ad`); 17 types.
- Cells per spot: median {med_cells:g}, mean {mean_cells:.2f}, max {max_cells}.
- UMI per spot: median {med_umi:g} (range {umi_lo}-{umi_hi});
  {density:.0%} of the matrix entries are non-zero.

| region | spots | dominant types (share of the region composition) |
|---|---|---|
{regions}

Ground truth is a **cell-number fraction**: `truth[type] / truth["n_cells"]`.
"""
    path.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "__init__.py").touch()
    hippocampus(args.data)
    mouse_brain(args.data)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"samples folder: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
