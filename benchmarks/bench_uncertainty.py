#!/usr/bin/env python
"""Calibration of the per-spot 90 % intervals (issue 17) on every set with ground truth.

For every set of ``bench_accuracy`` (the bundled mouse_brain sample, the shared sets and
their shallow variants, ``benchmarks/make_shallow.py``), trains the default model (which
calibrates its intervals on simulated slides after training), deconvolves with
``STLNMF.transform_intervals`` and prints: coverage of the true cell fractions by the
nominal 90 % interval (all spot x type entries; entries whose truth is above 0; each type
with at least 5 % mean abundance, lowest and highest), the mean width, the point RMSE,
and what the intervals cost: the calibration's share of training and the lookup's share
of inference. A truth of 0 counts as covered when the lower bound is 0 (fractions are
floored at 1e-8 by the network, bounds are clipped to [0, 1]). Writes
``benchmarks/out/uncertainty.md``::

    python benchmarks/bench_uncertainty.py                      # every set found
    python benchmarks/bench_uncertainty.py --sets mouse_brain synthetic --seeds 0 1
    python benchmarks/bench_uncertainty.py --scale 500000       # the cost on a whole slide
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from bench_accuracy import all_names, load, write_markdown

from napari_stlnmf.io.reference import reference_from_anndata
from napari_stlnmf.options import RunOptions
from napari_stlnmf.pipeline import prepare, train

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "uncertainty.md"


def with_truth(model, prep, truth, u, *arrays) -> list[np.ndarray]:
    """The truth and ``u`` (then each of ``arrays``, spots x model types) on the spots and
    types the truth has, dropping spots the model left NaN."""
    types = [t for t in truth.columns if t in model.reference_.cell_types]
    cols = [model.reference_.cell_types.index(t) for t in types]
    pos = {b: i for i, b in enumerate(prep.barcodes)}
    keep = [b for b in truth.index if b in pos]
    rows = [pos[b] for b in keep]
    ok = np.isfinite(u[rows]).all(1)
    tr = truth.loc[keep, types].to_numpy(dtype=np.float64)[ok]
    return [tr, *(a[rows][ok][:, cols] for a in (u, *arrays))]


def one_set(name: str, seed: int) -> dict:
    spatial, ref_adata, regions, truth = load(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = "cell_type" if "cell_type" in ref_adata.obs else ref_adata.obs.columns[0]
        ref = reference_from_anndata(ref_adata, key)
        prep = prepare(spatial, ref, regions=regions)
        t0 = time.perf_counter()
        model = train(prep, method="stlnmf", seed=seed, device="cpu")
        t_train = time.perf_counter() - t0
        # the calibration alone: the same fit without it
        model0 = train(
            prep, method="stlnmf", seed=seed, device="cpu", options=RunOptions(interval_slides=0)
        )
    t_train0 = model0.fit_seconds_
    x = prep.X.tocsr().astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        point = model.transform(x, prep.coords, prep.regions)
        t_point = time.perf_counter() - t0
        t0 = time.perf_counter()
        u, lo, hi = model.transform_intervals(x, prep.coords, prep.regions)
        t_int = time.perf_counter() - t0
    assert np.array_equal(point, u, equal_nan=True)
    tr, est, lo, hi = with_truth(model, prep, truth, u, lo, hi)
    inside = (tr >= lo - 1e-9) & (tr <= hi + 1e-9)
    common = tr.mean(0) >= 0.05
    per_type = inside[:, common].mean(0)
    row = {
        "set": name,
        "seed": seed,
        "spots": len(tr),
        "coverage": float(inside.mean()),
        "coverage_truth_above_0": float(inside[tr > 0].mean()),
        "lowest_common_type": float(per_type.min()),
        "highest_common_type": float(per_type.max()),
        "common_types": int(common.sum()),
        "width": float((hi - lo).mean()),
        "rmse": float(np.sqrt(np.mean((est - tr) ** 2))),
        "calibration_share_of_training": (t_train - t_train0) / max(t_train0, 1e-9),
        "lookup_share_of_inference": (t_int - t_point) / max(t_point, 1e-9),
        "train_s": t_train,
    }
    print(row, flush=True)
    return row


def cost_at_scale(n_spots: int, repeat: int) -> str:
    """What the intervals cost a whole slide through the CLI: ``stlnmf deconvolve --model``
    with a model that has intervals against the same model without (the lookup, two more
    CSVs, two more obsm in result.h5ad), alternating, medians of ``repeat`` runs."""
    import statistics
    import tempfile

    from bench_scale_500k import make_inputs, run_measured, stlnmf

    from napari_stlnmf.io.model_file import load_model, save_model

    folder = Path(tempfile.mkdtemp(prefix="stlnmf_unc_"))
    meta = make_inputs(folder, n_spots, 100, 10)
    with_int = folder / "with.safetensors"
    cmd = stlnmf(
        "train",
        "--spatial",
        folder / "crop.h5ad",
        "--regions",
        folder / "crop_regions.csv",
        "--reference",
        folder / "reference.h5ad",
        "--label-key",
        "cell_type",
        "--save",
        with_int,
        "-q",
    )
    assert run_measured(cmd, folder / "train.log")["rc"] == 0
    model = load_model(with_int)
    model.intervals_ = None  # the very same network, without its calibration
    without = folder / "without.safetensors"
    save_model(model, without)
    times = {"with": [], "without": []}
    for k in range(repeat):
        for name, m in (("without", without), ("with", with_int)):
            cmd = stlnmf("deconvolve", "--spatial", folder / "slide.h5ad", "--regions")
            cmd += map(str, [folder / "regions.csv", "--model", m, "--out", folder / name, "-q"])
            r = run_measured(cmd, folder / f"{name}{k}.log")
            assert r["rc"] == 0, r["log"][-2000:]
            times[name].append(r["wall_s"])
            print(name, k, round(r["wall_s"], 2), flush=True)
    a, b = statistics.median(times["without"]), statistics.median(times["with"])
    return (
        f"| {meta['spots']:,} spots, {meta['genes']} genes, {meta['types']} types | "
        f"{a:.1f} s | {b:.1f} s | {b / a - 1:+.1%} |"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="*", default=None)
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument(
        "--scale",
        type=int,
        default=0,
        metavar="N",
        help="instead: time stlnmf deconvolve on an N-spot slide with and without intervals",
    )
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if args.scale:
        row = cost_at_scale(args.scale, args.repeat)
        text = (
            "| slide | deconvolve, no intervals | with intervals | cost |\n"
            "|---|---:|---:|---:|\n" + row + "\n"
        )
        (OUT.parent / "uncertainty_cost.md").write_text(text)
        print(text)
        return 0
    names = args.sets or all_names()
    rows = [one_set(name, seed) for name in names for seed in args.seeds]
    lines = [
        f"# Per-spot 90 % intervals ({time.strftime('%Y-%m-%d')}, seeds {args.seeds})",
        "",
        "| set | seed | spots | coverage | coverage, truth > 0 | common types (>= 5 %): "
        "lowest – highest | mean width | point RMSE | calibration / training | "
        "lookup / inference |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['seed']} | {r['spots']} | {r['coverage']:.3f} | "
            f"{r['coverage_truth_above_0']:.3f} | {r['lowest_common_type']:.2f} – "
            f"{r['highest_common_type']:.2f} ({r['common_types']}) | {r['width']:.3f} | "
            f"{r['rmse']:.4f} | {r['calibration_share_of_training']:+.0%} | "
            f"{r['lookup_share_of_inference']:+.0%} |"
        )
    write_markdown(OUT, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
