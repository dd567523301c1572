"""Headless demo: STL NMF on the bundled simulated slide, writing a table and a figure.

``python -m napari_stlnmf.demo --out DIR`` simulates a Visium-like slide (hexagonal grid,
three regions, 8 cell types, counts summed from single cells held out of the reference),
trains STL NMF on slides simulated from the reference, deconvolves, and writes
``DIR/proportions.csv`` and ``DIR/proportions.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from .core.estimator import STLNMF, PlainKL
from .core.metrics import score
from .core.simulate import SimulationSettings, simulate_demo_slide
from .io.atomic import atomic_write


def _figure(coords, props, truth, names, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = min(4, len(names))
    fig, axes = plt.subplots(2, show, figsize=(3.2 * show, 6.2), squeeze=False)
    for j in range(show):
        for row, (vals, label) in enumerate([(truth, "truth"), (props, "STL NMF")]):
            ax = axes[row, j]
            sc = ax.scatter(
                coords[:, 0],
                -coords[:, 1],
                c=vals[:, j],
                s=9,
                cmap="viridis",
                vmin=0,
                vmax=1,
                linewidths=0,
            )
            ax.set_title(f"{names[j]} ({label})", fontsize=9)
            ax.set_aspect("equal")
            ax.axis("off")
    fig.colorbar(sc, ax=axes, shrink=0.6, label="cell fraction")
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="stlnmf_sample_output", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    slide = simulate_demo_slide(seed=args.seed, settings=SimulationSettings(depth=0.05))
    X, coords, regions = slide["counts"], slide["coords"], slide["regions"]
    ref, truth, names = slide["reference"], slide["proportions"], slide["cell_types"]
    print(
        f"slide: {X.shape[0]} spots, {X.shape[1]} genes, {len(names)} cell types, "
        f"{len(set(regions.tolist()))} regions"
    )
    t0 = time.perf_counter()
    model = STLNMF(epochs=args.epochs, device=args.device, random_state=args.seed)
    model.fit(ref, coords, regions, X=X)
    t1 = time.perf_counter()
    props = model.transform(X, coords, regions)
    t2 = time.perf_counter()
    base = PlainKL(device=args.device).fit(ref).transform(X)
    s, b = score(props, truth), score(base, truth)
    print(f"trained in {t1 - t0:.1f} s, deconvolved in {t2 - t1:.2f} s")
    print(f"RMSE vs truth: STL NMF {s['rmse']:.4f}, plain KL {b['rmse']:.4f}")

    table = pd.DataFrame(props, columns=names)
    table.insert(0, "region", regions)
    table.insert(0, "y", coords[:, 1])
    table.insert(0, "x", coords[:, 0])
    table.insert(0, "barcode", [f"spot{i:05d}" for i in range(len(table))])
    csv = out / "proportions.csv"
    atomic_write(csv, lambda tmp: table.to_csv(tmp, index=False))
    png = out / "proportions.png"
    _figure(coords, props, truth, names, png)
    print(f"wrote {csv}")
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
