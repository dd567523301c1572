#!/usr/bin/env python
"""A Visium HD slide end to end on this machine's CPUs: read -> train -> deconvolve -> outputs.

1. **Slide** (written once, kept in ``benchmarks/out/hd/<name>/``; ``--fresh`` rewrites it):
   a Space Ranger ``outs/`` folder of ``--bins`` 8 µm bins on a square grid
   (``binned_outputs/square_008um/`` with ``filtered_feature_bc_matrix.h5``,
   ``spatial/tissue_positions.parquet``, ``scalefactors_json.json``, hires/lowres images),
   a region label image painted on the hires image (``regions.tif``), a single-cell
   reference (``reference.h5ad``) and the true cell fractions (``truth.npy``).
   Each bin holds 1-3 cells whose types follow the regions (each with its own mixture)
   and discrete niches (patches of a few bins sharing one type); its counts are molecules
   drawn from **real cells'** counts, thinned to about ``--umis`` UMIs per bin (HD depth):
   ``--cells seqfish`` (default where ``../shared`` holds it: the 576 seqFISH+ cortex cells,
   10,000 genes, their 15 Louvain clusters as types) or ``--cells synthetic`` (the
   package's demo reference, 18,000 genes x 20 types). Half of each type's cells make the
   slide, the other half the reference, as with a reference from other cells.
2. **train**: ``stlnmf train --spatial outs --regions regions.tif --reference ... --save M``
   (training on simulated crops of the slide's geometry).
3. **deconvolve**: ``stlnmf deconvolve --spatial outs --regions regions.tif --model M --out D``,
   read -> all outputs, on a quiet machine and with a busy-loop process beside it
   (``--busy``), each timed from ``os.wait4`` (wall, peak RSS of the child).
4. **Per-update cost against the memory-bandwidth bound**: one STL NMF layer on the slide's
   genes, in this process, against the bytes it must stream (counts in CSR, two
   spot x type arrays, the graph) at this machine's measured copy bandwidth.

Prints a markdown table and writes it to ``benchmarks/out/visium_hd.md``::

    python benchmarks/bench_visium_hd.py                 # 650k bins
    python benchmarks/bench_visium_hd.py --bins 50000    # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_scale_500k import run_measured, stlnmf  # the same child timing

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "seqfish_plus_cortex" / "cells.h5ad"
OUT_MD = HERE / "out" / "visium_hd.md"
MPP = 0.2738  # µm per full-resolution px, as in 10x's HD samples
BIN_UM = 8
HIRES_MAX = 6000  # Space Ranger's hires image: 6,000 px on its long side
N_REGIONS = 6


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- cells


def load_cells(kind: str, seed: int):
    """(cells CSR int32, labels str array, gene names) of real or synthetic single cells."""
    import scipy.sparse as sp

    if kind == "seqfish":
        import anndata as ad

        a = ad.read_h5ad(SHARED)
        labels = np.array([f"louvain_{v}" for v in a.obs["louvain"].astype(str)])
        return sp.csr_matrix(a.X).astype(np.int32), labels, [str(g) for g in a.var_names]
    from napari_stlnmf.core.simulate import demo_reference

    ref = demo_reference(n_types=20, n_genes=18_000, cells_per_type=40, seed=seed)
    return (
        sp.csr_matrix(ref.cells).astype(np.int32),
        np.asarray(ref.labels).astype(str),
        list(ref.genes),
    )


def split_cells(labels: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Half of each type's cells for the slide, the other half for the reference."""
    slide, ref = [], []
    for t in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == t))
        half = max(1, idx.size // 2)
        slide.append(idx[:half])
        ref.append(idx[half:] if idx.size > 1 else idx)
    return np.concatenate(slide), np.concatenate(ref)


# --------------------------------------------------------------------------- slide


def layout(n_bins: int, n_types: int, rng):
    """Grid rows/cols, region of every bin, and the types of its 1-3 cells."""
    side = int(np.ceil(np.sqrt(n_bins)))
    rows, cols = np.divmod(np.arange(n_bins), side)
    # regions: Voronoi cells of random seeds, a few per slide
    seeds = rng.uniform(0, side, size=(N_REGIONS, 2))
    d2 = (rows[:, None] - seeds[None, :, 0]) ** 2 + (cols[:, None] - seeds[None, :, 1]) ** 2
    region = d2.argmin(1).astype(np.int32)
    mix = rng.dirichlet(np.full(n_types, 0.4), size=N_REGIONS)
    # niches: 6x6-bin patches with one dominant type drawn from the region's mixture
    patch = (rows // 6) * (side // 6 + 1) + cols // 6
    n_patch = int(patch.max()) + 1
    patch_region = np.zeros(n_patch, np.int64)
    patch_region[patch] = region
    cum = np.cumsum(mix[patch_region], axis=1)
    patch_type = (rng.random(n_patch)[:, None] > cum).sum(1).clip(max=n_types - 1)
    n_cells = rng.integers(1, 4, size=n_bins)
    types = np.full((n_bins, 3), -1, np.int64)
    cum_bin = np.cumsum(mix[region], axis=1)
    for j in range(3):
        own = (rng.random(n_bins)[:, None] > cum_bin).sum(1).clip(max=n_types - 1)
        niche = rng.random(n_bins) < 0.6
        t = np.where(niche, patch_type[patch], own)
        types[:, j] = np.where(j < n_cells, t, -1)
    return side, rows, cols, region, types


def simulate_counts(types, cells, labels, type_names, umis, rng, chunk=40_000):
    """Bins' counts: molecules drawn from their cells' real counts, ~``umis`` per bin."""
    import scipy.sparse as sp

    n_bins = types.shape[0]
    n_genes = cells.shape[1]
    by_type = [np.flatnonzero(labels == t) for t in type_names]
    lib = np.asarray(cells.sum(1)).ravel().astype(np.float64)
    # one cumulative distribution over genes per cell, offset by the cell's index, so that
    # a molecule of cell c is one searchsorted of c + U(0, 1) in a single sorted array
    dense = cells.toarray().astype(np.float64)
    cdf = np.cumsum(dense / np.maximum(lib, 1)[:, None], axis=1)
    cdf[:, -1] = 1.0
    flat = (cdf + np.arange(cells.shape[0])[:, None]).ravel()
    del dense, cdf
    cell_of = np.full(types.shape, -1, np.int64)
    for j in range(types.shape[1]):
        for t in range(len(type_names)):
            sel = np.flatnonzero(types[:, j] == t)
            cell_of[sel, j] = rng.choice(by_type[t], size=sel.size)
    truth = np.zeros((n_bins, len(type_names)))
    for j in range(types.shape[1]):
        ok = types[:, j] >= 0
        np.add.at(truth, (np.flatnonzero(ok), types[ok, j]), 1.0)
    truth /= truth.sum(1, keepdims=True)
    depth = rng.poisson(umis, size=n_bins).clip(min=5)
    parts = []
    for s in range(0, n_bins, chunk):
        e = min(s + chunk, n_bins)
        cs = cell_of[s:e]
        w = np.where(cs >= 0, lib[np.maximum(cs, 0)], 0.0)
        w /= w.sum(1, keepdims=True)
        d = depth[s:e]
        bins = np.repeat(np.arange(s, e), d)
        # which of the bin's cells each molecule comes from (by the cells' library sizes)
        pick = (rng.random(bins.size)[:, None] > np.cumsum(w, 1)[bins - s]).sum(1)
        cell = cs[bins - s, pick.clip(max=2)]
        gene = np.searchsorted(flat, cell + rng.random(bins.size)) - cell * n_genes
        gene = gene.clip(0, n_genes - 1)
        key = bins.astype(np.int64) * n_genes + gene
        uniq, cnt = np.unique(key, return_counts=True)
        parts.append((uniq // n_genes, uniq % n_genes, cnt))
    r = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    v = np.concatenate([p[2] for p in parts]).astype(np.int32)
    x = sp.csr_matrix((v, (r, c)), shape=(n_bins, n_genes))
    return x, truth


def write_slide(folder: Path, n_bins: int, kind: str, umis: float, seed: int) -> dict:
    import anndata as ad
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from napari_stlnmf.io.regions import write_label_image
    from napari_stlnmf.io.tenx import write_10x_h5

    rng = np.random.default_rng(seed)
    cells, labels, genes = load_cells(kind, seed)
    type_names = sorted(set(labels.tolist()))
    slide_idx, ref_idx = split_cells(labels, rng)
    side, rows, cols, region, types = layout(n_bins, len(type_names), rng)
    log(f"simulating {n_bins} bins from {slide_idx.size} {kind} cells, {len(genes)} genes")
    x, truth = simulate_counts(types, cells[slide_idx], labels[slide_idx], type_names, umis, rng)
    bin_px = BIN_UM / MPP
    x0 = y0 = 500.0
    px_x = x0 + (cols + 0.5) * bin_px
    px_y = y0 + (rows + 0.5) * bin_px
    full = int(np.ceil(2 * x0 + side * bin_px))
    hires = HIRES_MAX / full
    bins_dir = folder / "outs" / "binned_outputs" / "square_008um"
    (bins_dir / "spatial").mkdir(parents=True, exist_ok=True)
    barcodes = [f"s_008um_{r:05d}_{c:05d}-1" for r, c in zip(rows, cols)]
    pos = pd.DataFrame(
        {
            "barcode": barcodes,
            "in_tissue": np.ones(n_bins, np.int32),
            "array_row": rows.astype(np.int32),
            "array_col": cols.astype(np.int32),
            "pxl_row_in_fullres": px_y,
            "pxl_col_in_fullres": px_x,
        }
    )
    pq.write_table(
        pa.Table.from_pandas(pos, preserve_index=False),
        bins_dir / "spatial" / "tissue_positions.parquet",
    )
    sf = {
        "spot_diameter_fullres": bin_px,
        "bin_size_um": float(BIN_UM),
        "microns_per_pixel": MPP,
        "tissue_hires_scalef": hires,
        "tissue_lowres_scalef": hires / 10,
        "fiducial_diameter_fullres": 100.0,
        "regist_target_img_scalef": hires,
    }
    (bins_dir / "spatial" / "scalefactors_json.json").write_text(json.dumps(sf))
    n_hi = round(full * hires)
    # an H&E-like hires image: pink tissue with the regions faintly shaded
    yy, xx = np.mgrid[0:n_hi, 0:n_hi]
    rr = ((yy / hires - y0) / bin_px).astype(np.int64).clip(0, side - 1)
    cc = ((xx / hires - x0) / bin_px).astype(np.int64).clip(0, side - 1)
    flat_idx = (rr * side + cc).clip(max=n_bins - 1)
    reg_img = region[flat_idx]
    inside = (yy / hires >= y0) & (xx / hires >= x0) & (rr * side + cc < n_bins)
    img = np.full((n_hi, n_hi, 3), 240, np.uint8)
    shade = (200 - 12 * reg_img).astype(np.uint8)
    img[inside] = np.stack([shade + 30, shade - 60, shade + 10], -1)[inside]
    spatial = folder / "outs" / "spatial"
    spatial.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(spatial / "tissue_hires_image.png")
    Image.fromarray(img[::10, ::10]).save(spatial / "tissue_lowres_image.png")
    labels_img = np.where(inside, reg_img + 1, 0).astype(np.uint16)
    write_label_image(folder / "regions.tif", labels_img)
    del yy, xx, rr, cc, flat_idx, reg_img, inside, img, labels_img
    log(f"writing {x.nnz:,} nonzeros")
    write_10x_h5(
        bins_dir / "filtered_feature_bc_matrix.h5",
        x,
        barcodes,
        [f"G{i:05d}" for i in range(len(genes))],
        genes,
        genome="GRCm39",
    )
    ref = ad.AnnData(
        X=cells[ref_idx],
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical(labels[ref_idx])},
            index=[f"cell{i}" for i in ref_idx],
        ),
        var=pd.DataFrame(index=genes),
    )
    ref.write_h5ad(folder / "reference.h5ad")
    np.save(folder / "truth.npy", truth.astype(np.float32))
    meta = {
        "bins": n_bins,
        "genes": len(genes),
        "types": len(type_names),
        "cells": kind,
        "nnz": int(x.nnz),
        "median_umis": float(np.median(np.asarray(x.sum(1)).ravel())),
        "type_names": type_names,
        "barcodes_order": "row-major grid",
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


# --------------------------------------------------------------------------- runs


class Busy:
    """A pure-Python busy loop in its own process: it holds one core while it runs."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def score(out_dir: Path, folder: Path, meta: dict) -> float:
    import pandas as pd

    table = pd.read_csv(out_dir / "proportions.csv", index_col=0)
    truth = np.load(folder / "truth.npy")
    side = int(np.ceil(np.sqrt(meta["bins"])))
    parts = [b.split("_") for b in table.index]  # s_008um_RRRRR_CCCCC-1
    order = [int(p[2]) * side + int(p[3].split("-")[0]) for p in parts]
    cols = [c for c in meta["type_names"] if c in table.columns]
    t = truth[np.asarray(order)][:, [meta["type_names"].index(c) for c in cols]]
    return float(np.sqrt(np.nanmean((table[cols].to_numpy() - t) ** 2)))


# --------------------------------------------------------------------------- bandwidth


def copy_bandwidth_gbs(n_bytes: int = 1 << 29) -> float:
    """Best of 5 numpy copies of a 512 MiB array (read + write), GB/s."""
    a = np.ones(n_bytes // 8)
    b = np.empty_like(a)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * n_bytes / best / 1e9


def _cpu_ghz() -> float:
    """Nominal clock from /proc/cpuinfo (2.5 GHz where it says nothing)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) / 1000.0
    except OSError:
        pass
    return 2.5


def layer_cost(folder: Path, model: Path) -> dict:
    """Seconds of one STL NMF update on the whole slide against its streamed bytes."""
    import torch

    from napari_stlnmf.core import _fused
    from napari_stlnmf.io.model_file import load_model
    from napari_stlnmf.io.visium_hd import read_visium_hd

    adata = read_visium_hd(folder / "outs", load_images=())
    est = load_model(model)
    genes = list(est.reference_.genes)
    lookup = {g: i for i, g in enumerate(adata.var_names)}
    x = adata.X.tocsr()[:, [lookup[g] for g in genes]].tocsr().astype(np.float32)
    from napari_stlnmf.core.data_terms import make_data_term

    data = make_data_term(
        x, est.reference_.signatures, "kl", "cpu", torch.float32, est.reference_.weights
    )
    fused = _fused.fused_for(data)
    m, k = x.shape[0], est.reference_.n_types
    u = np.full((m, k), 1.0 / k, np.float32)
    _fused.run_updates(fused, u, 1)
    t0 = time.perf_counter()
    reps = 5
    _fused.run_updates(fused, u, reps)
    per = (time.perf_counter() - t0) / reps
    # per update: col (int32) + vals (f32) per nonzero, row pointers, u read + written,
    # the graph's ~8 neighbours' (int32 + f32) per bin, and the group weights read
    n_bytes = x.nnz * 8 + (m + 1) * 8 + 3 * m * k * 4 + m * 8 * 8
    bw = copy_bandwidth_gbs()
    kp = fused.n_padded
    flops = x.nnz * 2 * 2 * kp  # a dot and an axpy of kp floats per nonzero, 2 flops per FMA
    ghz = _cpu_ghz()
    cores = len(os.sched_getaffinity(0))
    peak = cores * ghz * 32  # 2 FMA units x 8 float32 lanes x 2 flops, per core
    return {
        "flops": flops,
        "peak_gflops": peak,
        "ghz": ghz,
        "flop_s": flops / (peak * 1e9),
        "genes": len(genes),
        "nnz": int(x.nnz),
        "update_s": per,
        "bytes_gb": n_bytes / 1e9,
        "bandwidth_gbs": bw,
        "bound_s": n_bytes / 1e9 / bw,
        "ratio": per / (n_bytes / 1e9 / bw),
        "threads": _fused.worker_count(),
        "cores": cores,
    }


# --------------------------------------------------------------------------- main


def _num(v: float) -> str:
    return "" if v != v else f"{v:.1f}"  # NaN: not reported by that step


def render(meta: dict, rows: list[dict], cost: dict | None) -> str:
    import statistics

    lines = [
        f"# Visium HD end to end ({time.strftime('%Y-%m-%d %H:%M')}, {platform.node()})",
        "",
        f"- slide: {meta['bins']:,} bins of {BIN_UM} µm, {meta['genes']:,} genes, "
        f"{meta['types']} types ({meta['cells']} cells), {meta['nnz']:,} nonzeros, "
        f"median {meta['median_umis']:.0f} UMIs per bin",
        f"- machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; busy = a "
        "`while True: pass` process beside the run",
        "",
        "| step | machine | runs | wall s (median) | all runs | peak RSS GiB | read s | fit s "
        "| RMSE |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["step"], r["machine"]), []).append(r)
    med = {}
    for (step, machine), rs in groups.items():
        walls = [r["wall_s"] for r in rs]
        med[(step, machine)] = statistics.median(walls)
        t = [r.get("timings", {}) for r in rs]
        read = statistics.median([x.get("read_seconds", float("nan")) for x in t])
        fit = statistics.median(
            [x.get("deconvolve_seconds", x.get("train_seconds", float("nan"))) for x in t]
        )
        rmse = rs[0].get("rmse")
        lines.append(
            f"| {step} | {machine} | {len(rs)} | {med[(step, machine)]:.1f} | "
            + " / ".join(f"{w:.1f}" for w in walls)
            + f" | {max(r['peak_rss_gib'] for r in rs):.2f} | {_num(read)} | {_num(fit)} | "
            + ("" if rmse is None else f"{rmse:.4f}")
            + " |"
        )
    lines.append("")
    for (step, machine), v in med.items():
        if machine == "busy" and (step, "quiet") in med:
            lines.append(f"- {step}: busy / quiet = {v / med[(step, 'quiet')]:.2f}x (medians)")
    if cost:
        lines += [
            "",
            f"One update on the slide's {cost['genes']:,} model genes ({cost['nnz']:,} "
            f"nonzeros, {cost['threads']} threads): {cost['update_s'] * 1e3:.0f} ms "
            f"({cost['update_s'] / cost['nnz'] * 1e9:.1f} ns per nonzero). It must stream "
            f"{cost['bytes_gb']:.2f} GB: {cost['bound_s'] * 1e3:.0f} ms at the measured copy "
            f"bandwidth {cost['bandwidth_gbs']:.1f} GB/s, so **{cost['ratio']:.1f}x the "
            f"bandwidth bound**; its {cost['flops'] / 1e9:.2f} GFLOP (2 FMAs per nonzero and "
            f"padded type) are {cost['flop_s'] * 1e3:.0f} ms at {cost['peak_gflops']:.0f} "
            f"GFLOP/s (AVX2 FMA peak of {cost['cores']} cores at {cost['ghz']:.1f} GHz): "
            f"{cost['update_s'] / cost['flop_s']:.1f}x the compute bound.",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bins", type=int, default=650_000)
    ap.add_argument("--umis", type=float, default=200.0)
    ap.add_argument(
        "--cells",
        choices=("seqfish", "synthetic"),
        default=None,
        help="real seqFISH+ cells (default where ../shared has them) or synthetic",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true", help="rewrite the slide")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each step (median)")
    ap.add_argument("--make-only", action="store_true", help="write the slide and stop")
    ap.add_argument("--no-busy", action="store_true", help="skip the busy-machine runs")
    ap.add_argument(
        "--extra",
        nargs=argparse.REMAINDER,
        default=[],
        help="more arguments for train and deconvolve",
    )
    args = ap.parse_args(argv)
    kind = args.cells or ("seqfish" if SHARED.exists() else "synthetic")
    name = f"{kind}_{args.bins}_{int(args.umis)}umi_s{args.seed}"
    folder = HERE / "out" / "hd" / name
    if args.fresh or not (folder / "meta.json").exists():
        if not args.make_only:
            # a child writes the slide: Linux carries a process's peak RSS into the children
            # it starts, so a large parent would inflate every measured run's peak
            argv_child = [a for a in (argv or sys.argv[1:]) if a != "--fresh"]
            cmd = [sys.executable, __file__, "--make-only", "--fresh", *argv_child]
            if subprocess.run(cmd).returncode != 0:
                return 1
        else:
            t0 = time.perf_counter()
            write_slide(folder, args.bins, kind, args.umis, args.seed)
            log(f"slide written in {time.perf_counter() - t0:.0f} s: {folder}")
    meta = json.loads((folder / "meta.json").read_text())
    log(json.dumps({k: v for k, v in meta.items() if k != "type_names"}))
    if args.make_only:
        return 0
    inputs = ["--spatial", folder / "outs", "--regions", folder / "regions.tif"]
    reference = ["--reference", folder / "reference.h5ad", "--label-key", "cell_type"]
    model = folder / "model.safetensors"
    rows = []

    def train(machine: str, i: int) -> dict:
        save = model if (machine, i) == ("quiet", 0) else folder / f"model_{machine}{i}.safetensors"
        cmd = stlnmf("train", *inputs, *reference, "--save", save, *args.extra)
        log_file = folder / f"train_{machine}{i}.log"
        with Busy() if machine == "busy" else contextlib.nullcontext():
            r = run_measured(cmd, log_file)
        text = r.pop("log")
        if r["rc"] != 0:
            print(text[-3000:])
        return r

    def deconvolve(machine: str, i: int, method: str = "stlnmf") -> dict:
        out_dir = folder / f"result_{method}_{machine}{i}"
        shutil.rmtree(out_dir, ignore_errors=True)
        how = ["--model", model] if method == "stlnmf" else [*reference, "--method", method]
        cmd = stlnmf("deconvolve", *inputs, *how, "--out", out_dir, "-q", *args.extra)
        with Busy() if machine == "busy" else contextlib.nullcontext():
            r = run_measured(cmd, folder / f"deconvolve_{method}_{machine}{i}.log")
        r.pop("log")
        r["rmse"] = score(out_dir, folder, meta) if r["rc"] == 0 else None
        if (out_dir / "run.json").exists():
            r["timings"] = json.loads((out_dir / "run.json").read_text()).get("timings", {})
        return r

    machines = ["quiet"] if args.no_busy else ["quiet", "busy"]
    for i in range(args.repeat):
        for machine in machines:  # quiet and busy interleaved: drifts hit both
            for step, fn in (("train", train), ("deconvolve", deconvolve)):
                r = fn(machine, i)
                rows.append({"step": step, "machine": machine, **r})
                log(f"{step} ({machine}, run {i + 1}): {r}")
                if r["rc"] != 0:
                    return 1
    r = deconvolve("quiet", 0, method="plainkl")
    rows.append({"step": "deconvolve, plain KL (same genes)", "machine": "quiet", **r})
    log(f"plain KL: {r}")
    cost = layer_cost(folder, model)
    text = render(meta, rows, cost)
    OUT_MD.parent.mkdir(parents=True, exist_ok=True)
    OUT_MD.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
