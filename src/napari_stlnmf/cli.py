"""``stlnmf``: STL NMF deconvolution of spatial transcriptomics from the shell.

The commands (``deconvolve``, ``train``, ``batch``, ``info``): each reads its inputs with
:mod:`napari_stlnmf.io`, runs :mod:`napari_stlnmf.pipeline` and prints progress on stderr.
The parser and help text are in :mod:`napari_stlnmf._cli_args`.

Exit codes: bad input (an :class:`~napari_stlnmf.io.errors.InputError`, which
``ModelFileError`` and ``NotEnoughMemoryError`` are) exits 2 with one line; any other
exception is an internal error, exit 1 with one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
import time
import traceback
import warnings
from pathlib import Path

from ._cli_args import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_SOME_FAILED,
    build_parser,
)
from .io.errors import InputError, one_line

__all__ = ["main", "build_parser"]


# --------------------------------------------------------------------------------------
class _Log:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def _load_inputs(args, log: _Log, need_reference: bool, reference=None):
    """(slide AnnData, ReferenceSource or None, regions or None, slide name, sample).
    ``reference``: the reference of ``args.reference``, already read (a cohort reads it
    once)."""
    from .io.reference import read_reference, reference_from_anndata

    sample = None
    if args.sample:
        from .io.samples import load_sample

        if args.reference:
            raise InputError("--sample brings its own reference: drop --reference")
        hd = [
            f"--{k.replace('_', '-')}" for k in ("bin_size", "rebin_um") if getattr(args, k, None)
        ]
        if hd:
            raise InputError(f"--sample {args.sample} is not a Visium HD slide: drop {hd[0]}")
        log(f"loading bundled sample {args.sample}")
        sample = load_sample(args.sample)
        adata, name = sample.spatial, f"sample {args.sample}"
        reference = reference_from_anndata(
            sample.reference,
            args.label_key or sample.label_key,
            min_cells=args.min_cells,
            path=f"sample {args.sample} reference",
        )
        regions = sample.regions
    else:
        from .io.spatial import read_spatial

        log(f"reading slide {args.spatial}")
        kw = {}
        if args.fullres_image:
            kw["fullres_image"] = args.fullres_image
        for key in ("bin_size", "rebin_um"):  # Visium HD only; read_spatial checks that
            if getattr(args, key, None) is not None:
                kw[key] = getattr(args, key)
        adata = read_spatial(args.spatial, coords=args.coords, **kw)
        name = str(args.spatial)
        regions = None
        if reference is None and args.reference:
            log(f"reading reference {args.reference}")
            reference = read_reference(
                args.reference, args.label_key, labels=args.labels, min_cells=args.min_cells
            )
        elif reference is None and need_reference:
            raise InputError("--reference is required (or --model for deconvolve)")
    if args.regions:
        from .io.regions import read_regions

        regions = read_regions(args.regions, adata)
    log(f"slide: {adata.n_obs} spots x {adata.n_vars} genes")
    return adata, reference, regions, name, sample


def _prepare(args, adata, reference, regions, name, model, log):
    from .options import GENE_SELECTIONS
    from .pipeline import prepare

    prep = prepare(
        adata,
        reference,
        regions=regions,
        model=model,
        markers=GENE_SELECTIONS[args.genes],
        n_markers=args.markers_per_type,
        spatial_name=name,
        device=getattr(args, "device", "auto"),
    )
    g = prep.info["genes"]
    ov = g["overlap"]
    log(
        f"genes: {ov['n_shared']} shared by {ov['naming']} ({ov['percent_of_reference']}% of "
        f"the reference, {ov['percent_of_spatial']}% of the slide); using {g['n_used']}"
        + (" marker genes" if g["markers"] else "")
    )
    return prep


def _train(args, prep, log):
    from .options import RunOptions
    from .pipeline import train

    log(f"training {args.method} on simulated slides (device {args.device}, seed {args.seed})")
    bar = None
    if args.method == "stlnmf" and args.epochs > 0 and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=args.epochs, desc="training", unit="epoch", file=sys.stderr)

    def progress(p):
        if bar is not None:
            bar.set_postfix(train=f"{p.train_rmse:.4f}", val=f"{p.val_rmse:.4f}")
            bar.update(1)

    options = RunOptions(
        epochs=args.epochs,
        n_layers=args.layers,
        warm_start=args.warm_start,
        gene_weights=args.gene_weights,
        data_term=args.data_term,
        interval_slides=args.interval_slides,
    )
    t0 = time.perf_counter()
    try:
        model = train(
            prep,
            method=args.method,
            seed=args.seed,
            device=args.device,
            options=options,
            callback=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    return model, time.perf_counter() - t0


def _cmd_deconvolve(args, log: _Log, model=None, extra_metadata: dict | None = None) -> int:
    """``stlnmf deconvolve``. ``model``: the model of ``args.model`` already loaded (a
    cohort's workers get it once, not per slide); ``extra_metadata`` goes into run.json."""
    from .io.export import write_run
    from .pipeline import deconvolve

    _check_device(args.device)
    out = Path(args.out)
    _check_out_folder(out)
    if args.save_model and not args.model:
        _check_save_path("--save-model", args.save_model)
    t_start = time.perf_counter()
    if model is None and args.model:
        from .io.model_file import load_model

        log(f"loading model {args.model}")
        model = load_model(args.model)
    adata, reference, regions, name, sample = _load_inputs(args, log, need_reference=not args.model)
    t_read = time.perf_counter() - t_start
    prep = _prepare(args, adata, reference, regions, name, model, log)
    train_s = 0.0
    if model is None:
        model, train_s = _train(args, prep, log)
        if args.save_model:
            _save_model(model, "--save-model", args.save_model)
            log(f"saved model {args.save_model}")
    log("deconvolving")
    params = {k: v for k, v in vars(args).items() if k not in ("quiet", "debug")}
    result = deconvolve(
        prep,
        model,
        fractions=args.fractions,
        timings={"read_seconds": round(t_read, 3), "train_seconds": round(train_s, 3)},
        extra_metadata={
            "command": "deconvolve",
            "arguments": params,
            "seed": args.seed,
            **(extra_metadata or {}),
        },
    )
    if sample is not None and sample.truth is not None:
        from .core.metrics import truth_metrics

        result.metadata["truth_metrics"] = truth_metrics(result.proportions, sample.truth)
        log("against the sample's ground truth: " + _fmt_metrics(result.metadata["truth_metrics"]))
    # all outputs or none: a failure (full disk, Ctrl-C) leaves the previous files intact
    from .io.spatialdata_zarr import TABLE_NAME, store_of, write_proportions_table

    if store_of(adata) is not None and not args.no_store_table:
        # before run.json: a run folder with run.json is a finished run (stlnmf batch)
        store = write_proportions_table(adata, result)
        log(f"wrote table {TABLE_NAME} into {store}")
    write_run(out, adata, result, figure=not args.no_figure, started=t_start)
    log(f"wrote {out}/proportions.csv, region_means.csv, result.h5ad, run.json")
    return 0


def _check_out_folder(out: Path) -> None:
    """--out must be a folder or creatable as one: fail before any work, not after it."""
    if out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out} exists and is not a folder")
        return
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is a file, not a folder")


