"""The ``stlnmf`` command line: its argument parser, help text and exit codes.

The commands themselves are in :mod:`napari_stlnmf.cli`. Choices and defaults come from
:mod:`napari_stlnmf.options`, the same ones the widget and :mod:`~napari_stlnmf.pipeline`
use.
"""

from __future__ import annotations

import argparse

from .io.hd_layout import BIN_SIZES
from .options import (
    DATA_TERMS,
    DEVICES,
    FRACTIONS,
    GENE_CHOICES,
    GENE_WEIGHTS,
    MARKERS_PER_TYPE,
    METHODS,
    RunOptions,
)

__all__ = [
    "build_parser",
    "EXIT_BAD_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_SOME_FAILED",
]

#: Defaults of the training options (the estimator's own).
_DEFAULTS = RunOptions()

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
#: ``stlnmf batch``: the cohort ran, but some slides failed (run.json says which and why).
EXIT_SOME_FAILED = 3

#: Visium HD bin folders (io.hd_layout: a plain module, so the parser loads no pandas).
HD_BIN_SIZES = BIN_SIZES

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
                   A Visium HD outs/ folder (binned_outputs/square_*um/ with
                   spatial/tissue_positions.parquet) is read at 8 um bins (--bin-size 2|8|16,
                   or --rebin-um N to sum the 2 um bins into N um squares); its
                   segmented_outputs/ folder reads Space Ranger 4 cells instead.
                   A SpatialData .zarr store: its counts table (square_008um for
                   Visium HD, or --bin-size) and the shapes it annotates; the
                   proportions go back into it as the table stlnmf_proportions,
                   linked to the same shapes (--no-store-table: not).
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
  proportions_q05.csv, proportions_q95.csv
                   the lower and upper bounds of each proportion's 90 % interval, in
                   proportions.csv's layout (also obsm["stlnmf_q05"/"stlnmf_q95"] in
                   result.h5ad and a summary in run.json); calibrated after training on
                   simulated slides (--no-intervals: none)
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


_BATCH_DESCRIPTION = """\
Deconvolve a cohort: every slide of a manifest against one model, one Dask distributed task
per slide, on a local cluster of worker processes or on a running scheduler (SLURM through
dask-jobqueue, Kubernetes, dask scheduler + dask worker). The model is trained once, on
simulated slides of the first readable slide (as stlnmf train), unless --model gives one.
Each slide's outputs are exactly those of stlnmf deconvolve --model. Rerunning the command
skips the slides that are complete and redoes the rest.
"""

