"""Which data term and which group term win? Held-out accuracy on simulated slides.

Each slide is a Visium-like hexagonal grid (40 x 50 spots, 3 regions, 8 cell types,
300 genes) whose counts are sums of single cells HELD OUT of the reference the methods
get, with a log-normal per-gene platform effect (sigma 0.3), per-spot capture noise and
Poisson sampling. Two depths: ``shallow`` (~100 counts per spot on the used genes, count
noise dominates) and ``deep`` (~1,500). Every method sees the same reference, coordinates,
regions and counts; trained models learn only on slides they simulate themselves.

Usage: python benchmarks/bench_simulation.py [--seeds 0 1 2] [--epochs 30] [--out CSV]
Prints a markdown table of median [min-max] RMSE over the seeds, and fit/transform seconds.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from napari_stlnmf import NNLS, STLNMF, PlainKL, SimulationSettings
from napari_stlnmf.core.metrics import score
from napari_stlnmf.core.simulate import simulate_demo_slide

SCENARIOS = {"shallow": 0.02, "deep": 0.3}


def methods(epochs: int, seed: int):
    trained = dict(epochs=epochs, random_state=seed)
    return {
        "NNLS": lambda: NNLS(),
        "plain KL (300 it.)": lambda: PlainKL(),
        "STL NMF untrained (KL, region)": lambda: STLNMF(epochs=0),
        "STL NMF untrained (Frobenius, region)": lambda: STLNMF(epochs=0, data_term="frobenius"),
        "STL NMF trained (KL, region)": lambda: STLNMF(**trained),
        "STL NMF trained (KL, literal)": lambda: STLNMF(group="literal", **trained),
        "STL NMF trained (KL, no group)": lambda: STLNMF(group="none", **trained),
        "STL NMF trained (KL, region, ratio rule)": lambda: STLNMF(update="ratio", **trained),
        "STL NMF trained (Frobenius, region)": lambda: STLNMF(data_term="frobenius", **trained),
        "STL NMF trained (Frobenius, literal)": lambda: STLNMF(
            data_term="frobenius", group="literal", **trained
        ),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="benchmarks/out/simulation.csv")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = []
    for scenario, depth in SCENARIOS.items():
        for seed in args.seeds:
            settings = SimulationSettings(depth=depth, platform_sigma=0.3)
            d = simulate_demo_slide(seed=100 + seed, settings=settings)
            X, coords, regions = d["counts"], d["coords"], d["regions"]
            depth_per_spot = float(np.median(np.asarray(X.sum(1)).ravel()))
            for name, make in methods(args.epochs, seed).items():
                est = make()
                t0 = time.perf_counter()
                est.fit(d["reference"], coords, regions, X=X)
                t1 = time.perf_counter()
                props = est.transform(X, coords, regions)
                t2 = time.perf_counter()
                s = score(props, d["proportions"])
                rows.append(
                    {
                        "scenario": scenario,
                        "seed": seed,
                        "method": name,
                        "counts_per_spot": depth_per_spot,
                        **s,
                        "fit_s": t1 - t0,
                        "transform_s": t2 - t1,
                    }
                )
                print(
                    f"{scenario:8s} seed {seed} {name:42s} RMSE {s['rmse']:.4f} "
                    f"JSD {s['jsd']:.4f} r {s['pearson']:.3f} fit {t1 - t0:5.1f}s "
                    f"transform {t2 - t1:5.2f}s",
                    flush=True,
                )
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)

    def fmt(v):
        return f"{np.median(v):.4f} [{np.min(v):.4f}-{np.max(v):.4f}]"

    print(
        "\n| scenario | method | RMSE median [range] | JSD median | Pearson r median "
        "| fit s | transform s |"
    )
    print("|---|---|---|---|---|---|---|")
    for (scenario, name), g in df.groupby(["scenario", "method"], sort=False):
        print(
            f"| {scenario} | {name} | {fmt(g['rmse'])} | {np.median(g['jsd']):.4f} | "
            f"{np.median(g['pearson']):.3f} | {np.median(g['fit_s']):.1f} | "
            f"{np.median(g['transform_s']):.2f} |"
        )
    base = df[df.method == "plain KL (300 it.)"].set_index(["scenario", "seed"])["rmse"]
    print("\nRMSE ratio to plain KL (median over seeds):")
    for (scenario, name), g in df.groupby(["scenario", "method"], sort=False):
        ratio = g.set_index(["scenario", "seed"])["rmse"] / base
        print(f"  {scenario:8s} {name:42s} {np.nanmedian(ratio.to_numpy()):.3f}")


if __name__ == "__main__":
    main()