def _check_save_path(option: str, path: str) -> None:
    """A model file to write: its folder must exist and it must not be a folder."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {p} is a folder; give a file name such as model.safetensors")
    if not p.parent.is_dir():
        raise InputError(f"{option} {p}: the folder {p.parent} does not exist")


def _save_model(model, option: str, path: str) -> None:
    """Save the model; a file system refusal (permissions, full disk) is the user's."""
    from .io.model_file import save_model

    try:
        save_model(model, path)
    except OSError as e:
        reason = e.strerror or one_line(e)
        raise InputError(f"{option} {path}: could not write the model: {reason}") from e


def _check_device(device: str) -> None:
    """Fail before reading anything when the asked-for device is missing."""
    from .core.device import resolve_device

    try:
        resolve_device(device)
    except ValueError as e:  # e.g. cuda asked for where there is none: the user's choice
        raise InputError(str(e)) from None


def _fmt_metrics(m: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in m.items())


def _cmd_train(args, log: _Log, reference=None) -> int:
    """``stlnmf train``; ``reference``: that of ``args.reference``, already read."""
    _check_device(args.device)
    _check_save_path("--save", args.save)
    adata, reference, regions, name, _ = _load_inputs(
        args, log, need_reference=True, reference=reference
    )
    if args.method != "stlnmf":
        raise InputError("only --method stlnmf has a model to save")
    prep = _prepare(args, adata, reference, regions, name, None, log)
    model, seconds = _train(args, prep, log)
    _save_model(model, "--save", args.save)
    log(f"trained in {seconds:.1f} s; saved {args.save}")
    return 0


