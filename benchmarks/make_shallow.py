"""Shallow variants of the shared bench datasets: ~3 cells per spot, 60-300 UMIs per spot.

For every dataset in ``../shared/bench/datasets`` (osmfish_sscortex, seqfish_plus_cortex,
seqfish_plus_cortex_benchmark, synthetic) write ``benchmarks/out/shallow/<name>_shallow/`` in the
same STANDARD FORMAT (``spatial.h5ad`` with raw integer counts and ``obsm["spatial"]``,
``reference.h5ad`` = byte-identical copy of the original, ``truth.csv`` = cell-number fractions,
``INFO.json``):

- the spots are rebuilt from the same single cells with the originals' spot geometry, only
  smaller, so that about 3 cells fall in each spot:

  * ``seqfish_plus_cortex``: hexagonal full tiling of cortex FOVs 0-4 (as ``make_spots.py``),
    centre spacing 315 px instead of 500 px;
  * ``seqfish_plus_cortex_benchmark``: per-FOV square bins (Li et al. 2022 style) of side
    320 px instead of 500 px, anchored at each FOV's lowest cell coordinate; ``obs["region"]``
    = ``"fov<k>"`` as in the original;
  * ``osmfish_sscortex``: the original Visium-like lattice centres with a 42 um circle instead
    of 55 um, so every spot cell is one of the original spot cells and the reference (cells
    outside every original spot) stays spatially disjoint;
  * ``synthetic``: ``make_synthetic.py --seed 0`` re-run with 1-5 cells per spot (same
    reference, profiles, composition fields and platform effect; asserted equal);

- each spot's summed counts are down-sampled without replacement (multivariate
  hypergeometric) to a target depth drawn log-uniform in [60, 300] UMIs (spots that hold fewer
  UMIs keep all of them).

seqFISH+ spots also get ``obs["fov"]`` (the FOV most of their cells come from) for
leave-one-FOV-out references.

    python benchmarks/make_shallow.py [--seed 0] [--out benchmarks/out/shallow]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATASETS = SHARED / "bench" / "datasets"
DATA = SHARED / "data"
NAMES = ["osmfish_sscortex", "seqfish_plus_cortex", "seqfish_plus_cortex_benchmark", "synthetic"]


# ----------------------------------------------------------------------------- helpers
def hex_assign(xy: np.ndarray, d: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (column i, row j) of a hex lattice with spacing d (as make_spots.py)."""
    h = d * np.sqrt(3) / 2
    j0 = np.round(xy[:, 1] / h).astype(int)
    best = np.full(len(xy), np.inf)
    bi = np.zeros(len(xy), int)
    bj = np.zeros(len(xy), int)
    for dj in (-1, 0, 1):
        j = j0 + dj
        off = (j % 2) * d / 2
        i0 = np.round((xy[:, 0] - off) / d).astype(int)
        for di in (-1, 0, 1):
            i = i0 + di
            dist = (xy[:, 0] - (i * d + off)) ** 2 + (xy[:, 1] - j * h) ** 2
            m = dist < best
            best[m], bi[m], bj[m] = dist[m], i[m], j[m]
    return bi, bj


