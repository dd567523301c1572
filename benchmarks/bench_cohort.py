#!/usr/bin/env python
"""A cohort of slides: ``stlnmf batch`` on a LocalCluster against one slide at a time.

1. Writes (in ``benchmarks/out/cohort/``, not tracked) ``--slides`` synthetic Visium-like
   slides of ``--spots`` spots each (hex lattice, three regions in bands, counts drawn
   from a synthetic reference of ``--types`` types and ``--genes`` genes, each slide its
   own compositions), the reference, a manifest, and trains one model on the first slide
   (``stlnmf train``; not part of the comparison).
2. Times, as child processes (wall clock, and peak RSS from ``os.wait4``):
   - **one slide**: ``stlnmf deconvolve --model`` on slide 0;
   - **sequential**: the same command for every slide, one after another;
   - **cohort**: ``stlnmf batch MANIFEST --model --workers N --force`` (a LocalCluster
     of N single-threaded worker processes; ``--force`` so that every run computes).
   Each ``--repeat`` times, quiet and then with one core kept busy by a spinning process.
3. Checks that the cohort's proportions equal the sequential ones byte for byte, and
   reports the target: cohort wall <= slides x one slide x 1.10, with the peak memory of
   each worker (from the cohort's run.json) and of the driver.

    python benchmarks/bench_cohort.py                  # 8 slides x 5,000 spots, 2 workers
    python benchmarks/bench_cohort.py --slides 4 --spots 2000 --repeat 1 --no-busy
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale_500k import PITCH, run_measured, stlnmf, write_reference  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE / "out" / "cohort"
REPORT = HERE / "out" / "cohort.md"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_cohort(folder: Path, n_slides: int, n: int, n_genes: int, n_types: int) -> dict:
    """reference.h5ad, slide{i}.h5ad + slide{i}_regions.csv, manifest.csv."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    from napari_stlnmf.core.simulate import hex_grid

    folder.mkdir(parents=True, exist_ok=True)
    ref = write_reference(folder / "reference.h5ad", n_types, n_genes, seed=0)
    sig = np.asarray(ref.signatures, dtype=np.float64)
    depth = 600.0 / (5.0 * float(sig.sum(0).mean()))  # ~600 counts per spot
    rows = int(np.ceil(np.sqrt(n * 2 / np.sqrt(3))))
    coords = hex_grid(rows, int(np.ceil(n / rows)), PITCH)[:n]
    x = coords[:, 0]
    regions = np.minimum((3 * (x - x.min()) / (np.ptp(x) + 1e-9)).astype(np.int64), 2) + 1
    manifest = []
    nnz = []
    for i in range(n_slides):
        rng = np.random.default_rng(100 + i)
        centre = rng.dirichlet(np.full(n_types, 0.7), size=3)
        g = rng.gamma(6.0 * centre[regions - 1])
        props = g / np.maximum(g.sum(1, keepdims=True), 1e-12)
        n_cells = 1 + rng.poisson(4.0, size=n)
        X = sp.csr_matrix(rng.poisson((props * n_cells[:, None]) @ sig.T * depth).astype(np.int32))
        nnz.append(X.nnz)
        barcodes = [f"S{i}_{j:06d}-1" for j in range(n)]
        a = ad.AnnData(X=X, obs=pd.DataFrame(index=barcodes), var=pd.DataFrame(index=ref.genes))
        a.obsm["spatial"] = coords
        a.write_h5ad(folder / f"slide{i}.h5ad")
        pd.DataFrame({"barcode": barcodes, "region": regions}).to_csv(
            folder / f"slide{i}_regions.csv", index=False
        )
        manifest.append((f"slide{i}.h5ad", f"slide{i}_regions.csv", f"slide{i}"))
    pd.DataFrame(manifest, columns=["path", "regions", "name"]).to_csv(
        folder / "manifest.csv", index=False
    )
    return {
        "slides": n_slides,
        "spots": n,
        "genes": n_genes,
        "types": n_types,
        "nnz_per_slide": int(np.median(nnz)),
    }


def spin() -> None:
    while True:
        pass


def run(cmd, log_file: Path) -> dict:
    r = run_measured(cmd, log_file)
    if r["rc"] != 0:
        raise SystemExit(f"failed ({r['rc']}): {' '.join(map(str, cmd))}\n{r['log'][-2000:]}")
    return r