#: ``stlnmf batch`` arguments that are the cohort's own, not options of each slide's run.
_BATCH_OWN = {
    "command",
    "manifest",
    "reference",
    "label_key",
    "model",
    "out",
    "scheduler",
    "workers",
    "force",
    "quiet",
    "debug",
}


def _cmd_batch(args, log: _Log) -> int:
    from .cohort import run_cohort

    _check_device(args.device)
    options = {k: v for k, v in vars(args).items() if k not in _BATCH_OWN}
    result = run_cohort(
        args.manifest,
        args.out,
        reference=args.reference,
        label_key=args.label_key,
        model=args.model,
        options=options,
        scheduler=args.scheduler,
        n_workers=args.workers,
        force=args.force,
        progress=not args.quiet,
        log=log,
    )
    st = result.summary["status"]
    log(
        f"{st['done']} done, {st['skipped']} skipped, {st['failed']} failed"
        + (f", {st['not_run']} not run" if st["not_run"] else "")
        + f"; wrote {result.out}/cohort_region_means.csv and run.json"
    )
    if result.interrupted:
        print("stlnmf: interrupted; finished slides are kept, rerun to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    for s in result.failed:
        print(f"stlnmf: slide {s.name} failed: {s.error}", file=sys.stderr)
    return EXIT_SOME_FAILED if result.failed else 0


def _cmd_info(args, log: _Log) -> int:
    from ._format import format_parameters
    from .io.model_file import load_model

    model = load_model(args.model)
    cfg = model.net_.config
    lines = [
        f"model       {args.model}",
        f"cell types  {len(model.reference_.cell_types)}: {', '.join(model.reference_.cell_types)}",
        f"genes       {model.reference_.n_genes}: {', '.join(model.reference_.genes[:10])}"
        + (" ..." if model.reference_.n_genes > 10 else ""),
        f"regions     {len(model.regions_)}: {', '.join(map(str, model.regions_))}",
        f"network     {cfg.n_layers} layers, {'tied' if cfg.tied else 'untied'}, data term "
        f"{cfg.data_term}, group {cfg.group}, update {cfg.update}",
        f"trained     {len(model.history_)} epochs"
        + (
            f", best validation RMSE {min(h['val_rmse'] for h in model.history_):.4f}"
            if model.history_
            else ""
        ),
        "learned     " + format_parameters(model),
    ]
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stlnmf`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    log = _Log(getattr(args, "quiet", False))
    commands = {
        "deconvolve": _cmd_deconvolve,
        "train": _cmd_train,
        "batch": _cmd_batch,
        "info": _cmd_info,
    }

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"stlnmf: warning: {message}", file=sys.stderr, flush=True)

    old = warnings.showwarning
    warnings.showwarning = show_warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support.*")
            return commands[args.command](args, log)
    except InputError as e:  # the user's input: ModelFileError, NotEnoughMemoryError too
        if debug:
            traceback.print_exc()
        print(f"stlnmf: error: {one_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("stlnmf: interrupted; no partial output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # anything else is a bug: one line unless --debug
        if debug:
            traceback.print_exc()
        print(
            f"stlnmf: internal error: {type(e).__name__}: {one_line(e)} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        warnings.showwarning = old


if __name__ == "__main__":
    sys.exit(main())
