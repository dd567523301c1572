#!/usr/bin/env python
"""Speed and memory benchmark of STL NMF inference on synthetic slides.

For every slide size ``m`` and data term (``frobenius``, ``kl``) this runs one *fresh*
subprocess (``bench_speed.py --case m term``) so that the peak resident set size of one
case is not contaminated by another, and measures

* preparation time: ``make_data_term`` (scipy CSR -> torch, data-term tensors) plus
  ``build_graph`` (KD-tree radius graph, 1.5 pitches);
* milliseconds per layer: one ``STLNMFNet`` forward with ``--layers`` layers under
  ``torch.no_grad`` in float32, divided by the number of layers, ``--repeats`` times;
* end-to-end inference: ``STLNMF(epochs=0).fit(reference, coords, regions)`` then
  ``.transform(X, coords, regions)`` (input validation, gene filtering, preparation and the
  forward), once per repeat up to ``--e2e-repeat-max`` spots and once above;
* memory: ``ru_maxrss`` of the case process at the end (and after each phase), and its
  increase over the baseline right after the imports.

The synthetic slide is built vectorised: hexagonal grid coordinates, positive random
(log-normal) signatures, a CSR count matrix with exactly ``--nnz`` distinct nonzero genes per
spot (values ``1 + Poisson(1.5)``) and three vertical region bands.

Usage::

    python benchmarks/bench_speed.py                     # defaults: 5k, 50k, 500k spots
    python benchmarks/bench_speed.py --sizes 2000 20000 --layers 20 --repeats 2
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TERMS = ("frobenius", "kl")
_RESULT = "RESULT "
GIB = 1024.0**3

# targets (500k spots, 100 layers, 20 types, ~150 nonzero genes per spot, 2-core CPU)
TARGET_SPOTS = 500_000
TARGET_E2E_S = {"frobenius": 30.0, "kl": 90.0}
TARGET_RSS_GIB = 4.0
LINEAR_TOL = 1.25  # per-unit cost may grow at most this much between consecutive sizes
CONTENDED_CORES = 0.25  # other jobs using more CPU than this make a timing inconclusive


# --------------------------------------------------------------------------------------
# helpers usable without torch
# --------------------------------------------------------------------------------------
def maxrss_bytes() -> int:
    """High-water mark of this process's resident set size (Linux: ru_maxrss in KiB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) if sys.platform == "darwin" else int(r) * 1024


def current_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot, all cores (from /proc/stat)."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def load_avg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