def one_round(args, model: Path, tag: str) -> dict:
    d = DATA
    logs = d / "logs"
    logs.mkdir(exist_ok=True)
    one = run(
        stlnmf(
            "deconvolve",
            "--spatial",
            d / "slide0.h5ad",
            "--regions",
            d / "slide0_regions.csv",
            "--model",
            model,
            "--out",
            d / "one",
            "-q",
        ),
        logs / f"one_{tag}.log",
    )
    t0 = time.perf_counter()
    seq_rss = []
    for i in range(args.slides):
        r = run(
            stlnmf(
                "deconvolve",
                "--spatial",
                d / f"slide{i}.h5ad",
                "--regions",
                d / f"slide{i}_regions.csv",
                "--model",
                model,
                "--out",
                d / "sequential" / f"slide{i}",
                "-q",
            ),
            logs / f"seq{i}_{tag}.log",
        )
        seq_rss.append(r["peak_rss_gib"])
    seq = time.perf_counter() - t0
    coh = run(
        stlnmf(
            "batch",
            d / "manifest.csv",
            "--model",
            model,
            "--out",
            d / "batch",
            "--workers",
            args.workers,
            "--force",
            "-q",
        ),
        logs / f"batch_{tag}.log",
    )
    summary = json.loads((d / "batch" / "run.json").read_text())
    worker_mib = [s["peak_rss_mib"] for s in summary["slides"] if "peak_rss_mib" in s]
    return {
        "one_s": one["wall_s"],
        "one_rss_gib": one["peak_rss_gib"],
        "sequential_s": seq,
        "sequential_rss_gib": max(seq_rss),
        "cohort_s": coh["wall_s"],
        # wait4's figure is the largest of the command and its workers: the driver's own
        # is in the cohort's run.json
        "driver_rss_gib": summary["peak_rss_mib_driver"] / 1024,
        "worker_rss_mib": max(worker_mib),
        "slide_task_s": statistics.median(
            s["seconds"] for s in summary["slides"] if "seconds" in s
        ),
    }


def check_equal(n_slides: int) -> bool:
    for i in range(n_slides):
        for f in ("proportions.csv", "region_means.csv"):
            a = (DATA / "sequential" / f"slide{i}" / f).read_bytes()
            b = (DATA / "batch" / "slides" / f"slide{i}" / f).read_bytes()
            if a != b:
                return False
    return True


def median_of(rounds: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def render(meta: dict, quiet: dict, busy: dict | None, args, equal: bool) -> str:
    n = args.slides
    lines = [
        f"# Cohort benchmark ({datetime.date.today()})",
        "",
        f"{n} slides x {meta['spots']:,} spots, {meta['genes']} genes, {meta['types']} types "
        f"({meta['nnz_per_slide']:,} nonzeros per slide); LocalCluster of {args.workers} "
        f"single-threaded workers; {os.cpu_count()} CPUs ({platform.processor() or 'cpu'}); "
        f"medians of {args.repeat} run(s).",
        "",
        "| machine | one slide (s) | sequential (s) | cohort (s) | cohort / (n x one) | "
        "target <= 1.10 | slide task in a worker (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in (("quiet", quiet), ("one core busy", busy)):
        if r is None:
            continue
        ratio = r["cohort_s"] / (n * r["one_s"])
        lines.append(
            f"| {name} | {r['one_s']:.2f} | {r['sequential_s']:.1f} | {r['cohort_s']:.1f} | "
            f"{ratio:.2f} | {'met' if ratio <= 1.10 else 'NOT met'} | {r['slide_task_s']:.2f} |"
        )
    lines += [
        "",
        f"Memory (quiet): peak RSS per worker {quiet['worker_rss_mib']:.0f} MiB, driver "
        f"{quiet['driver_rss_gib'] * 1024:.0f} MiB; one `stlnmf deconvolve` "
        f"{quiet['one_rss_gib'] * 1024:.0f} MiB.",
        f"Cohort proportions equal to sequential, byte for byte: {'yes' if equal else 'NO'}.",
    ]
    if busy is not None:
        lines.append(
            f"Busy / quiet: cohort {busy['cohort_s'] / quiet['cohort_s']:.2f}x, "
            f"sequential {busy['sequential_s'] / quiet['sequential_s']:.2f}x."
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slides", type=int, default=8)
    p.add_argument("--spots", type=int, default=5000)
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--types", type=int, default=12)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-busy", action="store_true")
    args = p.parse_args(argv)

    log(f"writing {args.slides} slides of {args.spots} spots in {DATA}")
    meta = make_cohort(DATA, args.slides, args.spots, args.genes, args.types)
    model = DATA / "model.safetensors"
    log("training the model on slide 0")
    run(
        stlnmf(
            "train",
            "--spatial",
            DATA / "slide0.h5ad",
            "--regions",
            DATA / "slide0_regions.csv",
            "--reference",
            DATA / "reference.h5ad",
            "--label-key",
            "cell_type",
            "--save",
            model,
            "-q",
        ),
        DATA / "train.log",
    )
    quiet = []
    for k in range(args.repeat):
        quiet.append(one_round(args, model, f"quiet{k}"))
        log(f"quiet {k}: {quiet[-1]}")
    equal = check_equal(args.slides)
    busy = None
    if not args.no_busy:
        spinner = mp.get_context("fork").Process(target=spin, daemon=True)
        spinner.start()
        try:
            rounds = []
            for k in range(args.repeat):
                rounds.append(one_round(args, model, f"busy{k}"))
                log(f"busy {k}: {rounds[-1]}")
            busy = median_of(rounds)
        finally:
            spinner.terminate()
    text = render(meta, median_of(quiet), busy, args, equal)
    REPORT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
