"""Run peers (RCTD, flashdeconv, the harness's NNLS) on one STANDARD-FORMAT dataset folder.

    python benchmarks/run_peers.py DATASET_DIR [--methods rctd flashdeconv nnls] [--lofo]
        [--lofo-fit all|fov] [--out DIR]

Writes ``<method>_proportions.csv`` (spot barcodes x cell types, rows sum to 1) and appends one
row per method to ``summary.csv`` (the columns of ``shared/bench/results/*/summary.csv``) in
``benchmarks/out/peers/<dataset>/`` (``<dataset>_lofo/`` with ``--lofo``). Scores follow
``shared/bench/peers/score.py`` (the harness's ``metrics``: RMSE over all spot x type entries,
mean per-spot Jensen-Shannon divergence (log2), mean per-type Pearson r); ``seconds`` is the
method call only (as in the harness; RCTD: ``run_rctd.py``'s reference + platform/sigma + full
mode), the wall time of the whole step is in ``settings`` as ``wall_s``.

Peers, run one after another (never in parallel):

- ``nnls`` and ``flashdeconv``: the harness's own functions (``shared/bench/peers/run_peers.py``:
  ``load_dataset`` with its default 1000-cells-per-type reference cap, ``run_nnls``,
  ``run_flashdeconv``), in this process. flashdeconv needs ``flashdeconv==0.2.0``; when this
  interpreter lacks it and ``~/.venvs/rctd`` has it, the script re-runs itself there.
- ``rctd``: ``~/.venvs/rctd/bin/python shared/bench/peers/rctd/run_rctd.py`` (rctd-py 0.4.0 full
  mode, the README's settings) in a subprocess. rctd-py fits sigma only on spots with more than
  ``UMI_min_sigma`` (300) UMIs and fails when there are none; ``--umi-min-sigma auto`` keeps 300
  when at least 10 spots exceed it, else uses 0 (sigma fitted on all spots) and says so.

A missing peer is skipped with a printed reason.

Leave-one-FOV-out (``--lofo``, seqFISH+ only): for each FOV f of the spots, the reference is
the reference cells not in FOV f (cell FOV from ``shared/data/seqfish_plus_cortex/cells.h5ad``
``obs["fov"]``, matched by ``obs_names``); the method is fitted on all spots (``--lofo-fit all``,
as ``bench_accuracy.py``) or only FOV f's spots (``--lofo-fit fov``), and FOV f's spots are
kept. The per-FOV predictions are stitched together and scored once. Spot FOV:
``obs["fov"]``, else ``obs["region"]`` like ``"fov3"``, else the majority FOV of the 5 nearest
cells (``spot_fovs`` in ``bench_accuracy.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PEERS = SHARED / "bench" / "peers"
RCTD_SCRIPT = PEERS / "rctd" / "run_rctd.py"
SEQFISH_CELLS = SHARED / "data" / "seqfish_plus_cortex" / "cells.h5ad"
RCTD_VENV = Path(os.path.expanduser("~/.venvs/rctd"))
Q_MATRICES = Path(os.path.expanduser("~/.cache/rctd/q_matrices.npz"))
METHODS = ["rctd", "flashdeconv", "nnls"]


def harness():
    """shared/bench/peers/run_peers.py as a module (its name clashes with this file)."""
    spec = importlib.util.spec_from_file_location("peers_harness", PEERS / "run_peers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def rctd_python(path: str | None) -> Path:
    return Path(path) if path else RCTD_VENV / "bin" / "python"


def missing_reason(method: str, args) -> str | None:
    if method == "flashdeconv" and not has_module("flashdeconv"):
        return f"flashdeconv is not importable in {sys.executable}"
    if method == "rctd":
        py = rctd_python(args.rctd_python)
        if not py.exists():
            return f"no RCTD interpreter at {py} (see shared/bench/peers/rctd/README.md)"
        if not RCTD_SCRIPT.exists():
            return f"{RCTD_SCRIPT} is missing"
        if not Path(args.q_matrices).exists():
            return f"no RCTD likelihood tables at {args.q_matrices} (run make_q_matrices.py)"
        ok = subprocess.run([str(py), "-c", "import rctd"], capture_output=True).returncode == 0
        if not ok:
            return f"rctd-py is not importable in {py}"
    return None


# ----------------------------------------------------------------------------- FOVs
def spot_fovs(spatial) -> np.ndarray:
    if "fov" in spatial.obs:
        return spatial.obs["fov"].astype(int).to_numpy()
    if "region" in spatial.obs and str(spatial.obs["region"].iloc[0]).startswith("fov"):
        return spatial.obs["region"].astype(str).str.replace("fov", "").astype(int).to_numpy()
    import anndata as ad
    from scipy.spatial import cKDTree

    cells = ad.read_h5ad(SEQFISH_CELLS)
    xy = cells.obs[["x_px", "y_px"]].to_numpy(float)
    _, idx = cKDTree(xy).query(np.asarray(spatial.obsm["spatial"], float), k=5)
    fov = cells.obs["fov"].to_numpy().astype(int)[idx]
    return np.array([np.bincount(row).argmax() for row in fov])


def lofo_units(ddir: Path, work: Path, fit: str) -> list[dict]:
    """Write one dataset folder per FOV (reference without that FOV); return their descriptions."""
    import anndata as ad

    spa = ad.read_h5ad(ddir / "spatial.h5ad")
    ref = ad.read_h5ad(ddir / "reference.h5ad")
    truth = pd.read_csv(ddir / "truth.csv", index_col=0)
    truth.index = truth.index.astype(str)
    cells = ad.read_h5ad(SEQFISH_CELLS)
    missing = ref.obs_names.difference(cells.obs_names)
    if len(missing):
        raise ValueError(f"{len(missing)} reference cells are not in {SEQFISH_CELLS}: no cell FOVs")
    ref_fov = cells.obs.loc[ref.obs_names, "fov"].astype(int).to_numpy()
    fovs = spot_fovs(spa)
    units = []
    for f in sorted(np.unique(fovs)):
        d = work / f"fov{f}" / "data"
        d.mkdir(parents=True, exist_ok=True)
        rows = fovs == f
        fit_rows = rows if fit == "fov" else np.ones(spa.n_obs, bool)
        spa[fit_rows].copy().write_h5ad(d / "spatial.h5ad")
        ref[ref_fov != f].copy().write_h5ad(d / "reference.h5ad")
        truth.loc[spa.obs_names[fit_rows]].to_csv(d / "truth.csv")
        units.append(
            dict(
                fov=int(f),
                dir=d,
                keep=list(spa.obs_names[rows].astype(str)),
                n_fit=int(fit_rows.sum()),
                n_ref=int((ref_fov != f).sum()),
            )
        )
        print(
            f"  fov{f}: {rows.sum()} spots scored, fitted on {fit_rows.sum()}, "
            f"reference {int((ref_fov != f).sum())}/{ref.n_obs} cells",
            flush=True,
        )
    return units


# ----------------------------------------------------------------------------- methods
def run_inproc(H, method: str, ddir: Path, args) -> tuple[pd.DataFrame, dict]:
    """nnls / flashdeconv exactly as the harness's main loop does (one dataset folder)."""
    spa, ref, truth, types, keep, info = H.load_dataset(
        str(ddir), args.max_cells_per_type, args.seed
    )
    H.set_seeds(args.seed)
    runner = {"nnls": H.run_nnls, "flashdeconv": H.run_flashdeconv}[method]
    ns = argparse.Namespace(seed=args.seed, fast=False)
    t0 = time.perf_counter()
    sub = spa[keep].copy() if not keep.all() else spa
    props, meta = runner(sub, ref, types, ns)
    seconds = time.perf_counter() - t0
    props = H.to_fractions(props, types).reindex(spa.obs_names).fillna(1.0 / len(types))
    meta = dict(
        meta,
        seconds=seconds,
        n_genes=info["n_genes_shared"],
        n_types=info["n_types"],
        n_ref_cells=info["n_ref_cells"],
        n_ref_cells_total=info["n_ref_cells_total"],
        n_empty_spots=int((~keep).sum()),
    )
    return props, meta