def depth_targets(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    return np.round(np.exp(rng.uniform(np.log(lo), np.log(hi), size=n))).astype(np.int64)


def thin(rng: np.random.Generator, X: sp.csr_matrix, target: np.ndarray) -> sp.csr_matrix:
    """Down-sample each row without replacement to ``target`` counts (rows below keep all)."""
    X = sp.csr_matrix(X, dtype=np.int64)
    out = X.copy()
    for s in range(X.shape[0]):
        a, b = X.indptr[s], X.indptr[s + 1]
        row = X.data[a:b]
        if row.sum() > target[s]:
            out.data[a:b] = rng.multivariate_hypergeometric(row, int(target[s]), method="marginals")
    out.eliminate_zeros()
    return out


def membership_matrix(spot_of_cell: np.ndarray, n_spots: int) -> sp.csr_matrix:
    """Spots x cells 0/1 matrix (cells with spot -1 are in no spot)."""
    use = np.flatnonzero(spot_of_cell >= 0)
    return sp.csr_matrix(
        (np.ones(len(use)), (spot_of_cell[use], use)), shape=(n_spots, len(spot_of_cell))
    )


def type_counts(A: sp.csr_matrix, labels: np.ndarray, types: list[str]) -> np.ndarray:
    onehot = (labels[:, None] == np.asarray(types)[None, :]).astype(float)
    return np.asarray(A @ onehot)


def majority(A: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    cats = np.unique(values)
    cnt = type_counts(A, values, list(cats))
    return cats[cnt.argmax(1)]


def write_dataset(
    out: Path,
    orig: Path,
    X: sp.csr_matrix,
    barcodes: list[str],
    genes: pd.Index,
    coords: np.ndarray,
    truth: pd.DataFrame,
    obs_extra: dict,
    info: dict,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    X = sp.csr_matrix(X)
    assert X.data.size == 0 or (X.data.min() >= 0 and np.allclose(X.data, np.round(X.data)))
    obs = pd.DataFrame(index=pd.Index([str(b) for b in barcodes]))
    assert obs.index.is_unique
    for k, v in obs_extra.items():
        obs[k] = pd.Categorical(np.asarray(v).astype(str)) if k == "region" else np.asarray(v)
    spa = ad.AnnData(X=X.astype(np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(genes)))
    spa.obsm["spatial"] = np.asarray(coords, dtype=np.float64)
    spa.uns["dataset_info"] = json.dumps(info)
    spa.write_h5ad(out / "spatial.h5ad", compression="gzip")
    shutil.copyfile(orig / "reference.h5ad", out / "reference.h5ad")
    truth = truth.copy()
    truth.index = obs.index
    assert np.allclose(truth.sum(1), 1.0, atol=1e-9)
    truth.to_csv(out / "truth.csv")
    with open(out / "INFO.json", "w") as f:
        json.dump(info, f, indent=1)


def finish(
    name: str,
    out: Path,
    rng: np.random.Generator,
    counts: sp.csr_matrix,
    n_cells: np.ndarray,
    cell_type_counts: np.ndarray,
    types: list[str],
    barcodes: list[str],
    genes: pd.Index,
    coords: np.ndarray,
    obs_extra: dict,
    info: dict,
    args,
) -> None:
    """Thin, build truth, write, print the summary line."""
    keep = n_cells > 0
    counts, n_cells, cell_type_counts = counts[keep], n_cells[keep], cell_type_counts[keep]
    barcodes = [b for b, k in zip(barcodes, keep) if k]
    coords = np.asarray(coords)[keep]
    obs_extra = {k: np.asarray(v)[keep] for k, v in obs_extra.items()}
    before = np.asarray(counts.sum(1)).ravel().astype(np.int64)
    target = depth_targets(rng, len(before), args.depth_min, args.depth_max)
    X = thin(rng, counts, target)
    umi = np.asarray(X.sum(1)).ravel().astype(np.int64)
    truth = pd.DataFrame(
        cell_type_counts / cell_type_counts.sum(1, keepdims=True), index=barcodes, columns=types
    )
    obs_extra = dict(
        obs_extra, n_cells=n_cells.astype(int), umi_before_thinning=before, target_umi=target
    )
    stats = dict(
        n_spots=len(barcodes),
        n_genes=int(X.shape[1]),
        n_cells_in_spots=int(n_cells.sum()),
        mean_cells_per_spot=float(n_cells.mean()),
        cells_per_spot_histogram={
            int(k): int(v) for k, v in zip(*np.unique(n_cells, return_counts=True))
        },
        umi_per_spot=dict(
            median=float(np.median(umi)),
            mean=float(umi.mean()),
            min=int(umi.min()),
            max=int(umi.max()),
        ),
        umi_before_thinning=dict(
            median=float(np.median(before)), min=int(before.min()), max=int(before.max())
        ),
        n_spots_below_target=int((before < target).sum()),
        depth_target=f"log-uniform in [{args.depth_min}, {args.depth_max}] UMIs per spot, rounded",
        thinning="multivariate hypergeometric (without replacement) of the summed spot counts to "
        "the target; spots with fewer UMIs than their target keep all counts",
        seed=args.seed,
        generator="benchmarks/make_shallow.py",
        truth="cell-number fractions of the cells in each spot",
    )
    info = dict(info, **stats)
    write_dataset(out, DATASETS / name, X, barcodes, genes, coords, truth, obs_extra, info)
    print(
        f"{name}_shallow: n_spots={len(barcodes)} mean cells/spot={n_cells.mean():.2f} "
        f"UMIs/spot median={np.median(umi):.0f} min={umi.min()} max={umi.max()} "
        f"(below target: {stats['n_spots_below_target']}) -> {out}",
        flush=True,
    )


def truth_columns(name: str) -> list[str]:
    return list(pd.read_csv(DATASETS / name / "truth.csv", index_col=0, nrows=1).columns)


# ----------------------------------------------------------------------------- datasets
def seqfish_hex(rng, out, args):
    name = "seqfish_plus_cortex"
    cells = ad.read_h5ad(DATA / "seqfish_plus_cortex" / "cells.h5ad")
    fovs = [0, 1, 2, 3, 4]
    cells = cells[cells.obs["fov"].isin(fovs).to_numpy()].copy()
    d = args.hex_spacing
    bi, bj = hex_assign(np.asarray(cells.obsm["spatial"], float), d)
    keys = list(zip(bj, bi))
    uniq = sorted(set(keys))
    index = {k: n for n, k in enumerate(uniq)}
    A = membership_matrix(np.array([index[k] for k in keys]), len(uniq))
    types = truth_columns(name)
    h = d * np.sqrt(3) / 2
    coords = np.array([[i * d + (j % 2) * d / 2, j * h] for j, i in uniq])
    info = dict(
        source="shared/data/seqfish_plus_cortex/cells.h5ad "
        "(as shared/bench/datasets/seqfish_plus_cortex)",
        spots=f"hexagonal full tiling of cortex FOVs {fovs} (stitched px), centre spacing {d} px "
        "(original 500 px), every cell in its nearest hex centre (make_spots.py geometry, "
        "smaller spot)",
        reference="unchanged copy of shared/bench/datasets/seqfish_plus_cortex/reference.h5ad "
        "(the same 576 cells; optimistic: use leave-one-FOV-out via obs['fov'])",
        coords_unit="px (103 nm)",
        fov="obs['fov'] = the FOV most of the spot's cells come from",
    )
    finish(
        name,
        out,
        rng,
        sp.csr_matrix(A @ cells.X),
        np.asarray(A.sum(1)).ravel(),
        type_counts(A, cells.obs["cell_type"].astype(str).to_numpy(), types),
        types,
        [f"hex_{j}_{i}" for j, i in uniq],
        cells.var_names,
        coords,
        {"fov": majority(A, cells.obs["fov"].to_numpy().astype(int))},
        info,
        args,
    )


def seqfish_benchmark(rng, out, args):
    name = "seqfish_plus_cortex_benchmark"
    cells = ad.read_h5ad(DATA / "seqfish_plus_cortex" / "cells.h5ad")
    o = cells.obs
    L = args.square_side
    fov = o["fov"].to_numpy().astype(int)
    xl, yl = o["x_local_px"].to_numpy(float), o["y_local_px"].to_numpy(float)
    # per-FOV grid origin = lowest cell coordinate of the FOV;
    # stitched = (x_local + ox, -y_local + oy)
    x0 = pd.Series(xl).groupby(fov).transform("min").to_numpy()
    y0 = pd.Series(yl).groupby(fov).transform("min").to_numpy()
    ox = pd.Series(o["x_px"].to_numpy(float) - xl).groupby(fov).median()
    oy = pd.Series(o["y_px"].to_numpy(float) + yl).groupby(fov).median()
    ix = np.floor((xl - x0) / L).astype(int)
    iy = np.floor((yl - y0) / L).astype(int)
    keys = list(zip(fov, iy, ix))
    uniq = sorted(set(keys))
    index = {k: n for n, k in enumerate(uniq)}
    A = membership_matrix(np.array([index[k] for k in keys]), len(uniq))
    origin = {f: (xl[fov == f].min(), yl[fov == f].min()) for f in np.unique(fov)}
    mid_local = np.array(
        [[origin[f][0] + (c + 0.5) * L, origin[f][1] + (r + 0.5) * L] for f, r, c in uniq]
    )
    ufov = np.array([f for f, _, _ in uniq])
    coords = np.column_stack(
        [mid_local[:, 0] + ox.loc[ufov].to_numpy(), -mid_local[:, 1] + oy.loc[ufov].to_numpy()]
    )
    types = truth_columns(name)
    info = dict(
        source="shared/data/seqfish_plus_cortex/cells.h5ad "
        "(as shared/bench/datasets/seqfish_plus_cortex_benchmark)",
        spots=f"square bins of side {L} px per FOV (original: 500 px, Li et al. 2022), grid "
        "anchored at each FOV's lowest cell x/y (local px), all 7 FOVs; coordinates = bin "
        "mid-point in Giotto-stitched px (FOVs 5 and 6 overlap there, as in the original)",
        reference="unchanged copy of "
        "shared/bench/datasets/seqfish_plus_cortex_benchmark/reference.h5ad "
        "(the same 576 cells; optimistic: use leave-one-FOV-out via obs['fov'])",
        coords_unit="px (103 nm)",
        fov="obs['fov'] = the FOV of the bin; obs['region'] = 'fov<k>' as in the original",
    )
    finish(
        name,
        out,
        rng,
        sp.csr_matrix(A @ cells.X),
        np.asarray(A.sum(1)).ravel(),
        type_counts(A, o["cell_type"].astype(str).to_numpy(), types),
        types,
        [f"sq_{f}_{r}_{c}" for f, r, c in uniq],
        cells.var_names,
        coords,
        {"region": [f"fov{f}" for f in ufov], "fov": ufov},
        info,
        args,
    )


def osmfish(rng, out, args):
    name = "osmfish_sscortex"
    src = DATA / "osmfish_sscortex"
    cells = ad.read_h5ad(src / "cells.h5ad")
    spots = ad.read_h5ad(src / "spots_visium.h5ad")
    memb = pd.read_csv(src / "spot_membership.csv.gz", index_col=0, keep_default_na=False)
    memb = memb.reindex(cells.obs_names)
    spot_of = pd.Index(spots.obs_names).get_indexer(
        memb["spot"].to_numpy()
    )  # -1: in no original spot
    valid = cells.obs["valid"].to_numpy().astype(bool)
    centres = np.asarray(spots.obsm["spatial"], float)
    xy = np.asarray(cells.obsm["spatial"], float)
    dist = np.full(len(xy), np.inf)
    inside = spot_of >= 0
    dist[inside] = np.sqrt(((xy[inside] - centres[spot_of[inside]]) ** 2).sum(1))
    member = inside & valid & (dist <= args.osm_diameter / 2)
    A = membership_matrix(np.where(member, spot_of, -1), spots.n_obs)
    types = truth_columns(name)
    info = dict(
        source="shared/data/osmfish_sscortex/cells.h5ad "
        "(as shared/bench/datasets/osmfish_sscortex)",
        spots=f"the original Visium-like lattice centres (100 um hex pitch) with a "
        f"{args.osm_diameter} um circle instead of 55 um: a labelled cell is in a spot when its "
        "centroid lies within the smaller circle, so every spot cell is one of the original spot "
        "cells; spots with no cell dropped; barcodes = the original spot names",
        reference="unchanged copy of shared/bench/datasets/osmfish_sscortex/reference.h5ad "
        "(labelled cells outside every original 55 um spot: spatially disjoint, same section)",
        coords_unit="um",
        level="major",
    )
    finish(
        name,
        out,
        rng,
        sp.csr_matrix(A @ cells.X),
        np.asarray(A.sum(1)).ravel(),
        type_counts(A, cells.obs["cell_type"].astype(str).to_numpy(), types),
        types,
        list(spots.obs_names),
        cells.var_names,
        centres,
        {},
        info,
        args,
    )


def synthetic(rng_thin, out, args):
    """make_synthetic.py (seed 0 defaults) with 1..5 cells per spot; same random stream."""
    name = "synthetic"
    meta0 = json.loads((DATASETS / name / "INFO.json").read_text())
    rng = np.random.default_rng(meta0["seed"])
    K, G = meta0["n_types"], meta0["n_genes"]
    theta, cell_depth, platform_sd = meta0["theta"], meta0["cell_depth"], meta0["platform_sd"]
    n_cells = meta0["n_ref_cells"]
    types = [f"type_{chr(ord('A') + k)}" for k in range(K)]
    genes = [f"Gene{g:04d}" for g in range(G)]

    def nb(mean):
        return rng.poisson(rng.gamma(shape=theta, scale=mean / theta))

    base = rng.lognormal(0.0, 1.0, size=G)
    prof = base[None, :] * rng.lognormal(0.0, 0.5, size=(K, G))
    n_markers = 15
    perm = rng.permutation(G)
    for k in range(K):
        mk = perm[k * n_markers : (k + 1) * n_markers]
        prof[k, mk] *= rng.uniform(4, 12, size=n_markers)
    prof /= prof.sum(1, keepdims=True)

    def sim_cells(labels, platform=None):
        lib = rng.lognormal(np.log(cell_depth), 0.3, size=len(labels))
        mean = lib[:, None] * prof[labels]
        if platform is not None:
            mean = mean * platform[None, :]
        return nb(mean)

    type_freq = rng.dirichlet(np.full(K, 3.0))
    ref_labels = rng.choice(K, size=n_cells, p=type_freq)
    ref_X = sim_cells(ref_labels)
    ref0 = ad.read_h5ad(DATASETS / name / "reference.h5ad")
    assert np.array_equal(np.asarray(ref0.X.toarray()), ref_X.astype(np.float32)), (
        "reference not reproduced"
    )
    assert list(ref0.var_names) == genes

    nc, nr = 25, 24
    xy = np.array(
        [(c + 0.5 * (r % 2), r * np.sqrt(3) / 2) for r in range(nr) for c in range(nc)], dtype=float
    )
    n_spots = len(xy)
    assert n_spots == meta0["n_spots"]
    span = xy.max(0) - xy.min(0)
    field = np.zeros((n_spots, K))
    for k in range(K):
        for _ in range(3):
            centre = xy.min(0) + rng.uniform(0, 1, 2) * span
            width = rng.uniform(0.15, 0.35) * span.mean()
            field[:, k] += rng.uniform(0.5, 1.5) * np.exp(
                -((xy - centre) ** 2).sum(1) / (2 * width**2)
            )
    logits = 3.0 * field + np.log(type_freq)[None, :]
    comp = np.exp(logits - logits.max(1, keepdims=True))
    comp /= comp.sum(1, keepdims=True)
    platform = np.exp(rng.normal(0.0, platform_sd, size=G))
    lo, hi = args.synthetic_cells
    n_cells_spot = rng.integers(lo, hi + 1, size=n_spots)
    counts = np.zeros((n_spots, K), dtype=int)
    sp_X = np.zeros((n_spots, G), dtype=np.int64)
    for s in range(n_spots):
        lab = rng.choice(K, size=n_cells_spot[s], p=comp[s])
        counts[s] = np.bincount(lab, minlength=K)
        sp_X[s] = sim_cells(lab, platform).sum(0)
    region = np.where(
        xy[:, 0] < np.quantile(xy[:, 0], 1 / 3),
        "left",
        np.where(xy[:, 0] < np.quantile(xy[:, 0], 2 / 3), "middle", "right"),
    )
    info = dict(
        source="shared/bench/peers/make_synthetic.py --seed 0, re-run in make_shallow.py",
        spots=f"same hex grid 25x24, composition fields, platform effect (sd {platform_sd}) and "
        f"reference (asserted equal counts) as the original; {lo}..{hi} freshly simulated cells "
        f"per spot (uniform) instead of 5..15, NB theta {theta}, {cell_depth} UMIs/cell before "
        "thinning",
        reference="unchanged copy of shared/bench/datasets/synthetic/reference.h5ad",
        n_types=K,
        n_ref_cells=n_cells,
        cells_per_spot=[int(lo), int(hi)],
        platform_sd=platform_sd,
        theta=theta,
        cell_depth=cell_depth,
    )
    finish(
        name,
        out,
        rng_thin,
        sp.csr_matrix(sp_X),
        n_cells_spot,
        counts.astype(float),
        types,
        [f"spot{s:04d}" for s in range(n_spots)],
        pd.Index(genes),
        xy,
        {"region": region},
        info,
        args,
    )


BUILDERS = {
    "osmfish_sscortex": osmfish,
    "seqfish_plus_cortex": seqfish_hex,
    "seqfish_plus_cortex_benchmark": seqfish_benchmark,
    "synthetic": synthetic,
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "shallow")
    ap.add_argument("--datasets", nargs="+", default=NAMES, choices=NAMES)
    ap.add_argument("--depth-min", type=float, default=60.0)
    ap.add_argument("--depth-max", type=float, default=300.0)
    ap.add_argument(
        "--hex-spacing", type=float, default=315.0, help="seqFISH+ hex centre spacing, px"
    )
    ap.add_argument(
        "--square-side", type=float, default=320.0, help="seqFISH+ benchmark square side, px"
    )
    ap.add_argument("--osm-diameter", type=float, default=42.0, help="osmFISH spot diameter, um")
    ap.add_argument(
        "--synthetic-cells", type=int, nargs=2, default=[1, 5], help="cells per spot, min max"
    )
    args = ap.parse_args()
    for n, name in enumerate(NAMES):
        if name in args.datasets:
            rng = np.random.default_rng([args.seed, n])  # one stream per dataset
            BUILDERS[name](rng, args.out / f"{name}_shallow", args)


if __name__ == "__main__":
    main()
