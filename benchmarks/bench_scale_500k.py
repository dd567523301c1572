#!/usr/bin/env python
"""A 500,000-spot slide end to end: the ``stlnmf`` CLI from files to files, then napari.

1. Writes, in a temporary folder (not in the repository), a synthetic Visium-like slide:
   ``--spots`` spots on a hex lattice (pitch 100 full-resolution px), ``--genes`` genes,
   counts drawn (Poisson) from ``--types`` cell types of a synthetic single-cell reference
   (:func:`napari_stlnmf.core.simulate.demo_reference`), a few cells per spot, three
   regions in vertical bands: ``slide.h5ad`` (``obsm["spatial"]``), ``regions.csv``,
   ``reference.h5ad`` (cells x genes, ``obs["cell_type"]``), and a 2,000-spot crop of the
   same lattice (``crop.h5ad`` + ``crop_regions.csv``, straddling two regions).
2. ``stlnmf train`` on the crop (one model per data term, KL and Frobenius).
3. ``stlnmf deconvolve --spatial slide.h5ad --regions regions.csv --model MODEL --out DIR``
   on the whole slide: inference + IO (reading the h5ad, genes, graph, network, writing
   proportions.csv, region_means.csv, result.h5ad, proportions.png, run.json).
   Wall time and peak RSS of each command come from ``os.wait4`` on the child process
   (the numbers ``/usr/bin/time -v`` prints); the phases from the run's run.json.
4. Opens the slide and the written proportions.csv in a shown napari viewer with the
   large-data path (``gui.layers.slide_layers`` -> raster spots image,
   ``gui.results.show_results`` -> raster proportions + dominant labels) and times the
   open, the results and a cell-type switch (``set_raster_type`` + repaint), in a child
   process run under ``xvfb-run`` when there is no display.

Prints a markdown table and writes it to ``benchmarks/out/scale_500k.md``::

    python benchmarks/bench_scale_500k.py            # 500k spots, ~100 genes, 10 types
    python benchmarks/bench_scale_500k.py --spots 20000 --skip-gui   # a quick check
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "scale_500k.md"
PITCH = 100.0
CROP = 2_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- synthetic data


def write_reference(path: Path, n_types: int, n_genes: int, seed: int):
    """A synthetic single-cell reference (80 cells per type) as an .h5ad with
    ``obs["cell_type"]``; returns its :func:`~napari_stlnmf.core.simulate.demo_reference`."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    from napari_stlnmf.core.simulate import demo_reference

    ref = demo_reference(n_types=n_types, n_genes=n_genes, cells_per_type=80, seed=seed)
    cells = sp.csr_matrix(ref.cells).astype(np.int32)
    labels = np.asarray(ref.labels).astype(str)
    ref_ad = ad.AnnData(
        X=cells,
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical(labels)}, index=[f"c{i}" for i in range(cells.shape[0])]
        ),
        var=pd.DataFrame(index=list(ref.genes)),
    )
    ref_ad.write_h5ad(path)
    return ref