# --------------------------------------------------------------------------------------
# synthetic slide
# --------------------------------------------------------------------------------------
def synthetic_slide(m: int, n_genes: int, n_types: int, nnz: int, seed: int = 0):
    """Coordinates, region labels, signatures and a CSR count matrix, built vectorised.

    Returns ``coords (m, 2), regions (m,), signatures (n_genes, n_types), X (m, n_genes)``.
    Every row of ``X`` has exactly ``min(nnz, n_genes)`` distinct nonzero columns.
    """
    import numpy as np
    import scipy.sparse as sp

    from napari_stlnmf.core.simulate import hex_grid

    rng = np.random.default_rng(seed)
    rows = max(1, int(round(math.sqrt(m))))
    cols_ = -(-m // rows)
    coords = hex_grid(rows, cols_)[:m]
    x = coords[:, 0]
    span = float(x.max() - x.min()) or 1.0
    regions = np.minimum((3.0 * (x - x.min()) / span).astype(np.int64), 2)

    signatures = rng.lognormal(mean=0.0, sigma=1.5, size=(n_genes, n_types))

    q = min(nnz, n_genes)
    if q == n_genes:
        cols = np.broadcast_to(np.arange(n_genes, dtype=np.int32), (m, q)).copy()
    else:
        # draw with replacement, then redraw the duplicates of each sorted row until none
        # are left (a handful of rounds for q << n_genes): exact, vectorised, O(m q) memory
        cols = rng.integers(0, n_genes, size=(m, q), dtype=np.int32)
        cols.sort(axis=1)
        for _ in range(1000):
            dup = np.zeros(cols.shape, dtype=bool)
            np.equal(cols[:, 1:], cols[:, :-1], out=dup[:, 1:])
            n_dup = int(dup.sum())
            if n_dup == 0:
                break
            cols[dup] = rng.integers(0, n_genes, size=n_dup, dtype=np.int32)
            cols.sort(axis=1)
            del dup
        else:  # pragma: no cover - only for q close to n_genes
            raise RuntimeError("could not draw distinct genes per spot")
    values = np.empty(m * q, dtype=np.float64)
    step = 1 << 22  # chunks keep the int64 Poisson draws small
    for s in range(0, m * q, step):
        values[s : s + step] = rng.poisson(1.5, size=min(step, m * q - s))
    values += 1.0
    indptr = np.arange(0, m * q + 1, q, dtype=np.int32 if m * q < 2**31 else np.int64)
    indices = cols.reshape(-1)
    if indptr.dtype == np.int64:
        indices = indices.astype(np.int64)
    X = sp.csr_matrix((values, indices, indptr), shape=(m, n_genes))
    X.has_sorted_indices = True
    return coords, regions, signatures, X


# --------------------------------------------------------------------------------------
# one case, in its own process
# --------------------------------------------------------------------------------------
def run_case(args) -> dict:
    m, term = int(args.case[0]), str(args.case[1])
    if term not in TERMS:
        raise SystemExit(f"unknown data term {term!r}")
    load = load_avg()

    import numpy as np
    import torch

    from napari_stlnmf.core.data_terms import make_data_term
    from napari_stlnmf.core.device import resolve_device
    from napari_stlnmf.core.estimator import STLNMF
    from napari_stlnmf.core.graph import build_graph
    from napari_stlnmf.core.network import NetConfig, STLNMFNet
    from napari_stlnmf.core.reference import Reference

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    gc.collect()
    rss_base = maxrss_bytes()
    res: dict = {
        "spots": m,
        "term": term,
        "load1": load[0],
        "load5": load[1],
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "rss_base_gib": rss_base / GIB,
    }

    t0 = time.perf_counter()
    coords, regions, sig, X = synthetic_slide(m, args.genes, args.types, args.nnz, args.seed)
    res["synth_s"] = time.perf_counter() - t0
    res["nnz_total"] = int(X.nnz)
    res["nnz_per_spot"] = X.nnz / m
    res["rss_after_synth_gib"] = maxrss_bytes() / GIB

    small = m <= args.e2e_repeat_max
    n_rep = args.repeats if small else 1

    # ---- preparation + per-layer timing (the network alone) -------------------------
    prep, prep_data, prep_graph = [], [], []
    data = graph = None
    for _ in range(n_rep):
        data = graph = None
        gc.collect()
        sync()
        t0 = time.perf_counter()
        data = make_data_term(X, sig, term, dev, torch.float32)
        sync()
        t1 = time.perf_counter()
        graph = build_graph(coords, regions, 1.5, None, torch.float32).to(dev)
        sync()
        t2 = time.perf_counter()
        prep_data.append(t1 - t0)
        prep_graph.append(t2 - t1)
        prep.append(t2 - t0)
    ridx = torch.as_tensor(regions, device=dev)
    res["prep_s"] = statistics.median(prep)
    res["prep_data_s"] = statistics.median(prep_data)
    res["prep_graph_s"] = statistics.median(prep_graph)
    res["prep_runs"] = n_rep
    res["edges"] = graph.n_edges

    cfg = dict(n_types=args.types, n_regions=3, data_term=term)
    net = STLNMFNet(NetConfig(n_layers=args.layers, **cfg)).to(dev)
    warm = STLNMFNet(NetConfig(n_layers=1, **cfg)).to(dev)
    layer_ms = []
    with torch.no_grad():
        warm(data, graph, ridx)  # first-call allocations / lazy init, not timed
        for _ in range(args.repeats):
            sync()
            t0 = time.perf_counter()
            out = net(data, graph, ridx)
            sync()
            layer_ms.append((time.perf_counter() - t0) / args.layers * 1e3)
            if not bool(torch.isfinite(out).all()):
                raise RuntimeError("non-finite proportions from the network")
            del out
    res["ms_layer_median"] = statistics.median(layer_ms)
    res["ms_layer_min"] = min(layer_ms)
    res["ms_layer_max"] = max(layer_ms)
    res["ms_layer_all"] = layer_ms
    del data, graph, net, warm
    gc.collect()
    res["rss_after_layers_gib"] = maxrss_bytes() / GIB

    # ---- end to end through the estimator -------------------------------------------
    genes = [f"g{i}" for i in range(args.genes)]
    types = [f"t{i}" for i in range(args.types)]
    reference = Reference.from_signatures(sig, genes, types)
    e2e, fit_s, tr_s = [], [], []
    for _ in range(n_rep):
        gc.collect()
        t0 = time.perf_counter()
        est = STLNMF(epochs=0, n_layers=args.layers, data_term=term, device=args.device)
        est.fit(reference, coords, regions)
        t1 = time.perf_counter()
        props = est.transform(X, coords, regions)
        sync()
        t2 = time.perf_counter()
        if not np.isfinite(props).all() or not np.allclose(props.sum(1), 1.0, atol=1e-4):
            raise RuntimeError("end-to-end proportions are not finite rows summing to 1")
        fit_s.append(t1 - t0)
        tr_s.append(t2 - t1)
        e2e.append(t2 - t0)
        del est, props
    res["e2e_s_median"] = statistics.median(e2e)
    res["e2e_s_min"] = min(e2e)
    res["e2e_s_max"] = max(e2e)
    res["e2e_runs"] = n_rep
    res["fit_s"] = statistics.median(fit_s)
    res["transform_s"] = statistics.median(tr_s)

    peak = maxrss_bytes()
    res["rss_peak_gib"] = peak / GIB
    res["rss_increase_gib"] = (peak - rss_base) / GIB
    res["rss_end_current_gib"] = current_rss_bytes() / GIB
    if dev.type == "cuda":
        res["cuda_peak_gib"] = torch.cuda.max_memory_allocated(dev) / GIB
    return res


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------
def _case_cmd(args, m: int, term: str) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--case",
        str(m),
        term,
        "--layers",
        str(args.layers),
        "--types",
        str(args.types),
        "--nnz",
        str(args.nnz),
        "--genes",
        str(args.genes),
        "--repeats",
        str(args.repeats),
        "--device",
        args.device,
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
        "--e2e-repeat-max",
        str(args.e2e_repeat_max),
    ]


