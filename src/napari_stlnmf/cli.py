"""``stlnmf``: STL NMF deconvolution of spatial transcriptomics from the shell.

Parses arguments, calls :mod:`napari_stlnmf.io` and :mod:`napari_stlnmf.pipeline`, prints
progress on stderr. Bad input exits with code 2 and one line; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
import warnings
from pathlib import Path

from .core.estimator import DEFAULT_EPOCHS, DEFAULT_LAYERS, DEFAULT_WARM_START
from .pipeline import MARKERS_PER_TYPE

__all__ = ["main", "build_parser"]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130

_DESCRIPTION = """\
Find where cell types sit in a tissue: deconvolve spatial transcriptomics spots (10x Visium
and the like) against a single-cell reference with STL NMF, a spatially regularised NMF
unrolled into a small network whose parameters are learned on slides simulated from the
reference on this slide's own spot layout and regions. Runs on CPU by default, on a CUDA GPU
when one is present (--device auto).
"""

_EPILOG = """\
inputs
  --spatial PATH   a Space Ranger outs/ folder (filtered_feature_bc_matrix.h5 or its MTX
                   folder, spatial/tissue_positions*.csv, scalefactors_json.json, images),
                   an .h5ad with obsm["spatial"], or a counts table (.csv/.tsv, spots x genes
                   or genes x spots, detected) with --coords (barcode,x,y).
  --reference PATH a single-cell .h5ad with raw counts and a cell-type column (--label-key),
                   a 10x MTX folder with --labels CSV, or a signature table .csv/.tsv (genes
                   in rows, one column of mean counts per cell for each type; an optional
                   row "library_size").
  --regions PATH   a CSV (barcode,region) or a label image (.tif/.png) painted on the
                   slide's hires, lowres or full-resolution image (told apart by its shape);
                   each spot takes the label under its centre (0 = unassigned).
  --sample NAME    a bundled sample instead of --spatial/--reference: mouse_brain (real
                   CytAssist H&E and spot layout, counts composed from real cells, with
                   ground truth) or hippocampus (real Visium slide and scRNA reference).

outputs (deconvolve, in --out DIR; written atomically, all or none)
  proportions.csv  barcode, x, y (full-resolution pixels), region, one column per type
  region_means.csv mean proportion of each type per region, with the number of spots
  result.h5ad      the slide with obsm["stlnmf_proportions"], obs["stlnmf_dominant_type"]
                   and the run's parameters, genes and versions in uns["stlnmf"]
  run.json         parameters, gene overlap, genes used, timings, versions, seed
  proportions.png  one map per cell type
  Proportions are fractions of cells (--fractions cells, the default: library-size
  corrected) or of mRNA (--fractions mrna); run.json and result.h5ad say which.
  Spots with no counts on the genes used get empty (NaN) rows and a warning, never dropped.

examples
  stlnmf deconvolve --sample mouse_brain --out results/
  stlnmf deconvolve --spatial outs/ --reference sc.h5ad --label-key cell_type \\
         --regions regions.tif --out results/
  stlnmf train --spatial outs/ --reference sc.h5ad --save model.safetensors
  stlnmf deconvolve --spatial outs/ --model model.safetensors --out results/
  stlnmf info model.safetensors