def make_inputs(folder: Path, n: int, n_genes: int, n_types: int, seed: int = 0) -> dict:
    """Write slide.h5ad, regions.csv, reference.h5ad, crop.h5ad, crop_regions.csv."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    from napari_stlnmf.core.simulate import hex_grid

    rng = np.random.default_rng(seed)
    ref = write_reference(folder / "reference.h5ad", n_types, n_genes, seed)

    rows = int(np.ceil(np.sqrt(n * 2 / np.sqrt(3))))
    cols = int(np.ceil(n / rows))
    coords = hex_grid(rows, cols, PITCH)[:n]
    x = coords[:, 0]
    regions = np.minimum((3 * (x - x.min()) / (np.ptp(x) + 1e-9)).astype(np.int64), 2) + 1

    # per-region mean composition, per-spot Dirichlet around it (via gammas), 1-9 cells
    centre = rng.dirichlet(np.full(n_types, 0.7), size=3)
    sig = np.asarray(ref.signatures, dtype=np.float64)  # genes x types, counts per cell
    depth = 600.0 / (5.0 * float(sig.sum(0).mean()))  # ~600 counts per spot over all genes
    chunks = []
    step = 50_000
    for s in range(0, n, step):
        e = min(n, s + step)
        g = rng.gamma(6.0 * centre[regions[s:e] - 1])
        props = g / np.maximum(g.sum(1, keepdims=True), 1e-12)
        n_cells = 1 + rng.poisson(4.0, size=e - s)
        mu = (props * n_cells[:, None]) @ sig.T * depth
        chunks.append(sp.csr_matrix(rng.poisson(mu).astype(np.int32)))
    X = sp.vstack(chunks).tocsr()
    barcodes = [f"S{i:07d}-1" for i in range(n)]
    genes = list(ref.genes)

    def write(name: str, idx: np.ndarray) -> None:
        a = ad.AnnData(
            X=X[idx],
            obs=pd.DataFrame(index=[barcodes[i] for i in idx]),
            var=pd.DataFrame(index=genes),
        )
        a.obsm["spatial"] = coords[idx]
        a.write_h5ad(folder / f"{name}.h5ad")
        prefix = "" if name == "slide" else f"{name}_"
        pd.DataFrame({"barcode": a.obs_names, "region": regions[idx]}).to_csv(
            folder / f"{prefix}regions.csv", index=False
        )

    write("slide", np.arange(n))
    # the crop straddles the boundary of regions 1 and 2
    boundary = np.array([x.min() + np.ptp(x) / 3, np.median(coords[:, 1])])
    _, idx = cKDTree(coords).query(boundary, k=min(CROP, n))
    write("crop", np.sort(idx))
    return {
        "spots": n,
        "genes": n_genes,
        "types": n_types,
        "nnz": int(X.nnz),
        "median_counts": float(np.median(np.asarray(X.sum(1)).ravel())),
        "slide_mb": (folder / "slide.h5ad").stat().st_size / 2**20,
        "crop_regions": sorted(set(regions[idx].tolist())),
    }


# --------------------------------------------------------------------------- commands


def run_measured(cmd: list[str], log_file: Path, env=None) -> dict:
    """Run ``cmd``; wall seconds, peak RSS (GiB) of that child alone, exit code."""
    t0 = time.perf_counter()
    with open(log_file, "w") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": wall,
        "peak_rss_gib": usage.ru_maxrss * 1024 / 2**30,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rc": proc.returncode,
        "log": log_file.read_text(errors="replace"),
        "load": os.getloadavg()[0],
    }


def stlnmf(*args) -> list[str]:
    return [sys.executable, "-m", "napari_stlnmf.cli", *map(str, args)]


# --------------------------------------------------------------------------- GUI (child)


def gui_child(slide: Path, table_csv: Path) -> dict:
    """Runs in its own process, with a display: open, results, switch."""
    sys.path.insert(0, str(HERE))
    from bench_gui_scale import draw, new_viewer, painted_fraction
    from napari.layers import Layer

    from napari_stlnmf.gui.layers import slide_layers
    from napari_stlnmf.gui.results import result_layers, set_raster_type, show_results
    from napari_stlnmf.io.export import BASE_COLUMNS, read_proportions_csv
    from napari_stlnmf.io.spatial import read_spatial

    row: dict = {}
    t0 = time.perf_counter()
    adata = read_spatial(slide)
    row["read_slide_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = read_proportions_csv(table_csv)
    types = [c for c in table.columns if c not in BASE_COLUMNS]
    row["read_table_s"] = time.perf_counter() - t0

    viewer = new_viewer()
    t0 = time.perf_counter()
    layers = slide_layers(adata, name="slide spots")
    for data, kwargs, kind in layers:
        viewer.add_layer(Layer.create(data, kwargs, kind))
    draw(viewer)
    row["open_s"] = time.perf_counter() - t0
    row["open_layers"] = [type(ly).__name__ for ly in viewer.layers]

    t0 = time.perf_counter()
    out = show_results(viewer, table, types, slide="slide spots")
    draw(viewer)
    row["results_s"] = time.perf_counter() - t0
    row["path"] = "raster" if result_layers(viewer, "slide spots", "raster") else "points"
    row["result_layers"] = [type(ly).__name__ for ly in out]

    switches = []
    if row["path"] == "raster":
        layer = out[0]
        for t in types[1:] + types[:1]:
            t0 = time.perf_counter()
            set_raster_type(layer, t)
            draw(viewer)
            switches.append(time.perf_counter() - t0)
    row["switch_s"] = switches
    t0 = time.perf_counter()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    row["screenshot_s"] = time.perf_counter() - t0
    row["painted"] = painted_fraction(shot)
    import resource

    row["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30
    viewer.close()
    return row


def run_gui(slide: Path, table_csv: Path, folder: Path) -> dict:
    cmd = [sys.executable, __file__, "--gui-child", str(slide), str(table_csv)]
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # offscreen has no GL context
    if not env.get("DISPLAY"):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            return {"error": "no display and no xvfb-run"}
        cmd = [xvfb, "-a", "-s", "-screen 0 1600x1000x24", *cmd]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - t0
    line = next((ln for ln in done.stdout.splitlines()[::-1] if ln.startswith("{")), None)
    if done.returncode != 0 or line is None:
        (folder / "gui.log").write_text(done.stdout + done.stderr)
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        return {"error": f"exit {done.returncode}: {tail}"}
    row = json.loads(line)
    row["process_wall_s"] = wall
    return row


# --------------------------------------------------------------------------- report


def gib(v) -> str:
    return f"{v:.2f}"


def render(data: dict, runs: list[dict], gui: dict | None, total_s: float, epochs: int) -> str:
    import torch

    from napari_stlnmf import __version__

    lines = [
        "# 500k-spot slide end to end (benchmarks/bench_scale_500k.py)",
        "",
        f"{datetime.datetime.now().isoformat(timespec='seconds')}; napari-stlnmf {__version__}, "
        f"torch {torch.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), no GPU used; total {total_s:.0f} s. "
        "The machine is shared: `load` is the 1-minute load average when each command ended.",
        "",
        f"Synthetic slide: {data['spots']:,} spots (hex lattice, pitch {PITCH:.0f} px), "
        f"{data['genes']} genes, {data['types']} cell types, {data['nnz']:,} nonzero counts "
        f"(median {data['median_counts']:.0f} counts per spot), 3 regions; slide.h5ad "
        f"{data['slide_mb']:.0f} MiB. Models trained with `stlnmf train` on a {CROP:,}-spot "
        f"crop (regions {data['crop_regions']}; {epochs} epochs, 60 layers).",
        "",
        "| step | data term | wall s | peak RSS GiB | read s | inference s | prepare + write s | "
        "start-up s | CPU s | load | exit |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        tm = r.get("timings") or {}
        if tm:
            read, inf = tm["read_seconds"], tm["deconvolve_seconds"]
            write = tm["total_seconds"] - read - inf
            split = (
                f"{read:.1f} | {inf:.1f} | {write:.1f} | {r['wall_s'] - tm['total_seconds']:.1f}"
            )
        else:
            split = "— | — | — | —"
        lines.append(
            f"| {r['step']} | {r['term']} | {r['wall_s']:.1f} | {gib(r['peak_rss_gib'])} | "
            f"{split} | {r['cpu_s']:.1f} | {r['load']:.2f} | {r['rc']} |"
        )
    lines += [
        "",
        "read: model + slide + regions (run.json `read_seconds`); inference: the model's "
        "transform, graph and network on every spot (`deconvolve_seconds`); prepare + write: "
        "gene matching, the tables and the five outputs in one atomic batch (run.json "
        "`total_seconds` minus the two); start-up: interpreter and "
        "imports (wall minus `total_seconds`). Output sizes (MiB): "
        + "; ".join(
            f"{r['term']} " + ", ".join(f"{k} {v}" for k, v in r["outputs_mb"].items())
            for r in runs
            if r.get("outputs_mb")
        )
        + ".",
    ]
    if gui is not None:
        lines += ["", "napari (large-data path, Xvfb, software OpenGL):", ""]
        if "error" in gui:
            lines.append(f"- failed: {gui['error']}")
        else:
            sw = gui["switch_s"]
            lines += [
                "| step | seconds |",
                "|---|---:|",
                f"| read slide.h5ad (`read_spatial`) | {gui['read_slide_s']:.1f} |",
                f"| read proportions.csv | {gui['read_table_s']:.1f} |",
                f"| open: `slide_layers` + add + repaint ({', '.join(gui['open_layers'])}) | "
                f"{gui['open_s']:.2f} |",
                f"| results: `show_results` + repaint ({gui['path']}: "
                f"{', '.join(gui['result_layers'])}) | {gui['results_s']:.2f} |",
                f"| type switch: `set_raster_type` + repaint, median of {len(sw)} | "
                f"{statistics.median(sw) if sw else float('nan'):.3f} |",
                f"| screenshot after results | {gui['screenshot_s']:.2f} |",
                "",
                f"napari process peak RSS {gui['peak_rss_gib']:.2f} GiB; switches "
                f"[{', '.join(f'{s:.3f}' for s in sw)}] s; painted canvas fraction "
                f"{gui['painted']:.2f}.",
            ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spots", type=int, default=500_000)
    p.add_argument("--genes", type=int, default=100)
    p.add_argument("--types", type=int, default=10)
    p.add_argument("--epochs", type=int, default=10, help="training epochs on the crop")
    p.add_argument("--terms", nargs="+", default=["kl", "frobenius"])
    p.add_argument("--skip-gui", action="store_true")
    p.add_argument("--keep", type=Path, help="work in this folder and keep it")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--gui-child", nargs=2, metavar=("SLIDE", "CSV"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.gui_child:
        print(json.dumps(gui_child(Path(args.gui_child[0]), Path(args.gui_child[1]))))
        return 0

    t_start = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        folder = args.keep
    else:
        folder = Path(tempfile.mkdtemp(prefix="stlnmf_scale_"))
    try:
        log(f"writing inputs in {folder}")
        t0 = time.perf_counter()
        data = make_inputs(folder, args.spots, args.genes, args.types)
        log(f"inputs in {time.perf_counter() - t0:.1f} s: {data}")
        runs = []
        for term in args.terms:
            model = folder / f"model_{term}.safetensors"
            r = run_measured(
                stlnmf(
                    "train",
                    "--spatial",
                    folder / "crop.h5ad",
                    "--reference",
                    folder / "reference.h5ad",
                    "--label-key",
                    "cell_type",
                    "--regions",
                    folder / "crop_regions.csv",
                    "--data-term",
                    term,
                    "--epochs",
                    args.epochs,
                    "--device",
                    "cpu",
                    "--save",
                    model,
                ),
                folder / f"train_{term}.log",
            )
            r.update(step=f"train on {CROP:,}-spot crop", term=term)
            runs.append(r)
            log(f"train {term}: {r['wall_s']:.1f} s, {r['peak_rss_gib']:.2f} GiB, exit {r['rc']}")
            if r["rc"] != 0:
                log(r["log"][-2000:])
                continue
            out = folder / f"out_{term}"
            r = run_measured(
                stlnmf(
                    "deconvolve",
                    "--spatial",
                    folder / "slide.h5ad",
                    "--regions",
                    folder / "regions.csv",
                    "--model",
                    model,
                    "--device",
                    "cpu",
                    "--out",
                    out,
                ),
                folder / f"deconvolve_{term}.log",
            )
            r.update(step=f"deconvolve {args.spots:,} spots (--model)", term=term)
            if (out / "run.json").exists():
                r["timings"] = json.loads((out / "run.json").read_text())["timings"]
                r["outputs_mb"] = {
                    f.name: round(f.stat().st_size / 2**20, 1) for f in sorted(out.iterdir())
                }
            runs.append(r)
            log(
                f"deconvolve {term}: {r['wall_s']:.1f} s, {r['peak_rss_gib']:.2f} GiB, exit "
                f"{r['rc']}, timings {r.get('timings')}, outputs {r.get('outputs_mb')}"
            )
            if r["rc"] != 0:
                log(r["log"][-2000:])
        gui = None
        first = next(
            (folder / f"out_{t}" for t in args.terms if (folder / f"out_{t}").is_dir()), None
        )
        if not args.skip_gui and first is not None:
            log("napari: open + results + switch")
            gui = run_gui(folder / "slide.h5ad", first / "proportions.csv", folder)
            log(f"napari: {gui}")
        text = render(data, runs, gui, time.perf_counter() - t_start, args.epochs)
        print()
        print(text)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        raw = args.out.with_suffix(".json")
        raw.write_text(
            json.dumps(
                {
                    "inputs": data,
                    "runs": [{k: v for k, v in r.items() if k != "log"} for r in runs],
                    "gui": gui,
                },
                indent=1,
                default=str,
            )
        )
        print(f"wrote {args.out} and {raw}")
        return 0 if all(r["rc"] == 0 for r in runs) else 1
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