def run_all(args) -> list[dict]:
    results = []
    for m in args.sizes:
        for term in args.terms:
            print(f"[bench] {m} spots, {term} ... (load {load_avg()[0]:.2f})", file=sys.stderr)
            t0 = time.perf_counter()
            busy0, own0 = cpu_busy_seconds(), children_cpu_seconds()
            try:
                proc = subprocess.run(
                    _case_cmd(args, m, term),
                    capture_output=True,
                    text=True,
                    timeout=args.case_timeout,
                )
            except subprocess.TimeoutExpired:
                results.append(
                    {"spots": m, "term": term, "status": f"timeout > {args.case_timeout} s"}
                )
                print(f"[bench]   timed out after {args.case_timeout} s", file=sys.stderr)
                continue
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_RESULT)]
            if proc.returncode != 0 or not lines:
                why = f"rc={proc.returncode}"
                if proc.returncode < 0:
                    oom = ", likely out of memory" if proc.returncode == -9 else ""
                    why += f" (killed by signal {-proc.returncode}{oom})"
                tail = (proc.stderr or "").strip().splitlines()[-5:]
                results.append({"spots": m, "term": term, "status": "failed " + why})
                print(f"[bench]   FAILED {why}\n" + "\n".join(tail), file=sys.stderr)
                continue
            res = json.loads(lines[-1][len(_RESULT) :])
            res["status"] = "ok"
            wall = time.perf_counter() - t0
            busy = cpu_busy_seconds() - busy0
            own = children_cpu_seconds() - own0
            res["case_wall_s"] = wall
            # CPU the case itself used, and what everything else on the machine used meanwhile
            res["own_cores"] = own / wall
            res["other_cores"] = max(0.0, busy - own) / wall
            results.append(res)
            print(
                f"[bench]   {res['ms_layer_median']:.1f} ms/layer, e2e {res['e2e_s_median']:.1f} s,"
                f" peak {res['rss_peak_gib']:.2f} GiB ({res['case_wall_s']:.0f} s)",
                file=sys.stderr,
            )
    return results


def _linearity(results: list[dict]) -> list[dict]:
    """Consecutive-size growth of ms/layer vs spots (Frobenius) or nonzeros (KL)."""
    rows = []
    for term in TERMS:
        ok = sorted(
            (r for r in results if r["term"] == term and r.get("status") == "ok"),
            key=lambda r: r["spots"],
        )
        unit = "nnz_total" if term == "kl" else "spots"
        for a, b in zip(ok, ok[1:]):
            r_ms = b["ms_layer_median"] / a["ms_layer_median"]
            r_n = b[unit] / a[unit]
            rows.append(
                {
                    "term": term,
                    "from": a["spots"],
                    "to": b["spots"],
                    "unit": "nonzero" if term == "kl" else "spot",
                    "time_ratio": r_ms,
                    "size_ratio": r_n,
                    "per_unit_ratio": r_ms / r_n,
                    "slope": math.log(r_ms) / math.log(r_n) if r_n != 1 else float("nan"),
                    "contended": max(a.get("other_cores", 0.0), b.get("other_cores", 0.0))
                    > CONTENDED_CORES,
                }
            )
    return rows