def umi_min_sigma(ddir: Path, args) -> int:
    if args.umi_min_sigma != "auto":
        return int(args.umi_min_sigma)
    import anndata as ad

    spa = ad.read_h5ad(ddir / "spatial.h5ad")
    numi = np.asarray(spa.X.sum(1)).ravel()
    return 300 if (numi > 300).sum() >= 10 else 0


def run_rctd(H, ddir: Path, run_dir: Path, args) -> tuple[pd.DataFrame, dict]:
    ums = umi_min_sigma(ddir, args)
    done = run_dir / "rctd_details.json"
    if args.resume and done.exists():
        print(f"  reusing {run_dir} (--resume)", flush=True)
        return rctd_result(run_dir, ums)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    cmd = [
        str(rctd_python(args.rctd_python)),
        str(RCTD_SCRIPT),
        str(ddir),
        "--out",
        str(run_dir),
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
        "--umi-min-sigma",
        str(ums),
        "--q-matrices",
        str(args.q_matrices),
    ]
    with open(run_dir / "rctd.log", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = (run_dir / "rctd.log").read_text()[-1500:]
        raise RuntimeError(f"run_rctd.py exited {rc}: {tail}")
    return rctd_result(run_dir, ums)


def rctd_result(run_dir: Path, ums: int) -> tuple[pd.DataFrame, dict]:
    det = json.loads((run_dir / "rctd_details.json").read_text())
    props = pd.read_csv(run_dir / "rctd_proportions.csv", index_col=0)
    props.index = props.index.astype(str)
    meta = dict(
        version=f"rctd-py {det['rctd_py']} torch {det['torch']}",
        settings=f"full mode (run_rctd.py defaults) UMI_min_sigma={ums}",
        seconds=det["seconds_total"],
        n_genes=det["n_genes_reg"],
        n_dropped=det["n_spots_dropped"],
        n_all_zero=det["n_spots_all_zero_weights"],
        n_not_converged=det["n_not_converged"],
        sigma=det["sigma"],
        umi_min_sigma=ums,
        n_ref_cells=det["ref_cells_kept"],
        n_ref_cells_total=det["ref_cells_total"],
        warnings=det.get("warnings", []),
    )
    return props, meta


def run_unit(H, method: str, ddir: Path, work: Path, args) -> tuple[pd.DataFrame, dict]:
    if method == "rctd":
        return run_rctd(H, ddir, work / "rctd_run", args)
    return run_inproc(H, method, ddir, args)


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("dataset_dir", type=Path)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--lofo", action="store_true", help="leave-one-FOV-out reference (seqFISH+)")
    ap.add_argument(
        "--lofo-fit",
        choices=["all", "fov"],
        default="all",
        help="LOFO: fit on all spots (default, as bench_accuracy.py) or on FOV f's spots only",
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="default benchmarks/out/peers/<dataset>[_lofo]"
    )
    ap.add_argument("--name", default=None, help="dataset name in summary.csv")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--max-cells-per-type",
        type=int,
        default=1000,
        help="nnls/flashdeconv reference cap (harness)",
    )
    ap.add_argument(
        "--umi-min-sigma", default="auto", help="RCTD UMI_min_sigma: an integer or 'auto'"
    )
    ap.add_argument("--rctd-python", default=None, help="default ~/.venvs/rctd/bin/python")
    ap.add_argument("--q-matrices", default=str(Q_MATRICES))
    ap.add_argument(
        "--resume",
        action="store_true",
        help="RCTD: reuse finished run_rctd.py outputs in the out folder (same settings only)",
    )
    ap.add_argument(
        "--keep-lofo-data", action="store_true", help="keep the per-FOV dataset folders"
    )
    args = ap.parse_args()

    venv_py = RCTD_VENV / "bin" / "python"
    if (
        "flashdeconv" in args.methods
        and not has_module("flashdeconv")
        and venv_py.exists()
        and Path(sys.prefix).resolve() != RCTD_VENV.resolve()
        and not os.environ.get("STLNMF_PEERS_REEXEC")
    ):
        probe = subprocess.run(
            [str(venv_py), "-c", "import flashdeconv, anndata"], capture_output=True
        )
        if probe.returncode == 0:
            print(f"flashdeconv not in {sys.executable}; re-running under {venv_py}", flush=True)
            os.environ["STLNMF_PEERS_REEXEC"] = "1"
            os.execv(str(venv_py), [str(venv_py), *sys.argv])

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="anndata")
    H = harness()

    ddir = args.dataset_dir.resolve()
    base = ddir.name + ("_lofo" if args.lofo else "")
    name = args.name or base
    out = (args.out or ROOT / "benchmarks" / "out" / "peers" / base).resolve()
    out.mkdir(parents=True, exist_ok=True)
    truth = pd.read_csv(ddir / "truth.csv", index_col=0)
    truth.index = truth.index.astype(str)
    types = list(truth.columns)
    print(f"[{name}] {ddir} -> {out}; {len(truth)} spots, {len(types)} types", flush=True)

    if args.lofo:
        units = lofo_units(ddir, out, args.lofo_fit)
    else:
        units = [dict(fov=None, dir=ddir, keep=list(truth.index), n_fit=len(truth), n_ref=None)]

    for method in args.methods:
        reason = missing_reason(method, args)
        if reason:
            print(f"[{name}] {method}: SKIPPED ({reason})", flush=True)
            continue
        print(f"[{name}] === {method} ===", flush=True)
        row = dict(
            dataset=name,
            method=method,
            seed=args.seed,
            n_spots=len(truth),
            n_types=len(types),
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        t_wall = time.perf_counter()
        pred = pd.DataFrame(np.nan, index=truth.index, columns=types)
        metas = []
        try:
            for u in units:
                work = out if u["fov"] is None else out / f"fov{u['fov']}"
                props, meta = run_unit(H, method, u["dir"], work, args)
                props = H.to_fractions(props, types)
                rows = [b for b in u["keep"] if b in props.index]
                pred.loc[rows] = props.loc[rows].to_numpy()
                meta = dict(
                    meta,
                    fov=u["fov"],
                    n_scored=len(u["keep"]),
                    n_fit=u["n_fit"],
                    n_missing=len(u["keep"]) - len(rows),
                )
                metas.append(meta)
                if u["fov"] is not None:
                    print(f"  fov{u['fov']}: {meta['seconds']:.1f} s", flush=True)
            n_missing = int(pred.isna().any(axis=1).sum())
            pred = pred.fillna(
                1.0 / len(types)
            )  # spots a method dropped: uniform (harness convention)
            pred.to_csv(out / f"{method}_proportions.csv")
            mt = H.metrics(pred, truth)
            wall = time.perf_counter() - t_wall
            settings = metas[0]["settings"]
            if method != "rctd":
                settings += f" max_cells_per_type={args.max_cells_per_type}"
            if args.lofo:
                settings += (
                    f"; leave-one-FOV-out over {len(units)} FOVs (fit on {args.lofo_fit} spots), "
                    f"ref cells per FOV {[m['n_ref_cells'] for m in metas]}"
                )
            else:
                settings += f"; n_ref_cells={metas[0]['n_ref_cells']}"
            extra = []
            if method == "rctd":
                extra.append(f"sigma={[m['sigma'] for m in metas]}")
                extra.append(f"dropped={sum(m['n_dropped'] for m in metas)}")
                extra.append(f"not_converged={sum(m['n_not_converged'] for m in metas)}")
            settings += "; " + " ".join(
                extra + [f"spots_filled_uniform={n_missing}", f"wall_s={wall:.1f}"]
            )
            row.update(
                version=metas[0]["version"],
                status="ok",
                rmse=round(mt["rmse"], 5),
                jsd=round(mt["jsd"], 5),
                pearson=round(mt["pearson"], 4),
                seconds=round(sum(m["seconds"] for m in metas), 2),
                n_genes=metas[0]["n_genes"],
                settings=settings,
                per_type_r=json.dumps(mt["per_type_r"]),
                error="; ".join(sorted({w for m in metas for w in m.get("warnings", [])}))[:500],
            )
            with open(out / f"{method}_units.json", "w") as f:
                json.dump(metas, f, indent=1, default=str)
            print(
                f"[{name}] {method}: ok in {row['seconds']} s (wall {wall:.1f} s) "
                f"rmse={row['rmse']} jsd={row['jsd']} pearson={row['pearson']} "
                f"{' '.join(extra)} filled={n_missing}",
                flush=True,
            )
        except Exception as e:  # a failing peer must not stop the others
            row.update(
                status="failed",
                seconds=round(time.perf_counter() - t_wall, 2),
                error=f"{type(e).__name__}: {e}"[:500],
            )
            print(f"[{name}] {method}: FAILED {row['error']}", file=sys.stderr, flush=True)
        H.append_summary(str(out / "summary.csv"), row)

    if args.lofo and not args.keep_lofo_data:
        for u in units:
            shutil.rmtree(u["dir"], ignore_errors=True)


if __name__ == "__main__":
    main()
