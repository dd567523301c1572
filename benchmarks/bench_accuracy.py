"""Accuracy against real ground truth, through the same code path as ``stlnmf deconvolve``.

For every dataset with ground truth in ``../shared/bench/datasets`` (``spatial.h5ad``,
``reference.h5ad`` with ``obs["cell_type"]``, ``truth.csv``) and the bundled
``mouse_brain`` sample, run (``pipeline.prepare -> train -> deconvolve``):

- STL NMF with the shipped defaults, trained only on slides simulated from the dataset's
  reference on its spot geometry, and with the previous defaults (100 markers per type,
  the reference cells' Fano weights);
- the untrained MU (STL NMF with ``epochs=0``), the plain KL update on the same genes and
  on all shared genes, NNLS on all shared genes;
- the peers (RCTD via rctd-py full mode, flashdeconv, the harness NNLS, cell2location,
  Stereoscope, Tangram) read from ``../shared/bench/results`` and, for the shallow variants
  and leave-one-FOV-out references, from ``benchmarks/out/peers`` (written by
  ``benchmarks/run_peers.py``);

for several seeds, and print / write RMSE, mean JSD, mean per-type Pearson r, train and
inference seconds (median and min-max over seeds). Scores follow
:func:`napari_stlnmf.core.metrics.truth_metrics`, the rule ``run.json`` uses: spots with
no prediction (NaN: no counts on the genes used) are left out and counted in
``spots_unscored``; a type missing from the reference counts as predicted 0. seqFISH+
references are the very cells in the spots: a leave-one-field-of-view-out reference (cells
of the spot's own FOV left out) gives the honest figure. ``<name>_shallow`` are the shallow
variants written by ``benchmarks/make_shallow.py`` (the same cells, ~3 per spot, 60–300 UMIs).

Every method is scored on cell fractions (the truth) and on mRNA fractions (truth and
predictions converted with the reference's mean library size per type): RCTD and NNLS on
normalised profiles give mRNA fractions, STL NMF and cell2location cell fractions; each is
converted to the other unit before scoring. The summary gives, per set, STL NMF's RMSE over
the best other method's and over the best NNLS.

    python benchmarks/make_shallow.py && python benchmarks/run_peers.py   # once
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
from napari_stlnmf.pipeline import deconvolve, mrna_fractions, prepare, train

SHARED = Path(__file__).resolve().parents[2] / "shared"
BENCH = SHARED / "bench" / "datasets"
RESULTS = SHARED / "bench" / "results"
SEQFISH_CELLS = SHARED / "data" / "seqfish_plus_cortex" / "cells.h5ad"
HERE = Path(__file__).resolve().parent
SHALLOW = HERE / "out" / "shallow"
LOCAL_PEERS = HERE / "out" / "peers"

MAIN = "STL NMF"
# label: (method, genes for prepare(markers=...), estimator options)
METHODS = {
    MAIN: ("stlnmf", "auto", {}),
    "STL NMF, previous defaults (markers, Fano weights)": (
        "stlnmf",
        True,
        {"gene_weights": "fano"},
    ),
    "untrained MU": ("stlnmf", "auto", {"epochs": 0}),
    "plain KL (same genes)": ("plainkl", "auto", {}),
    "plain KL (all genes)": ("plainkl", False, {}),
    "NNLS (all genes)": ("nnls", False, {}),
}
STOCHASTIC = {"stlnmf"}
# ablations: one seed is enough to see the effect, and keeps the run short
ONE_SEED = {"STL NMF, previous defaults (markers, Fano weights)"}
# which fractions each method gives (peers: their harness's README and rctd/README.md)
UNITS = {"rctd": "mRNA", "nnls": "mRNA", "flashdeconv": "mRNA", "stereoscope": "mRNA"}


def dataset_dir(name: str) -> Path:
    return SHALLOW / name if name.endswith("_shallow") else BENCH / name


def load(name: str):
    """(spatial, reference AnnData, regions or None, truth DataFrame)."""
    if name == "mouse_brain":
        s = load_sample("mouse_brain")
        return s.spatial, s.reference, s.regions, s.truth
    d = dataset_dir(name)
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
    if "fov" in spatial.obs:
        return spatial.obs["fov"].astype(int).to_numpy()
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


def run_one(spatial, ref_adata, regions, truth, method, genes, options, seed, fovs=None, lofo=None):
    """Proportions (truth's spots x types) and timings of one method / seed."""
    t_train = t_infer = 0.0
    types = list(truth.columns)
    pred = pd.DataFrame(np.nan, index=truth.index, columns=types)
    groups = [(None, ref_adata)] if lofo is None else sorted(lofo.items())
    for fov, ref_ad in groups:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = reference_from_anndata(ref_ad, "cell_type", min_cells=1)
            prep = prepare(spatial, ref, regions=regions, markers=genes)
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


def library_sizes(ref_adata, types) -> np.ndarray:
    """Mean counts per cell of each type (over all the reference's genes)."""
    x = ref_adata.X
    totals = np.asarray(x.sum(1)).ravel()
    lab = ref_adata.obs["cell_type"].astype(str).to_numpy()
    return np.array([totals[lab == t].mean() if (lab == t).any() else np.nan for t in types])


def to_mrna(cells: pd.DataFrame, lib: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(mrna_fractions(cells.to_numpy(), lib), cells.index, cells.columns)


def to_cells(mrna: pd.DataFrame, lib: np.ndarray) -> pd.DataFrame:
    c = mrna / lib[None, :]
    return c.div(c.sum(1), axis=0)


def both_units(pred: pd.DataFrame, truth: pd.DataFrame, lib: np.ndarray, unit: str) -> dict:
    """RMSE on cell fractions and on mRNA fractions, converting ``pred`` (given in ``unit``)."""
    if unit == "mRNA":
        cells, mrna = to_cells(pred, lib), pred
    else:
        cells, mrna = pred, to_mrna(pred, lib)
    return {
        "rmse_cells": truth_metrics(cells, truth)["rmse"],
        "rmse_mrna": truth_metrics(mrna, to_mrna(truth, lib))["rmse"],
    }


def peers(name: str, setup: str, truth: pd.DataFrame, lib: np.ndarray) -> pd.DataFrame:
    """Peers' scores for one set: shared results first, then this repository's runs."""
    key = name + ("_lofo" if setup.startswith("leave") else "")
    rows = []
    for folder in (RESULTS / key, LOCAL_PEERS / key):
        f = folder / "summary.csv"
        if not f.exists():
            continue
        df = pd.read_csv(f)
        for _, p in df[df.status == "ok"].iterrows():
            if any(r["method"] == p.method for r in rows):
                continue  # the shared run wins
            row = {k: p[k] for k in ("method", "rmse", "jsd", "pearson", "seconds")}
            row["unit"] = UNITS.get(p.method, "cells")
            props = folder / f"{p.method}_proportions.csv"
            if props.exists():
                pred = pd.read_csv(props, index_col=0)
                pred.index = pred.index.astype(str)
                pred = pred.reindex(index=truth.index, columns=truth.columns, fill_value=0.0)
                row.update(both_units(pred, truth, lib, row["unit"]))
            rows.append(row)
    return pd.DataFrame(rows)


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


def write_markdown(path: Path, lines: list[str]) -> str:
    """Write ``lines`` as one markdown file (creating its folder), print it and return it."""
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)
    return text


def all_names() -> list[str]:
    shared = sorted(p.name for p in BENCH.glob("*") if (p / "truth.csv").exists())
    shallow = sorted(p.name for p in SHALLOW.glob("*_shallow") if (p / "truth.csv").exists())
    if not shallow:
        print("no shallow variants: run benchmarks/make_shallow.py first", flush=True)
    return ["mouse_brain", *shared, *shallow]


def cell(h: pd.DataFrame, col: str) -> str:
    """Median (min–max) of a column over seeds."""
    fmt = "{:.4f}" if col.startswith(("rmse", "jsd", "pearson")) else "{:.1f}"
    med = h[col].median()
    if len(h) == 1 or h[col].nunique() == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(h[col].min())}–{fmt.format(h[col].max())})"


def set_tables(df: pd.DataFrame, peer_rows: dict) -> tuple[list[str], list[dict]]:
    """Markdown tables per set, and one summary row per set."""
    lines, summary = [], []
    for (name, setup), g in df.groupby(["dataset", "reference"], sort=False):
        lines += [
            f"\n#### {name} ({setup})\n",
            "| method | units | RMSE | JSD | Pearson r | RMSE, mRNA fractions | train s "
            "| inference s | seeds |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        others = {}
        for label, h in g.groupby("method", sort=False):
            lines.append(
                f"| {label} | cells | {cell(h, 'rmse')} | {cell(h, 'jsd')} | "
                f"{cell(h, 'pearson')} | {cell(h, 'rmse_mrna')} | {cell(h, 'train_s')} | "
                f"{cell(h, 'infer_s')} | {len(h)} |"
            )
            if label not in (MAIN,) and not label.startswith(("STL NMF", "untrained")):
                others[label] = h["rmse"].median()
        peer = peer_rows.get((name, setup), pd.DataFrame())
        for _, p in peer.iterrows():
            r_cells = p.get("rmse_cells", np.nan)
            r_mrna = p.get("rmse_mrna", np.nan)
            # an mRNA-fraction method also scored after conversion to cell fractions
            rmse = f"{p.rmse:.4f}"
            if p.unit == "mRNA" and np.isfinite(r_cells):
                rmse += f" (as cells: {r_cells:.4f})"
            lines.append(
                f"| peer: {p.method} | {p.unit} | {rmse} | {p.jsd:.4f} | "
                f"{p.pearson:.3f} | {r_mrna:.4f} | | {p.seconds:.1f} (total) | 1 |"
            )
            # the better of its two scores on cell fractions: as given, or converted
            best = np.nanmin([p.rmse, r_cells]) if np.isfinite(r_cells) else p.rmse
            others[f"peer: {p.method}"] = best
        ours = g[g.method == MAIN]["rmse"].median()
        best_label = min(others, key=others.get)
        nnls = {k: v for k, v in others.items() if "nnls" in k.lower()}
        nnls_label = min(nnls, key=nnls.get)
        summary.append(
            {
                "set": f"{name} ({setup})",
                "stlnmf": ours,
                "best_other": others[best_label],
                "best_label": best_label,
                "ratio_best": ours / others[best_label],
                "nnls": nnls[nnls_label],
                "ratio_nnls": ours / nnls[nnls_label],
                "rctd": others.get("peer: rctd", np.nan),
            }
        )
    return lines, summary


def summary_table(summary: list[dict]) -> list[str]:
    lines = [
        "\n### Summary: STL NMF (median of seeds) against the best other method\n",
        "| set | STL NMF | best other | its RMSE | ratio (target ≤ 0.85) | RCTD | best NNLS "
        "| ratio to NNLS (target ≤ 0.75) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in summary:
        lines.append(
            f"| {r['set']} | {r['stlnmf']:.4f} | {r['best_label']} | {r['best_other']:.4f} | "
            f"{r['ratio_best']:.2f} | {r['rctd']:.4f} | {r['nnls']:.4f} | {r['ratio_nnls']:.2f} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--datasets", nargs="+", default=None)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--no-lofo", action="store_true")
    ap.add_argument("--figures", default="docs/images")
    ap.add_argument("--out", default="benchmarks/out/accuracy")
    ap.add_argument(
        "--tables-only",
        action="store_true",
        help="rebuild the tables from <out>.csv and the peers' current results",
    )
    args = ap.parse_args()
    if args.tables_only:
        write_tables(pd.read_csv(f"{args.out}.csv"), args.out, time.perf_counter())
        return
    names = args.datasets or all_names()
    rows = []
    t_start = time.perf_counter()
    for name in names:
        spatial, ref_adata, regions, truth = load(name)
        lib = library_sizes(ref_adata, list(truth.columns))
        setups = [("full reference", None, None)]
        fovs = spot_fovs(name, spatial)
        if fovs is not None and not args.no_lofo:
            lofo = lofo_references(name, ref_adata)
            if lofo is not None:
                setups.append(("leave one FOV out", fovs, lofo))
        for setup, fv, lofo in setups:
            for label in args.methods:
                method, genes, options = METHODS[label]
                stochastic = method in STOCHASTIC and label not in ONE_SEED
                for seed in args.seeds if stochastic else args.seeds[:1]:
                    pred, tt, ti = run_one(
                        spatial, ref_adata, regions, truth, method, genes, options, seed, fv, lofo
                    )
                    s = truth_metrics(pred, truth)
                    row = {
                        "dataset": name,
                        "reference": setup,
                        "method": label,
                        "seed": seed,
                        **{k: round(v, 4) for k, v in s.items()},
                        "rmse_mrna": round(both_units(pred, truth, lib, "cells")["rmse_mrna"], 4),
                        "spots_unscored": int(pred.isna().any(axis=1).sum()),
                        "train_s": round(tt, 2),
                        "infer_s": round(ti, 2),
                    }
                    rows.append(row)
                    print(row, flush=True)
                    if label == MAIN and seed == args.seeds[0] and args.figures:
                        out = Path(args.figures) / f"accuracy_{name}_{setup.split()[0]}.png"
                        out.parent.mkdir(parents=True, exist_ok=True)
                        figure(name, spatial, truth, pred, out)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(f"{args.out}.csv", index=False)
    write_tables(df, args.out, t_start)


def write_tables(df: pd.DataFrame, out: str, t_start: float) -> None:
    peer_rows = {}
    for name, setup in df[["dataset", "reference"]].drop_duplicates().itertuples(index=False):
        _, ref_adata, _, truth = load(name)
        peer_rows[(name, setup)] = peers(
            name, setup, truth, library_sizes(ref_adata, list(truth.columns))
        )
    lines, summary = set_tables(df, peer_rows)
    lines = summary_table(summary) + lines
    lines.append(f"\n(wall time of this run: {time.perf_counter() - t_start:.0f} s)")
    text = "\n".join(lines)
    Path(f"{out}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