def _fmt(v, spec=".2f", na="—"):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return na
    return format(v, spec)


def report(args, results: list[dict], env: dict) -> str:
    out = []
    out.append(
        f"Machine: {env['nproc']} CPUs ({env['cpu']}), torch {env['torch']} "
        f"({env['threads']} threads), device {env['device']}, {env['date']}"
    )
    out.append(f"Command: {env['command']}")
    out.append(
        f"Settings: {args.layers} layers, {args.types} types, {args.genes} genes, "
        f"{args.nnz} nonzero genes/spot, float32, no_grad; ms/layer = one {args.layers}-layer "
        f"forward / {args.layers}, {args.repeats} repeats (median [min–max]); prep and "
        f"end-to-end: median of {args.repeats} runs for ≤ {args.e2e_repeat_max:,} spots, "
        "a single run above."
    )
    out.append("")
    out.append(
        "| spots | data term | nnz | load (1 min) | other jobs (cores) | prep s "
        "| ms/layer median [range] "
        f"| end-to-end s ({args.layers} layers) | peak RSS GiB | RSS increase GiB |"
    )
    out.append("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in results:
        if r.get("status") != "ok":
            out.append(
                f"| {r['spots']:,} | {r['term']} | — | — | — | — | {r['status']} | — | — | — |"
            )
            continue
        e2e = f"{r['e2e_s_median']:.2f}"
        e2e += f" [{r['e2e_s_min']:.2f}–{r['e2e_s_max']:.2f}]" if r["e2e_runs"] > 1 else " (1 run)"
        out.append(
            f"| {r['spots']:,} | {r['term']} | {r['nnz_total']:,} | {r['load1']:.2f} "
            f"| {r['other_cores']:.2f} "
            f"| {r['prep_s']:.2f} | {r['ms_layer_median']:.1f} "
            f"[{r['ms_layer_min']:.1f}–{r['ms_layer_max']:.1f}] | {e2e} "
            f"| {r['rss_peak_gib']:.2f} | {r['rss_increase_gib']:.2f} |"
        )
    lin = _linearity(results)
    out.append("")
    out.append("Linearity (ms/layer growth between consecutive sizes):")
    out.append("")
    out.append(
        "| data term | sizes | unit | ms/layer ratio | size ratio | per-unit ratio "
        "| log-log slope |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|")
    for row in lin:
        out.append(
            f"| {row['term']} | {row['from']:,} → {row['to']:,} | {row['unit']} "
            f"| {row['time_ratio']:.2f} | {row['size_ratio']:.2f} | {row['per_unit_ratio']:.2f} "
            f"| {row['slope']:.2f} |"
        )
    out.append("")
    out.append(
        "load (1 min): os.getloadavg() at the start of the case (includes the previous case's "
        "decaying load); other jobs (cores): average CPU cores busy with anything but this "
        "case while it ran (/proc/stat minus the case's own CPU time). Values well above 0 "
        "mean the timings are contended."
    )
    out.append("")
    out.extend(_targets(results, lin))
    return "\n".join(out)


def _targets(results: list[dict], lin: list[dict]) -> list[str]:
    lines = []
    for term in TERMS:
        rows = [r for r in lin if r["term"] == term]
        unit = "nonzeros" if term == "kl" else "spots"
        if not rows:
            lines.append(f"- N/A  time per layer linear in {unit} ({term}): < 2 sizes measured")
            continue
        worst = max(r["per_unit_ratio"] for r in rows)
        ok = worst <= LINEAR_TOL
        verdict = "PASS" if ok else "FAIL"
        if any(r["contended"] for r in rows):
            verdict = f"INCONCLUSIVE (other jobs > {CONTENDED_CORES} cores; measured {verdict})"
        lines.append(
            f"- {verdict} time per layer linear in {unit} ({term}): worst "
            f"per-unit growth {worst:.2f}x between consecutive sizes (tolerance "
            f"{LINEAR_TOL:.2f}x; slopes " + ", ".join(f"{r['slope']:.2f}" for r in rows) + ")"
        )
    big = {r["term"]: r for r in results if r["spots"] == TARGET_SPOTS}
    for term in TERMS:
        r = big.get(term)
        lim = TARGET_E2E_S[term]
        label = f"{TARGET_SPOTS:,}-spot end-to-end inference < {lim:.0f} s ({term})"
        if r is None:
            lines.append(f"- N/A  {label}: size not run")
        elif r.get("status") != "ok":
            lines.append(f"- FAIL {label}: {r['status']}")
        else:
            ok = r["e2e_s_median"] < lim
            other = r.get("other_cores", 0.0)
            note = (
                f"; contended: other jobs used {other:.2f} cores on average"
                if other > CONTENDED_CORES
                else ""
            )
            lines.append(
                f"- {'PASS' if ok else 'FAIL'} {label}: {r['e2e_s_median']:.1f} s "
                f"(prep {r['prep_s']:.1f} s + {r['ms_layer_median'] / 1e3:.2f} s/layer{note})"
            )
    for term in TERMS:
        r = big.get(term)
        label = f"{TARGET_SPOTS:,}-spot peak RSS < {TARGET_RSS_GIB:.0f} GiB ({term})"
        if r is None:
            lines.append(f"- N/A  {label}: size not run")
        elif r.get("status") != "ok":
            lines.append(f"- FAIL {label}: {r['status']}")
        else:
            ok = r["rss_peak_gib"] < TARGET_RSS_GIB
            lines.append(
                f"- {'PASS' if ok else 'FAIL'} {label}: {r['rss_peak_gib']:.2f} GiB peak "
                f"({r['rss_increase_gib']:.2f} GiB over the post-import baseline)"
            )
    return lines


CSV_FIELDS = [
    "spots",
    "term",
    "status",
    "nnz_total",
    "nnz_per_spot",
    "edges",
    "load1",
    "load5",
    "threads",
    "device",
    "synth_s",
    "prep_s",
    "prep_data_s",
    "prep_graph_s",
    "prep_runs",
    "ms_layer_median",
    "ms_layer_min",
    "ms_layer_max",
    "ms_layer_all",
    "e2e_s_median",
    "e2e_s_min",
    "e2e_s_max",
    "e2e_runs",
    "fit_s",
    "transform_s",
    "rss_base_gib",
    "rss_after_synth_gib",
    "rss_after_layers_gib",
    "rss_peak_gib",
    "rss_increase_gib",
    "rss_end_current_gib",
    "case_wall_s",
    "own_cores",
    "other_cores",
]


def write_csv(path: Path, results: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in results:
            row = dict(r)
            if "ms_layer_all" in row:
                row["ms_layer_all"] = " ".join(f"{v:.3f}" for v in row["ms_layer_all"])
            w.writerow(row)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000, 500000])
    p.add_argument("--terms", nargs="+", default=list(TERMS), choices=TERMS)
    p.add_argument("--layers", type=int, default=100)
    p.add_argument("--types", type=int, default=20)
    p.add_argument("--nnz", type=int, default=150, help="nonzero genes per spot")
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--e2e-repeat-max",
        type=int,
        default=50000,
        help="repeat prep / end-to-end timings only up to this many spots (else one run)",
    )
    p.add_argument("--case-timeout", type=float, default=3600.0, help="seconds per case")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/speed.csv"))
    p.add_argument("--markdown", type=Path, default=None, help="also write the report here")
    p.add_argument(
        "--report-from",
        type=Path,
        default=None,
        help="only re-print the report of a previous run from its .json (no measuring)",
    )
    p.add_argument("--case", nargs=2, metavar=("SPOTS", "TERM"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.case:
        res = run_case(args)
        print(_RESULT + json.dumps(res), flush=True)
        return 0
    if args.report_from:
        saved = json.loads(args.report_from.read_text())
        old = saved["args"]
        for key in ("layers", "types", "genes", "nnz", "repeats", "e2e_repeat_max"):
            setattr(args, key, int(old[key]))
        print(report(args, saved["results"], saved["env"]))
        return 0

    import torch  # only for the environment line; cases import it themselves

    from napari_stlnmf.core.device import resolve_device

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    env = {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(resolve_device(args.device)),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
    }
    t0 = time.perf_counter()
    results = run_all(args)
    text = report(args, results, env)
    text += f"\n\nTotal benchmark wall time: {time.perf_counter() - t0:.0f} s"
    print(text)
    write_csv(args.out, results)
    (args.out.with_suffix(".json")).write_text(
        json.dumps(
            {"env": env, "args": {k: str(v) for k, v in vars(args).items()}, "results": results},
            indent=1,
        )
    )
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