exit codes: 0 success, 2 bad input (one line on stderr), 1 internal error, 130 interrupted.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage stays in --help)."""

    def error(self, message):  # noqa: D102
        self.exit(EXIT_BAD_INPUT, f"stlnmf: error: {message} (see {self.prog} --help)\n")


def _int_at_least(low: int):
    """argparse type: an int >= ``low`` (a bad value is a one-line usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _add_inputs(p: argparse.ArgumentParser, need_reference: bool) -> None:
    g = p.add_argument_group("slide and reference")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--spatial", metavar="PATH", help="slide: outs/ folder, .h5ad or table")
    src.add_argument("--sample", metavar="NAME", help="a bundled sample (see below)")
    g.add_argument("--coords", metavar="CSV", help="spot coordinates for a counts table")
    g.add_argument(
        "--fullres-image", metavar="TIFF", help="full-resolution image of an outs/ folder"
    )
    g.add_argument(
        "--reference",
        metavar="PATH",
        help="single-cell .h5ad, MTX folder or signature table"
        + ("" if need_reference else " (optional with --model)"),
    )
    g.add_argument("--label-key", metavar="KEY", help="cell-type column of the reference")
    g.add_argument("--labels", metavar="CSV", help="cell labels for an MTX reference")
    g.add_argument(
        "--min-cells",
        type=_int_at_least(0),
        default=5,
        metavar="N",
        help="leave out (and report) types with fewer cells (default 5)",
    )
    g.add_argument("--regions", metavar="PATH", help="regions: CSV barcode,region or label image")
    m = p.add_argument_group("method")
    m.add_argument(
        "--method",
        choices=("stlnmf", "plainkl", "nnls"),
        default="stlnmf",
        help="stlnmf (default), or the baselines plainkl / nnls",
    )
    m.add_argument(
        "--all-genes",
        action="store_true",
        help="use every shared gene instead of marker genes",
    )
    m.add_argument(
        "--markers-per-type",
        type=_int_at_least(1),
        default=MARKERS_PER_TYPE,
        metavar="N",
        help=f"marker genes per cell type (default {MARKERS_PER_TYPE})",
    )
    m.add_argument(
        "--epochs",
        type=_int_at_least(0),
        default=DEFAULT_EPOCHS,
        metavar="N",
        help=f"training epochs ({DEFAULT_EPOCHS})",
    )
    m.add_argument(
        "--layers",
        type=_int_at_least(1),
        default=DEFAULT_LAYERS,
        metavar="N",
        help=f"unrolled layers ({DEFAULT_LAYERS})",
    )
    m.add_argument(
        "--warm-start",
        type=_int_at_least(0),
        default=DEFAULT_WARM_START,
        metavar="N",
        help=f"plain updates before the learned layers ({DEFAULT_WARM_START})",
    )
    m.add_argument(
        "--gene-weights",
        choices=("fano", "none"),
        default="fano",
        help="weight genes of the KL term by 1/(within-type Fano factor) from the "
        "reference cells (default), or not",
    )
    m.add_argument(
        "--data-term",
        choices=("kl", "frobenius"),
        default="kl",
        help="Poisson/KL on raw counts (default) or the paper's Frobenius",
    )
    m.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    m.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default 0)")
    o = p.add_argument_group("output")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    o.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    """The ``stlnmf`` argument parser."""
    parser = _Parser(
        prog="stlnmf",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"napari-stlnmf {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    d = sub.add_parser(
        "deconvolve",
        help="train on simulated slides (unless --model) and write proportions",
        description="Deconvolve a slide: " + _DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_inputs(d, need_reference=False)
    d.add_argument("--model", metavar="MODEL", help="a trained model (skips training)")
    d.add_argument(
        "--fractions",
        choices=("cells", "mrna"),
        default="cells",
        help="fractions of cells (default) or of mRNA",
    )
    d.add_argument("--out", metavar="DIR", required=True, help="output folder (created)")
    d.add_argument("--save-model", metavar="MODEL", help="also save the trained model")
    d.add_argument("--no-figure", action="store_true", help="skip proportions.png")

    t = sub.add_parser(
        "train",
        help="train STL NMF on slides simulated for this slide and save the model",
        description="Train a model for a slide (simulated training data only) and save it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_inputs(t, need_reference=True)
    t.add_argument("--save", metavar="MODEL", required=True, help="model file (.safetensors)")

    i = sub.add_parser("info", help="describe a saved model", description="Describe a model.")
    i.add_argument("model", metavar="MODEL")
    i.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


# --------------------------------------------------------------------------------------
class _Log:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def _load_inputs(args, log: _Log, need_reference: bool):
    """(slide AnnData, ReferenceSource or None, regions or None, slide name, sample)."""
    from .io.errors import InputError
    from .io.reference import read_reference, reference_from_anndata

    sample = None
    if args.sample:
        from .io.samples import load_sample

        if args.reference:
            raise InputError("--sample brings its own reference: drop --reference")
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
        adata = read_spatial(args.spatial, coords=args.coords, **kw)
        name = str(args.spatial)
        reference, regions = None, None
        if args.reference:
            log(f"reading reference {args.reference}")
            reference = read_reference(
                args.reference, args.label_key, labels=args.labels, min_cells=args.min_cells
            )
        elif need_reference:
            raise InputError("--reference is required (or --model for deconvolve)")
    if args.regions:
        from .io.regions import read_regions

        regions = read_regions(args.regions, adata)
    log(f"slide: {adata.n_obs} spots x {adata.n_vars} genes")
    return adata, reference, regions, name, sample


def _prepare(args, adata, reference, regions, name, model, log):
    from .pipeline import prepare

    prep = prepare(
        adata,
        reference,
        regions=regions,
        model=model,
        markers=not args.all_genes,
        n_markers=args.markers_per_type,
        spatial_name=name,
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

    options = {}
    if args.method == "stlnmf":
        options = {
            "epochs": args.epochs,
            "n_layers": args.layers,
            "warm_start": args.warm_start,
            "gene_weights": args.gene_weights,
            "data_term": args.data_term,
        }
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


def _cmd_deconvolve(args, log: _Log) -> int:
    from .io.export import (
        write_json,
        write_proportions_csv,
        write_region_means_csv,
        write_result_h5ad,
    )
    from .pipeline import deconvolve

    _check_device(args.device)
    out = Path(args.out)
    _check_out_folder(out)
    if args.save_model and not args.model:
        _check_save_path("--save-model", args.save_model)
    t_start = time.perf_counter()
    model = None
    if args.model:
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
            from .io.model_file import save_model

            save_model(model, args.save_model)
            log(f"saved model {args.save_model}")
    log("deconvolving")
    params = {k: v for k, v in vars(args).items() if k not in ("quiet", "debug")}
    result = deconvolve(
        prep,
        model,
        fractions=args.fractions,
        timings={"read_seconds": round(t_read, 3), "train_seconds": round(train_s, 3)},
        extra_metadata={"command": "deconvolve", "arguments": params, "seed": args.seed},
    )
    if sample is not None and sample.truth is not None:
        result.metadata["truth_metrics"] = _truth_metrics(result, sample.truth)
        log("against the sample's ground truth: " + _fmt_metrics(result.metadata["truth_metrics"]))
    from .io.atomic import atomic_batch
    from .io.errors import InputError
    from .io.figures import write_proportion_maps

    out.mkdir(parents=True, exist_ok=True)
    # all outputs or none: a failure (full disk, Ctrl-C) leaves the previous files intact
    try:
        with atomic_batch():
            write_proportions_csv(out / "proportions.csv", result.table)
            write_region_means_csv(out / "region_means.csv", result.region_means)
            write_result_h5ad(
                out / "result.h5ad", adata, result.table, result.cell_types, result.metadata
            )
            if not args.no_figure:
                write_proportion_maps(out / "proportions.png", result.table, result.cell_types)
            result.metadata["timings"]["total_seconds"] = round(time.perf_counter() - t_start, 3)
            write_json(out / "run.json", result.metadata)
    except OSError as e:
        reason = e.strerror or _one_line(e)
        raise InputError(
            f"could not write the outputs in {out}: {reason}; the files already there are unchanged"
        ) from e
    log(f"wrote {out}/proportions.csv, region_means.csv, result.h5ad, run.json")
    return 0


def _check_out_folder(out: Path) -> None:
    """--out must be a folder or creatable as one: fail before any work, not after it."""
    from .io.errors import InputError

    if out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out} exists and is not a folder")
        return
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is a file, not a folder")


def _check_save_path(option: str, path: str) -> None:
    """A model file to write: its folder must exist and it must not be a folder."""
    from .io.errors import InputError

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {p} is a folder; give a file name such as model.safetensors")
    if not p.parent.is_dir():
        raise InputError(f"{option} {p}: the folder {p.parent} does not exist")


def _check_device(device: str) -> None:
    """Fail before reading anything when the asked-for device is missing."""
    from .core.device import resolve_device

    resolve_device(device)


def _truth_metrics(result, truth) -> dict:
    import numpy as np

    from .core.metrics import score

    types = [t for t in result.cell_types if t in truth.columns]
    pred = result.proportions.loc[truth.index, types].to_numpy()
    true = truth[types].to_numpy()
    ok = np.isfinite(pred).all(1)
    s = score(pred[ok], true[ok])
    return {k: float(v) for k, v in s.items()}


def _fmt_metrics(m: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in m.items())


def _cmd_train(args, log: _Log) -> int:
    from .io.model_file import save_model

    _check_device(args.device)
    _check_save_path("--save", args.save)
    adata, reference, regions, name, _ = _load_inputs(args, log, need_reference=True)
    if args.method != "stlnmf":
        from .io.errors import InputError

        raise InputError("only --method stlnmf has a model to save")
    prep = _prepare(args, adata, reference, regions, name, None, log)
    model, seconds = _train(args, prep, log)
    save_model(model, args.save)
    log(f"trained in {seconds:.1f} s; saved {args.save}")
    return 0


def _cmd_info(args, log: _Log) -> int:
    import json

    from .io.model_file import load_model
    from .pipeline import rounded

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
        "learned     " + json.dumps(rounded(model.learned_parameters())),
    ]
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stlnmf`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    log = _Log(getattr(args, "quiet", False))
    commands = {"deconvolve": _cmd_deconvolve, "train": _cmd_train, "info": _cmd_info}
    from .io.errors import InputError
    from .io.model_file import ModelFileError

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
    except (InputError, ModelFileError, ValueError, FileNotFoundError, PermissionError) as e:
        if debug:
            traceback.print_exc()
        print(f"stlnmf: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("stlnmf: interrupted; no partial output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # an unexpected failure: one line unless --debug
        if debug:
            traceback.print_exc()
        print(
            f"stlnmf: internal error: {type(e).__name__}: {_one_line(e)} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        warnings.showwarning = old


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