_BATCH_EPILOG = """\
manifest
  A CSV with a header: path (the slide: anything --spatial reads), optional regions (CSV
  or label image), optional name (the output folder's name; by default from the path),
  optional coords and fullres_image (per-slide --coords / --fullres-image). Relative
  paths are relative to the manifest's folder.

outputs (in --out DIR)
  slides/NAME/               each slide's stlnmf deconvolve outputs (written atomically)
  cohort_region_means.csv    slide, region, n_spots, mean proportion of each type
  run.json                   arguments, model, cluster, each slide's status and error
  model.safetensors          the model, when the cohort trained it (reused on a rerun)

examples
  stlnmf batch cohort.csv --reference sc.h5ad --label-key cell_type --out cohort/
  stlnmf batch cohort.csv --model model.safetensors --out cohort/ --workers 8
  stlnmf batch cohort.csv --model model.safetensors --out /shared/cohort \\
         --scheduler tcp://10.0.0.5:8786

exit codes: 0 every slide done, 3 some slides failed (see run.json), 2 bad input,
1 internal error, 130 interrupted (finished slides are kept).
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
    _add_hd_options(g)
    _add_reference_options(
        g,
        "single-cell .h5ad, MTX folder or signature table"
        + ("" if need_reference else " (optional with --model)"),
    )
    g.add_argument("--regions", metavar="PATH", help="regions: CSV barcode,region or label image")
    m = _add_method_options(p)
    m.add_argument(
        "--method",
        choices=METHODS,
        default=METHODS[0],
        help="stlnmf (default), or the baselines plainkl / nnls",
    )
    _add_output_options(p)


def _add_reference_options(g, help_reference: str) -> None:
    g.add_argument("--reference", metavar="PATH", help=help_reference)
    g.add_argument("--label-key", metavar="KEY", help="cell-type column of the reference")
    g.add_argument("--labels", metavar="CSV", help="cell labels for an MTX reference")
    g.add_argument(
        "--min-cells",
        type=_int_at_least(0),
        default=5,
        metavar="N",
        help="leave out (and report) types with fewer cells (default 5)",
    )


def _add_hd_options(g) -> None:
    hd = g.add_mutually_exclusive_group()
    hd.add_argument(
        "--bin-size",
        type=int,
        choices=HD_BIN_SIZES,
        metavar="UM",
        help="Visium HD: bins of 2, 8 (default) or 16 um",
    )
    hd.add_argument(
        "--rebin-um",
        type=_int_at_least(2),
        metavar="UM",
        help="Visium HD: sum the 2 um bins into squares of UM um (a multiple of 2)",
    )


def _add_method_options(p: argparse.ArgumentParser):
    """The options of the method (genes, training, device, seed); returns their group."""
    m = p.add_argument_group("method")
    m.add_argument(
        "--genes",
        choices=GENE_CHOICES,
        default="auto",
        help="genes the fit uses: auto (default: marker genes on deep spots, more genes up "
        "to all on shallow ones), markers, or all shared genes",
    )
    m.add_argument(
        "--all-genes",
        dest="genes",
        action="store_const",
        const="all",
        help="same as --genes all",
    )
    m.add_argument(
        "--markers-per-type",
        type=_int_at_least(1),
        default=MARKERS_PER_TYPE,
        metavar="N",
        help=f"marker genes per cell type, the starting set of --genes auto "
        f"(default {MARKERS_PER_TYPE})",
    )
    m.add_argument(
        "--epochs",
        type=_int_at_least(0),
        default=_DEFAULTS.epochs,
        metavar="N",
        help=f"training epochs ({_DEFAULTS.epochs})",
    )
    m.add_argument(
        "--layers",
        type=_int_at_least(1),
        default=_DEFAULTS.n_layers,
        metavar="N",
        help=f"unrolled layers ({_DEFAULTS.n_layers})",
    )
    m.add_argument(
        "--warm-start",
        type=_int_at_least(0),
        default=_DEFAULTS.warm_start,
        metavar="N",
        help=f"plain updates before the learned layers ({_DEFAULTS.warm_start})",
    )
    m.add_argument(
        "--gene-weights",
        choices=GENE_WEIGHTS,
        default=_DEFAULTS.gene_weights,
        help="weight genes of the KL term by 1/(within-type Fano factor): auto (default) "
        "takes the reference cells' Fano factor to the slide's depth, fano uses it as it is, "
        "none weights every gene 1",
    )
    m.add_argument(
        "--data-term",
        choices=DATA_TERMS,
        default=_DEFAULTS.data_term,
        help="Poisson/KL on raw counts (default) or the paper's Frobenius",
    )
    m.add_argument(
        "--no-intervals",
        dest="interval_slides",
        action="store_const",
        const=0,
        default=_DEFAULTS.interval_slides,
        help="skip the per-spot 90 %% intervals (proportions_q05/q95.csv; calibrated on "
        "simulated slides after training)",
    )
    m.add_argument("--device", choices=DEVICES, default="auto")
    m.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default 0)")
    return m


def _add_store_table_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-store-table",
        action="store_true",
        help="a SpatialData store as the slide: do not add the stlnmf_proportions table to it",
    )


def _add_output_options(p: argparse.ArgumentParser) -> None:
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
        choices=FRACTIONS,
        default=FRACTIONS[0],
        help="fractions of cells (default) or of mRNA",
    )
    d.add_argument("--out", metavar="DIR", required=True, help="output folder (created)")
    d.add_argument("--save-model", metavar="MODEL", help="also save the trained model")
    d.add_argument("--no-figure", action="store_true", help="skip proportions.png")
    _add_store_table_option(d)

    t = sub.add_parser(
        "train",
        help="train STL NMF on slides simulated for this slide and save the model",
        description="Train a model for a slide (simulated training data only) and save it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_inputs(t, need_reference=True)
    t.add_argument("--save", metavar="MODEL", required=True, help="model file (.safetensors)")

    b = sub.add_parser(
        "batch",
        help="deconvolve a cohort of slides (a manifest) on Dask distributed",
        description=_BATCH_DESCRIPTION,
        epilog=_BATCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument(
        "manifest",
        metavar="MANIFEST",
        help="CSV: path[,regions][,name][,coords][,fullres_image] per slide",
    )
    g = b.add_argument_group("reference and model")
    _add_reference_options(g, "single-cell reference, to train a model")
    g.add_argument("--model", metavar="MODEL", help="a trained model (no training)")
    _add_hd_options(g)
    c = b.add_argument_group("cluster")
    c.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler (tcp://host:8786); default: a local cluster",
    )
    c.add_argument(
        "--workers",
        type=_int_at_least(1),
        metavar="N",
        help="worker processes of the local cluster (default: one per CPU, at most one per slide)",
    )
    c.add_argument(
        "--force",
        action="store_true",
        help="recompute complete slides (and retrain a model this cohort trained)",
    )
    _add_method_options(b)
    b.add_argument(
        "--fractions",
        choices=FRACTIONS,
        default=FRACTIONS[0],
        help="fractions of cells (default) or of mRNA",
    )
    b.add_argument("--out", metavar="DIR", required=True, help="cohort folder (created)")
    b.add_argument("--no-figure", action="store_true", help="skip each slide's proportions.png")
    _add_store_table_option(b)
    _add_output_options(b)

    i = sub.add_parser("info", help="describe a saved model", description="Describe a model.")
    i.add_argument("model", metavar="MODEL")
    i.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser
