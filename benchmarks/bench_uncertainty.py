#!/usr/bin/env python
"""First measurement for issue 17: how well does count noise explain STL NMF's error?

For every set of ``bench_accuracy`` (the bundled mouse_brain sample, the shared sets and
their shallow variants where present), trains the default model, takes the point
estimate, then re-runs the trained network on ``--replicates`` resampled count matrices:

* **parametric**: ``x* ~ Poisson(N_s B û_s)``, the fitted model's own expected counts;
* **resample-x**: ``x* ~ Poisson(x)``, the observed counts as the means.

The 5 % and 95 % quantiles over replicates are a nominal 90 % interval per spot and type.
Printed per set: coverage of the true cell fractions (all entries; entries whose truth is
above 0; the lowest over types with at least 5 % mean abundance), mean width, the RMSE of
the point estimate, and the cost of one replicate against the point estimate. Truth 0 is
covered when the lower quantile is below 1e-3 (the network floors fractions at 1e-8).
Writes ``benchmarks/out/uncertainty.md``::

    python benchmarks/bench_uncertainty.py                  # every set found
    python benchmarks/bench_uncertainty.py --sets mouse_brain --replicates 10
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from bench_accuracy import all_names, load

from napari_stlnmf.io.reference import reference_from_anndata
from napari_stlnmf.pipeline import prepare, train

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "uncertainty.md"
KINDS = ("parametric", "resample-x")


def one_set(name: str, replicates: int, seed: int = 0) -> list[dict]:
    spatial, ref_adata, regions, truth = load(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = reference_from_anndata(
            ref_adata, "cell_type" if "cell_type" in ref_adata.obs else ref_adata.obs.columns[0]
        )
        prep = prepare(spatial, ref, regions=regions)
        model = train(prep, method="stlnmf", seed=seed, device="cpu")
    x = prep.X.tocsr().astype(np.float64)
    t0 = time.perf_counter()
    u = model.transform(x, prep.coords, prep.regions)
    t_point = time.perf_counter() - t0
    types = [t for t in truth.columns if t in model.reference_.cell_types]
    cols = [model.reference_.cell_types.index(t) for t in types]
    pos = {b: i for i, b in enumerate(prep.barcodes)}
    keep = [b for b in truth.index if b in pos]
    rows = [pos[b] for b in keep]
    tr = truth.loc[keep, types].to_numpy(dtype=np.float64)
    point = u[rows][:, cols]
    lam = np.nan_to_num(u) @ model.reference_.signatures.T
    lam *= (np.asarray(x.sum(1)).ravel() / np.maximum(lam.sum(1), 1e-12))[:, None]
    dense_x = x.toarray()
    rng = np.random.default_rng(seed)
    out = []
    for kind in KINDS:
        reps = []
        t0 = time.perf_counter()
        for _ in range(replicates):
            xs = rng.poisson(lam if kind == "parametric" else dense_x).astype(np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reps.append(model.transform(sp.csr_matrix(xs), prep.coords, prep.regions))
        t_rep = (time.perf_counter() - t0) / replicates
        stack = np.stack(reps)[:, rows][:, :, cols]
        lo = np.nanquantile(stack, 0.05, axis=0)
        hi = np.nanquantile(stack, 0.95, axis=0)
        lo = np.where(lo < 1e-3, 0.0, lo)
        inside = (tr >= lo) & (tr <= hi)
        common = tr.mean(0) >= 0.05
        out.append(
            {
                "set": name,
                "kind": kind,
                "coverage": float(inside.mean()),
                "coverage_truth_above_0": float(inside[tr > 0].mean()),
                "lowest_common_type": float(inside[:, common].mean(0).min()),
                "width": float(np.nanmean(hi - lo)),
                "rmse": float(np.sqrt(np.nanmean((point - tr) ** 2))),
                "replicate_cost": t_rep / max(t_point, 1e-9),
                "spots": len(rows),
            }
        )
        print(out[-1], flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="*", default=None)
    ap.add_argument("--replicates", type=int, default=20)
    args = ap.parse_args(argv)
    names = args.sets or all_names()
    rows = []
    for name in names:
        rows += one_set(name, args.replicates)
    lines = [
        f"# Count-noise intervals ({time.strftime('%Y-%m-%d')}, {args.replicates} replicates, "
        "nominal 90 %)",
        "",
        "| set | resampling | coverage | coverage, truth > 0 | lowest common type | "
        "mean width | point RMSE | one replicate / point |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['kind']} | {r['coverage']:.2f} | "
            f"{r['coverage_truth_above_0']:.2f} | {r['lowest_common_type']:.2f} | "
            f"{r['width']:.3f} | {r['rmse']:.4f} | {r['replicate_cost']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
