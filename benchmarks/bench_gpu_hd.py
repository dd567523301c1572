#!/usr/bin/env python
"""STL NMF on a Visium HD-sized slide, engine only (numpy, scipy, torch): CPU or CUDA.

A square grid of ``--bins`` 8 µm bins (806 x 806 = 650k by default), ``--genes`` genes
(18,000) of ``--types`` cell types (20) from a synthetic single-cell reference
(:func:`napari_stlnmf.core.simulate.demo_reference`), about ``--umis`` (200) UMIs per bin
drawn from each bin's mixture (a few cells: Dirichlet(0.3) proportions), four regions in
bands. Then, on ``--device``:

* **train**: ``STLNMF(...).fit`` on simulated crops of the slide's geometry (the default
  settings: 20 epochs, 60 tied layers, 100 warm-start updates);
* **inference**: ``transform`` of the whole slide (graph, data term, layers);

and prints wall seconds, peak process RSS and, on CUDA, peak GPU memory, with the RMSE
against the slide's true proportions. It imports no anndata/pandas, so it runs on a bare
GPU machine with only torch and scipy::

    PYTHONPATH=src python benchmarks/bench_gpu_hd.py --device cuda
    PYTHONPATH=src python benchmarks/bench_gpu_hd.py --bins 20000 --genes 2000 --device cpu
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import scipy.sparse as sp
import torch

from napari_stlnmf.core import STLNMF
from napari_stlnmf.core.simulate import demo_reference


def hd_slide(n_bins: int, n_genes: int, n_types: int, umis: float, seed: int = 0):
    """(reference, coords, regions, counts CSR, true proportions) of a synthetic HD slide."""
    rng = np.random.default_rng(seed)
    ref = demo_reference(n_types, n_genes, cells_per_type=40, seed=seed)
    side = int(np.ceil(np.sqrt(n_bins)))
    rows, cols = np.divmod(np.arange(n_bins), side)
    coords = np.column_stack([cols, rows]).astype(np.float64) * 27.0  # ~27 px per 8 µm bin
    regions = np.minimum(cols * 4 // side, 3)
    props = rng.dirichlet(np.full(n_types, 0.3), size=n_bins)
    depth = rng.poisson(umis, size=n_bins).clip(min=1)
    # UMIs per (bin, type), then each type's UMIs spread over genes by its profile
    per_type = np.vstack([rng.multinomial(d, p) for d, p in zip(depth, props)])
    prof = ref.signatures / ref.signatures.sum(0, keepdims=True)  # genes x types
    r_idx, c_idx = [], []
    for t in range(n_types):
        n_t = per_type[:, t]
        total = int(n_t.sum())
        genes = rng.choice(n_genes, size=total, p=prof[:, t])
        r_idx.append(np.repeat(np.arange(n_bins), n_t))
        c_idx.append(genes)
    r = np.concatenate(r_idx)
    c = np.concatenate(c_idx)
    x = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=(n_bins, n_genes))
    x.sum_duplicates()
    return ref, coords, regions, x, props


def cpu_cuda_agreement(n_bins: int = 3000) -> dict:
    """Max |CPU - CUDA| of the proportions on a small slide: untrained, and trained (same
    seed, so the same simulated slides; float32 rounding differs between the devices)."""
    ref, coords, regions, x, _ = hd_slide(n_bins, 500, 8, 200.0, seed=1)
    out = {}
    for label, epochs in (("untrained", 0), ("trained_3_epochs", 3)):
        p = [
            STLNMF(epochs=epochs, device=d, random_state=0)
            .fit(ref, coords, regions, X=x)
            .transform(x, coords, regions)
            for d in ("cpu", "cuda")
        ]
        out[f"max_abs_diff_{label}"] = float(np.nanmax(np.abs(p[0] - p[1])))
    return out


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bins", type=int, default=650_000)
    ap.add_argument("--genes", type=int, default=18_000)
    ap.add_argument("--types", type=int, default=20)
    ap.add_argument("--umis", type=float, default=200.0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--check", action="store_true", help="CPU vs CUDA agreement first")
    args = ap.parse_args()
    out = {"device": args.device, "torch": torch.__version__, "bins": args.bins}
    if args.device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(0)
        if args.check:
            out.update(cpu_cuda_agreement())
    t0 = time.perf_counter()
    ref, coords, regions, x, truth = hd_slide(args.bins, args.genes, args.types, args.umis)
    out["make_s"] = round(time.perf_counter() - t0, 1)
    out["nnz"] = int(x.nnz)
    out["median_umis"] = float(np.median(np.asarray(x.sum(1)).ravel()))
    print(json.dumps(out), flush=True)

    model = STLNMF(epochs=args.epochs, device=args.device, random_state=0)
    t0 = time.perf_counter()
    model.fit(ref, coords, regions, X=x)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    out["train_s"] = round(time.perf_counter() - t0, 1)
    out["epochs_run"] = len(model.history_)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    pred = model.transform(x, coords, regions)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        out["gpu_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    out["inference_s"] = round(time.perf_counter() - t0, 1)
    ok = np.isfinite(pred).all(1)
    out["rmse"] = round(float(np.sqrt(np.mean((pred[ok] - truth[ok]) ** 2))), 4)
    out["peak_rss_gib"] = round(peak_rss_gib(), 2)
    print(json.dumps(out), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
