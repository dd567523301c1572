"""Cohorts: many slides against one model, one Dask distributed task per slide.

:func:`run_cohort` is ``stlnmf batch``: it reads a manifest (:mod:`.io.manifest`), trains
one model on the first readable slide (a task like ``stlnmf train``) unless it is given
one, sends that model to every worker once, and runs one task per slide that does exactly
what ``stlnmf deconvolve --model`` does (the same code, the same arguments, so the same
files and numbers). The engine is Dask distributed: a :class:`distributed.LocalCluster`
of single-threaded worker processes by default, or any running scheduler (SLURM through
dask-jobqueue, Kubernetes, ``dask scheduler`` + ``dask worker``) by its address; the
output folder must then be on a file system the workers share.

The output folder::

    DIR/model.safetensors          the model, when the cohort trained it, and
    DIR/model.json                 how it was trained (a rerun reuses the model if the same)
    DIR/slides/<name>/...          each slide's stlnmf deconvolve outputs
    DIR/cohort_region_means.csv    slide, region, n_spots, one column per cell type
    DIR/run.json                   the cohort: arguments, model, cluster, every slide's
                                   status (done, skipped, failed + its error), timings

Each slide's files appear together or not at all (``io.export.write_run``), so a rerun
skips slides whose run.json carries this run's fingerprint (same model, same arguments)
and redoes the rest. A slide that fails (a bad file, a missing gene) fails alone, with its
one-line error in run.json; a worker that dies (killed, out of memory) has its slide
retried on another worker by the scheduler.

Scripts that call :func:`run_cohort` with the default local cluster must guard their entry
point with ``if __name__ == "__main__":``: the worker processes import the main module.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import socket
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from distributed import WorkerPlugin

from .io.errors import InputError, one_line
from .io.manifest import SlideEntry, read_manifest

__all__ = [
    "run_cohort",
    "CohortResult",
    "SlideOutcome",
    "cohort_options",
    "MODEL_FILE",
    "TABLE_FILE",
    "SUMMARY_FILE",
]

MODEL_FILE = "model.safetensors"
TABLE_FILE = "cohort_region_means.csv"
SUMMARY_FILE = "run.json"
SLIDES_DIR = "slides"
#: How long to try to reach a given scheduler before saying it is unreachable.
CONNECT_TIMEOUT = "20s"

#: Options that ``stlnmf train`` takes and ``stlnmf deconvolve --model`` ignores or never
#: needs; the other options go to every slide.
_TRAIN_ONLY = {"reference", "label_key", "labels", "min_cells"}
#: Options of ``stlnmf deconvolve`` only (not of ``stlnmf train``).
_DECONVOLVE_ONLY = {"fractions", "no_figure"}
#: Options that apply only to Visium HD slides (``read_spatial`` refuses them elsewhere).
_HD_ONLY = {"bin_size", "rebin_um"}


@dataclass
class SlideOutcome:
    """What happened to one slide of the cohort.

    ``status`` is ``"done"`` (computed now), ``"skipped"`` (complete from an earlier run),
    ``"failed"`` (``error`` says why, one line), or ``"not run"`` (interrupted first).
    """

    name: str
    path: str
    regions: str | None
    status: str = "not run"
    error: str | None = None
    seconds: float | None = None
    n_spots: int | None = None
    worker: str | None = None
    peak_rss_mib: float | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != []}


@dataclass
class CohortResult:
    """The outcome of :func:`run_cohort`.

    Attributes
    ----------
    out : Path
        The cohort folder.
    slides : list of SlideOutcome
        In manifest order.
    table : DataFrame
        The cohort table (``cohort_region_means.csv``): slide, region, n_spots, then one
        column of mean proportions per cell type, for every slide that has outputs.
    summary : dict
        The cohort's run.json.
    interrupted : bool
        Stopped by Ctrl-C (KeyboardInterrupt) before every slide was run.
    """

    out: Path
    slides: list[SlideOutcome]
    table: pd.DataFrame
    summary: dict
    interrupted: bool = False

    @property
    def failed(self) -> list[SlideOutcome]:
        return [s for s in self.slides if s.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.interrupted and not self.failed


# -- options as command lines ---------------------------------------------------------


def cohort_options(options: dict | None) -> dict:
    """Check the per-cohort options (``stlnmf deconvolve``/``train`` options by their
    Python names, e.g. ``{"epochs": 20, "fractions": "mrna", "no_figure": True}``) against
    the command-line parser; returns them unchanged. Raises InputError naming an unknown
    option or a bad value."""
    from ._cli_args import build_parser

    options = dict(options or {})
    parser = build_parser()
    known = {
        a.dest
        for name in ("deconvolve", "train")
        for a in parser._subparsers._group_actions[0].choices[name]._actions
    }
    managed = {"spatial", "sample", "regions", "model", "out", "save", "save_model", "quiet"}
    bad = sorted(set(options) - (known - managed))
    if bad:
        raise InputError(f"unknown cohort option(s) {bad}; use the stlnmf deconvolve options")
    from .options import RunOptions

    if options.get("interval_slides") not in (None, 0, RunOptions().interval_slides):
        raise InputError("interval_slides: a cohort takes 0 (--no-intervals) or the default")
    # let argparse check the values (choices, ranges) once, here, rather than per slide
    try:
        parser.parse_args(["deconvolve", "--spatial", "x", "--out", "x", *_argv(options)])
    except SystemExit:
        raise InputError(f"invalid cohort options {options}") from None
    return options


def _argv(options: dict, skip: set[str] = frozenset()) -> list[str]:
    argv: list[str] = []
    for key, value in options.items():
        if key in skip or value is None or value is False:
            continue
        if key == "interval_slides":  # the command line only has --no-intervals
            argv += ["--no-intervals"] if value == 0 else []
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    return argv


def _slide_argv(command: str, entry: SlideEntry, skip: set[str], options: dict, *tail):
    """``stlnmf COMMAND --spatial SLIDE [--regions R] [--coords C] [--fullres-image F]
    TAIL OPTIONS -q``; the Visium HD
    options only for a Visium HD slide (read_spatial refuses them elsewhere)."""
    from .io.visium_hd import visium_hd_kind

    if not (entry.path.exists() and visium_hd_kind(entry.path) == "bins"):
        skip = skip | _HD_ONLY
    argv = [command, "--spatial", str(entry.path)]
    for flag, value in (
        ("--regions", entry.regions),
        ("--coords", entry.coords),
        ("--fullres-image", entry.fullres_image),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv + [str(t) for t in tail] + _argv(options, skip) + ["-q"]


def _deconvolve_argv(entry: SlideEntry, out: Path, model: Path, options: dict) -> list[str]:
    tail = ("--model", model, "--out", out / SLIDES_DIR / entry.name)
    return _slide_argv("deconvolve", entry, _TRAIN_ONLY, options, *tail)


def _train_argv(entry: SlideEntry, save: Path, options: dict) -> list[str]:
    return _slide_argv("train", entry, _DECONVOLVE_ONLY, options, "--save", save)


def _fingerprint(argv: list[str], model_sha: str) -> str:
    """What makes a slide's outputs this run's: the model and every argument but --out."""
    args = list(argv)
    i = args.index("--out")
    del args[i : i + 2]
    blob = json.dumps({"argv": args, "model_sha256": model_sha}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _train_fingerprint(entries, model_path: Path, options: dict) -> str:
    """What makes a trained model this run's: the training arguments (candidate slides,
    reference, options) and the reference file's size and time."""
    argvs = [_train_argv(e, model_path, options) for e in entries]
    ref = Path(options["reference"])
    stat = ref.stat() if ref.exists() else None
    blob = json.dumps(
        {"argvs": argvs, "reference": [stat.st_size, stat.st_mtime_ns] if stat else None},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _model_matches(model_path: Path, fingerprint: str) -> bool:
    """Whether the model a cohort trained earlier in this folder was trained like this."""
    try:
        meta = json.loads(model_path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return False
    return model_path.is_file() and meta.get("fingerprint") == fingerprint


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- the tasks (run on the workers) -----------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _peak_rss_mib() -> float:
    # Linux reports KiB, macOS bytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024**2 if sys.platform == "darwin" else 1024), 1)


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files of an earlier attempt whose worker was killed mid-write."""
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def _slide_task(argv: list[str], model, cohort_meta: dict) -> dict:
    """Deconvolve one slide: ``stlnmf deconvolve`` with ``argv``, the model given."""
    from ._cli_args import build_parser
    from .cli import _cmd_deconvolve, _Log

    t0 = time.perf_counter()
    out = {"worker": _worker_name()}
    try:
        args = build_parser().parse_args(argv)
        _remove_stale_temporaries(Path(args.out))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _cmd_deconvolve(args, _Log(True), model=model, extra_metadata={"cohort": cohort_meta})
        out["warnings"] = sorted({one_line(w.message) for w in caught if _shown(w.category)})
        out["status"] = "done"
    except InputError as e:
        out.update(status="failed", error=one_line(e))
    except Exception as e:  # a bug on one slide must not take the cohort down
        out.update(status="failed", error=f"internal error: {type(e).__name__}: {one_line(e)}")
    except SystemExit as e:  # argparse: cannot happen with the argv we build
        out.update(status="failed", error=f"bad arguments ({e})")
    out["seconds"] = round(time.perf_counter() - t0, 3)
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def _shown(category) -> bool:
    return not issubclass(category, DeprecationWarning | FutureWarning | PendingDeprecationWarning)


def _train_task(candidates: list[tuple[str, list[str]]], options: dict) -> dict:
    """Train on the first candidate slide that can be read: ``stlnmf train`` with its
    argv. The reference is read once, first: when it is unusable nothing else is tried."""
    from ._cli_args import build_parser
    from .cli import _cmd_train, _Log
    from .io.reference import read_reference

    t0 = time.perf_counter()
    parser = build_parser()
    first = parser.parse_args(candidates[0][1])
    try:
        reference = read_reference(
            first.reference, first.label_key, labels=first.labels, min_cells=first.min_cells
        )
    except InputError as e:
        return {"status": "failed", "fatal": True, "error": one_line(e)}
    passed_over = []
    for name, argv in candidates:
        args = parser.parse_args(argv)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _cmd_train(args, _Log(True), reference=reference)
        except InputError as e:
            passed_over.append({"slide": name, "error": one_line(e)})
            continue
        return {
            "status": "done",
            "slide": name,
            "passed_over": passed_over,
            "seconds": round(time.perf_counter() - t0, 3),
            "worker": _worker_name(),
        }
    return {"status": "failed", "fatal": False, "passed_over": passed_over}


# -- the driver ---------------------------------------------------------------------------


def _complete(folder: Path, fingerprint: str, figure: bool) -> bool:
    """Whether a slide folder holds a finished run with this fingerprint."""
    from .io.export import RUN_FILES

    run = folder / "run.json"
    try:
        meta = json.loads(run.read_text())
    except (OSError, ValueError):
        return False
    if (meta.get("cohort") or {}).get("fingerprint") != fingerprint:
        return False
    need = [f for f in RUN_FILES if figure or f != "proportions.png"]
    return all((folder / f).is_file() for f in need)


class _IgnoreInterrupt(WorkerPlugin):
    """Worker plugin: SIGINT ignored in a local worker process (also in restarted ones)."""

    def setup(self, worker) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _quiet_distributed_logs() -> None:
    """Run on each local worker before the cluster closes: only critical Dask messages."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


class _Cluster:
    """A Dask client on a new LocalCluster or on a running scheduler; closes both."""

    def __init__(self, scheduler: str | None, n_workers: int, log: Callable[[str], None]):
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as e:
                raise InputError(
                    f"--scheduler {scheduler}: could not connect ({one_line(e)})"
                ) from None
            self.kind = "existing scheduler"
        else:
            from .core._fused import worker_count

            # the CPUs' compute threads shared out between the workers (each is one process
            # with one task at a time; the fused kernel uses STLNMF_THREADS threads)
            threads = max(1, -(-worker_count() // n_workers))
            self.cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                env={"STLNMF_THREADS": os.environ.get("STLNMF_THREADS", str(threads))},
            )
            self.client = Client(self.cluster)
            # Ctrl-C in a terminal reaches the whole process group: the driver handles it
            # and closes the cluster, so the local workers ignore it (no tracebacks)
            self.client.register_plugin(_IgnoreInterrupt(), name="stlnmf-ignore-sigint")
            self.kind = "LocalCluster"
        self.address = self.client.scheduler.address
        n = len(self.client.scheduler_info().get("workers", {}))
        log(f"{self.kind} at {self.address} with {n} worker{'s' * (n != 1)}")
        if n == 0:
            log("waiting for a worker to join")

    @property
    def n_workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def close(self) -> None:
        if self.cluster is not None:
            # on a busy machine a worker's heartbeat can race the scheduler's shutdown and
            # print a traceback after the run's own last line: our own workers go quiet first
            try:
                self.client.run(_quiet_distributed_logs, on_error="ignore")
            except Exception:  # a worker already gone must not stop the close
                pass
        try:
            self.client.close(timeout=10)
        finally:
            if self.cluster is not None:
                self.cluster.close(timeout=10)


def run_cohort(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    *,
    reference: str | os.PathLike | None = None,
    label_key: str | None = None,
    model: str | os.PathLike | None = None,
    options: dict | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> CohortResult:
    """Deconvolve every slide of a manifest against one model, on Dask distributed.

    Parameters
    ----------
    manifest : path
        CSV with columns ``path`` (the slide), optional ``regions`` and ``name``; see
        :func:`napari_stlnmf.io.manifest.read_manifest`.
    out : path
        The cohort folder (created): ``slides/<name>/`` per slide, the cohort table and
        run.json (see the module docstring).
    reference, label_key : optional
        The single-cell reference, to train a model on the first readable slide when
        ``model`` is not given (as ``stlnmf train`` would; saved as
        ``out/model.safetensors`` and reused by a rerun).
    model : path, optional
        A saved model (``stlnmf train --save``); no training then.
    options : dict, optional
        ``stlnmf deconvolve`` options by Python name, e.g. ``{"epochs": 20, "seed": 1,
        "fractions": "mrna", "no_figure": True, "bin_size": 16}``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); by default a
        LocalCluster of ``n_workers`` single-threaded processes.
    n_workers : int, optional
        Workers of the LocalCluster (default: the CPU count, at most one per slide).
    force : bool, default False
        Recompute complete slides (and retrain a model the cohort trained) too.
    progress : bool, default True
        A progress bar over slides on stderr.
    log : callable, optional
        Receives one line per event (training, cluster, failures).

    Returns
    -------
    CohortResult
        Also when slides failed (see ``result.failed``) or on Ctrl-C
        (``result.interrupted``; the slides finished so far are kept).

    Raises
    ------
    InputError
        An unreadable manifest, unknown options, no reference and no model, an unusable
        reference, an unreachable scheduler, or no slide a model could be trained on.
    """
    from .io.export import write_json
    from .io.model_file import load_model

    t_start = time.perf_counter()
    log = log or (lambda msg: None)
    entries = read_manifest(manifest)
    options = cohort_options(options)
    out = Path(out)
    from .cli import _check_out_folder

    _check_out_folder(out)
    if model is None and reference is None:
        raise InputError("give --reference (to train a model) or --model")
    if model is not None and not Path(model).is_file():
        raise InputError(f"--model {model}: no such model file")
    # absolute paths: the workers of a real cluster do not share our working folder
    if options.get("labels"):
        options["labels"] = str(Path(options["labels"]).resolve())
    train_options = dict(options)
    if reference is not None:
        train_options["reference"] = str(Path(reference).resolve())
        train_options["label_key"] = label_key
    figure = not options.get("no_figure", False)

    trained_here = model is None
    model_path = (Path(model) if model is not None else out / MODEL_FILE).resolve()
    train_fp = _train_fingerprint(entries, model_path, train_options) if trained_here else None
    reuse_model = trained_here and not force and _model_matches(model_path, train_fp)
    todo_guess = len(entries)
    n_workers = n_workers or max(1, min(os.cpu_count() or 1, todo_guess))

    slides = [
        SlideOutcome(e.name, str(e.path), str(e.regions) if e.regions else None) for e in entries
    ]
    summary: dict = {
        "command": "batch",
        "manifest": str(Path(manifest).resolve()),
        "arguments": {
            "reference": train_options.get("reference"),
            "label_key": label_key,
            "model": str(model) if model is not None else None,
            "options": options,
            "scheduler": scheduler,
            "n_workers": n_workers if scheduler is None else None,
            "force": force,
        },
    }
    timings: dict = {}
    fingerprints: dict[str, str] = {}
    interrupted = False
    cluster = None
    bar = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        cluster = _Cluster(scheduler, n_workers, log)
        client = cluster.client
        if trained_here and not reuse_model:
            timings["train_seconds"] = _train(client, entries, model_path, train_options, log)
            write_json(model_path.with_suffix(".json"), {"fingerprint": train_fp})
        elif reuse_model:
            log(f"reusing {model_path} from an earlier run (--force retrains)")
        loaded = load_model(model_path)
        model_sha = _sha256(model_path)
        summary["model"] = {
            "path": str(model_path.resolve()),
            "sha256": model_sha,
            "trained_by_this_cohort": trained_here,
            "cell_types": list(loaded.cell_types_),
            "n_genes": len(loaded.genes_),
        }

        jobs = []
        for entry, slide in zip(entries, slides):
            argv = _deconvolve_argv(entry, out, model_path.resolve(), options)
            fp = _fingerprint(argv, model_sha)
            if not force and _complete(out / SLIDES_DIR / entry.name, fp, figure):
                slide.status = "skipped"
                continue
            fingerprints[entry.name] = fp
            meta = {"name": entry.name, "manifest_row": entry.row, "fingerprint": fp}
            jobs.append((slide, argv, meta))
        n_skipped = len(slides) - len(jobs)
        if n_skipped:
            log(f"{n_skipped} slide(s) already complete: skipped (--force recomputes)")
        if progress:
            from tqdm import tqdm

            bar = tqdm(
                total=len(slides),
                initial=n_skipped,
                desc="slides",
                unit="slide",
                file=sys.stderr,
            )
        t_run = time.perf_counter()
        if jobs:
            _run_slides(client, loaded, jobs, bar, log)
        timings["slides_seconds"] = round(time.perf_counter() - t_run, 3)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: finished slides are kept; rerun the command to continue")
    finally:
        if bar is not None:
            bar.close()
        if cluster is not None:
            summary["cluster"] = {"kind": cluster.kind, "address": cluster.address}
            try:
                summary["cluster"]["n_workers"] = cluster.n_workers
                cluster.close()
            except Exception:  # closing must never hide the run's own outcome
                pass
    if interrupted:  # slides that finished while the cluster was closing are done too
        _remove_stale_temporaries(out)  # of a model being saved
        for slide in slides:
            _remove_stale_temporaries(out / SLIDES_DIR / slide.name)
            fp = fingerprints.get(slide.name)
            if (
                slide.status == "not run"
                and fp
                and _complete(out / SLIDES_DIR / slide.name, fp, figure)
            ):
                slide.status = "done"
    timings["total_seconds"] = round(time.perf_counter() - t_start, 3)
    return _finish(out, slides, summary, timings, interrupted)


def _train(client, entries, model_path: Path, options: dict, log) -> float:
    """Train on the first readable slide, as a task; the model lands at model_path."""
    candidates = [(e.name, _train_argv(e, model_path, options)) for e in entries]
    log(f"training a model on simulated slides of {entries[0].name} (the first readable slide)")
    t0 = time.perf_counter()
    fut = client.submit(_train_task, candidates, options, key=f"stlnmf-train-{uuid.uuid4().hex}")
    try:
        res = fut.result()
    except KeyboardInterrupt:
        client.cancel([fut])
        raise
    except Exception as e:
        raise RuntimeError(
            f"training failed on the cluster: {type(e).__name__}: {one_line(e)}"
        ) from e
    for skip in res.get("passed_over", []):
        log(f"cannot train on {skip['slide']}: {skip['error']}")
    if res["status"] != "done":
        if res.get("fatal"):
            raise InputError(res["error"])
        raise InputError("no slide of the manifest could be trained on (see above)")
    log(f"trained on {res['slide']} in {res['seconds']:.1f} s; saved {model_path}")
    return round(time.perf_counter() - t0, 3)


def _run_slides(client, model, jobs, bar, log) -> None:
    """One task per slide; the model is scattered to every worker once."""
    from distributed import as_completed

    model_future = client.scatter(model, broadcast=True, hash=False)
    token = uuid.uuid4().hex[:8]
    futures = {}
    for i, (slide, argv, meta) in enumerate(jobs):
        fut = client.submit(
            _slide_task,
            argv,
            model_future,
            meta,
            key=f"stlnmf-slide-{slide.name}-{token}",
            priority=len(jobs) - i,  # manifest order, roughly
            pure=False,
        )
        futures[fut] = slide
    try:
        for fut in as_completed(futures):
            slide = futures[fut]
            try:
                res = fut.result()
            except Exception as e:  # KilledWorker after too many deaths, lost data, ...
                res = {"status": "failed", "error": _cluster_error(e)}
            slide.status = res["status"]
            slide.error = res.get("error")
            slide.seconds = res.get("seconds")
            slide.worker = res.get("worker")
            slide.peak_rss_mib = res.get("peak_rss_mib")
            slide.warnings = res.get("warnings", [])
            if slide.status == "failed":
                _say(bar, log, f"slide {slide.name} failed: {slide.error}")
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        client.cancel(list(futures))
        raise


def _cluster_error(e: BaseException) -> str:
    name = type(e).__name__
    if name == "KilledWorker":
        return (
            "the workers running this slide died repeatedly (out of memory, or killed); "
            "see the worker logs"
        )
    return f"{name}: {one_line(e)}"


def _say(bar, log, msg: str) -> None:
    if bar is not None:
        bar.clear()
    log(msg)
    if bar is not None:
        bar.refresh()


def _finish(out: Path, slides, summary: dict, timings: dict, interrupted: bool) -> CohortResult:
    """The cohort table and run.json, written together (atomically)."""
    from .io.atomic import atomic_batch
    from .io.export import write_json
    from .pipeline import versions

    frames = []
    for s in slides:
        folder = out / SLIDES_DIR / s.name
        if s.status not in ("done", "skipped"):
            continue
        try:
            means = pd.read_csv(folder / "region_means.csv", dtype={"region": str})
            run = json.loads((folder / "run.json").read_text())
        except (OSError, ValueError) as e:
            s.status, s.error = "failed", f"outputs unreadable: {one_line(e)}"
            continue
        s.n_spots = run.get("n_spots")
        means.insert(0, "slide", s.name)
        frames.append(means)
    table = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["slide", "region", "n_spots"])
    )
    counts = {k: sum(s.status == k for s in slides) for k in ("done", "skipped", "failed")}
    counts["not_run"] = sum(s.status == "not run" for s in slides)
    summary.update(
        {
            "n_slides": len(slides),
            "status": counts,
            "interrupted": interrupted,
            "slides": [s.as_dict() for s in slides],
            "timings": timings,
            "versions": versions(),
        }
    )
    rss = [s.peak_rss_mib for s in slides if s.peak_rss_mib is not None]
    if rss:
        summary["peak_rss_mib_per_worker"] = {
            "max": max(rss),
            "median": float(np.median(rss)),
        }
    summary["peak_rss_mib_driver"] = _peak_rss_mib()
    try:
        with atomic_batch():
            from .io.atomic import atomic_write

            atomic_write(
                out / TABLE_FILE,
                lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"),
            )
            write_json(out / SUMMARY_FILE, summary)
    except OSError as e:
        raise InputError(f"could not write the cohort outputs in {out}: {one_line(e)}") from e
    return CohortResult(out, slides, table, summary, interrupted)
