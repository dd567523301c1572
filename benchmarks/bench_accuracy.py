"""Accuracy against real ground truth, through the same code path as ``stlnmf deconvolve``.

For every dataset with ground truth in ``../shared/bench/datasets`` (``spatial.h5ad``,
``reference.h5ad`` with ``obs["cell_type"]``, ``truth.csv``) and the bundled
``mouse_brain`` sample, run (``pipeline.prepare -> train -> deconvolve``):

- STL NMF, KL data term (the shipped default) and Frobenius data term, trained only on
  slides simulated from the dataset's reference on its spot geometry;
- the untrained MU (STL NMF with ``epochs=0``), the plain KL update, NNLS;

for several seeds, and print / write RMSE, mean JSD, mean per-type Pearson r, train and
inference seconds (median and min-max over seeds). Scores follow
:func:`napari_stlnmf.core.metrics.truth_metrics`, the rule ``run.json`` uses: spots with
no prediction (NaN: no counts on the genes used) are left out and counted in
``spots_unscored``; a type missing from the reference counts as predicted 0. seqFISH+
references are the very cells in the spots: a leave-one-field-of-view-out reference (cells
of the spot's own FOV left out) gives the honest figure. Peers' figures come from
``../shared/bench/results``.

    python benchmarks/bench_accuracy.py [--seeds 0 1 2] [--datasets ...] [--figures docs/images]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from napari_stlnmf.core.metrics import truth_metrics
from napari_stlnmf.io.reference import reference_from_anndata
from napari_stlnmf.io.samples import load_sample
from napari_stlnmf.pipeline import deconvolve, prepare, train

SHARED = Path(__file__).resolve().parents[2] / "shared"
BENCH = SHARED / "bench" / "datasets"
RESULTS = SHARED / "bench" / "results"
SEQFISH_CELLS = SHARED / "data" / "seqfish_plus_cortex" / "cells.h5ad"

METHODS = {
    "STL NMF (KL)": ("stlnmf", {}),
    "STL NMF (KL, no gene weights)": ("stlnmf", {"gene_weights": "none"}),
    "STL NMF (Frobenius)": ("stlnmf", {"data_term": "frobenius"}),
    "untrained MU": ("stlnmf", {"epochs": 0}),
    "plain KL": ("plainkl", {}),
    "NNLS": ("nnls", {}),
}
STOCHASTIC = {"stlnmf"}
# ablations: one seed is enough to see the effect, and keeps the run short
ONE_SEED = {"STL NMF (KL, no gene weights)"}


def load(name: str):
    """(spatial, reference AnnData, regions or None, truth DataFrame)."""
    if name == "mouse_brain":
        s = load_sample("mouse_brain")
        return s.spatial, s.reference, s.regions, s.truth
    d = BENCH / name
    spatial = ad.read_h5ad(d / "spatial.h5ad")
    ref = ad.read_h5ad(d / "reference.h5ad")
    truth = pd.read_csv(d / "truth.csv", index_col=0)
    truth.index = truth.index.astype(str)
    regions = spatial.obs["region"].astype(str).to_numpy() if "region" in spatial.obs else None
    return spatial, ref, regions, truth


def spot_fovs(name: str, spatial) -> np.ndarray | None:
    """Field of view of each seqFISH+ spot (from its cells), else None."""
    if not name.startswith("seqfish") or not SEQFISH_CELLS.exists():
        return None
    cells = ad.read_h5ad(SEQFISH_CELLS)
    if "region" in spatial.obs and str(spatial.obs["region"].iloc[0]).startswith("fov"):
        return spatial.obs["region"].str.replace("fov", "").astype(int).to_numpy()
    xy = cells.obs[["x_px", "y_px"]].to_numpy(float)
    _, idx = cKDTree(xy).query(np.asarray(spatial.obsm["spatial"], float), k=5)
    fov = cells.obs["fov"].to_numpy()[idx]
    return np.array([np.bincount(row).argmax() for row in fov])


def lofo_references(name: str, ref_adata):
    """{fov: reference AnnData without that FOV's cells} for seqFISH+."""
    cells = ad.read_h5ad(SEQFISH_CELLS)
    if not set(ref_adata.obs_names) <= set(cells.obs_names):
        return None
    fov = cells.obs.loc[ref_adata.obs_names, "fov"].to_numpy()
    return {f: ref_adata[fov != f].copy() for f in np.unique(fov)}


def run_one(spatial, ref_adata, regions, truth, method, options, seed, fovs=None, lofo=None):
    """Proportions (truth's spots x types) and timings of one method / seed."""
    t_train = t_infer = 0.0
    types = list(truth.columns)
    pred = pd.DataFrame(np.nan, index=truth.index, columns=types)
    groups = [(None, ref_adata)] if lofo is None else sorted(lofo.items())
    for fov, ref_ad in groups:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = reference_from_anndata(ref_ad, "cell_type", min_cells=1)
            prep = prepare(spatial, ref, regions=regions)
            t0 = time.perf_counter()
            model = train(prep, method=method, seed=seed, device="cpu", options=options)
            t1 = time.perf_counter()
            res = deconvolve(prep, model)
            t2 = time.perf_counter()
        t_train += t1 - t0
        t_infer += t2 - t1
        # a type the reference lacks is predicted 0 (truth_metrics' rule); NaN rows stay
        props = res.proportions.reindex(columns=types, fill_value=0.0)
        rows = truth.index if fov is None else truth.index[fovs == fov]
        pred.loc[rows] = props.loc[rows].to_numpy()
    return pred, t_train, t_infer


def peers(name: str) -> pd.DataFrame:
    f = RESULTS / name / "summary.csv"
    if not f.exists():
        return pd.DataFrame()
    df = pd.read_csv(f)
    return df[df.status == "ok"][["method", "rmse", "jsd", "pearson", "seconds"]]


def figure(name, spatial, truth, pred, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    xy = np.asarray(spatial.obsm["spatial"], float)
    pos = pd.Series(range(spatial.n_obs), index=spatial.obs_names)
    xy = xy[pos.loc[truth.index].to_numpy()]
    top = list(truth.mean().sort_values(ascending=False).index[:3])
    fig = Figure(figsize=(14, 6.2), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[3.2, 1.3])
    axes = left.subplots(2, 3)
    size = float(np.clip(6e3 / len(xy), 4, 60))
    for j, t in enumerate(top):
        for i, (vals, label) in enumerate([(truth[t], "truth"), (pred[t], "STL NMF")]):
            ax = axes[i, j]
            sc = ax.scatter(xy[:, 0], xy[:, 1], c=vals, s=size, vmin=0, vmax=1, cmap="viridis")
            ax.set_title(f"{t}: {label}", fontsize=9)
            ax.set_aspect("equal")
            ax.invert_yaxis()
            ax.set_xticks([])
            ax.set_yticks([])
    left.colorbar(sc, ax=axes, shrink=0.7, label="proportion")
    ax = right.subplots()
    ax.scatter(truth.to_numpy().ravel(), pred.to_numpy().ravel(), s=4, alpha=0.4)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_aspect("equal")
    ax.set_xlabel("true proportion")
    ax.set_ylabel("STL NMF proportion")
    ax.set_title(f"{name}: all spots x types", fontsize=9)
    fig.savefig(out, dpi=80)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--datasets", nargs="+", default=None)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--no-lofo", action="store_true")
    ap.add_argument("--figures", default="docs/images")
    ap.add_argument("--out", default="benchmarks/out/accuracy")
    args = ap.parse_args()
    names = args.datasets or ["mouse_brain"] + sorted(
        p.name for p in BENCH.glob("*") if (p / "truth.csv").exists()
    )
    rows = []
    for name in names:
        spatial, ref_adata, regions, truth = load(name)
        setups = [("full reference", None, None)]
        fovs = spot_fovs(name, spatial)
        if fovs is not None and not args.no_lofo:
            lofo = lofo_references(name, ref_adata)
            if lofo is not None:
                setups.append(("leave one FOV out", fovs, lofo))
        for setup, fv, lofo in setups:
            for label in args.methods:
                method, options = METHODS[label]
                stochastic = method in STOCHASTIC and label not in ONE_SEED
                for seed in args.seeds if stochastic else args.seeds[:1]:
                    pred, tt, ti = run_one(
                        spatial, ref_adata, regions, truth, method, options, seed, fv, lofo
                    )
                    s = truth_metrics(pred, truth)
                    row = {
                        "dataset": name,
                        "reference": setup,
                        "method": label,
                        "seed": seed,
                        **{k: round(v, 4) for k, v in s.items()},
                        "spots_unscored": int(pred.isna().any(axis=1).sum()),
                        "train_s": round(tt, 2),
                        "infer_s": round(ti, 2),
                    }
                    rows.append(row)
                    print(row, flush=True)
                    if label == "STL NMF (KL)" and seed == args.seeds[0] and args.figures:
                        out = Path(args.figures) / f"accuracy_{name}_{setup.split()[0]}.png"
                        out.parent.mkdir(parents=True, exist_ok=True)
                        figure(name, spatial, truth, pred, out)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(f"{args.out}.csv", index=False)
    lines = []
    for (name, setup), g in df.groupby(["dataset", "reference"], sort=False):
        lines += [
            f"\n### {name} ({setup})\n",
            "| method | RMSE | JSD | Pearson r | train s | inference s | seeds |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, h in g.groupby("method", sort=False):

            def cell(col, h=h):
                med = h[col].median()
                if len(h) == 1:
                    return f"{med:.4f}" if col in ("rmse", "jsd", "pearson") else f"{med:.1f}"
                fmt = "{:.4f}" if col in ("rmse", "jsd", "pearson") else "{:.1f}"
                return f"{fmt.format(med)} ({fmt.format(h[col].min())}–{fmt.format(h[col].max())})"

            lines.append(
                f"| {label} | {cell('rmse')} | {cell('jsd')} | {cell('pearson')} | "
                f"{cell('train_s')} | {cell('infer_s')} | {len(h)} |"
            )
        if setup == "full reference":
            for _, p in peers(name).iterrows():
                lines.append(
                    f"| peer: {p.method} | {p.rmse:.4f} | {p.jsd:.4f} | "
                    f"{p.pearson:.3f} | | {p.seconds:.1f} (total) | 1 |"
                )
    text = "\n".join(lines)
    Path(f"{args.out}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
