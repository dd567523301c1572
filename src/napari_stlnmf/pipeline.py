"""One deconvolution run on real data, shared by the CLI, the napari widget and scripts.

Flow: a slide (AnnData in the form of :mod:`napari_stlnmf.io.visium`) and a reference
(:class:`~napari_stlnmf.io.reference.ReferenceSource`) -> gene matching -> marker genes ->
STL NMF trained on slides simulated from the reference on this slide's geometry and
regions -> proportions table + run metadata. Nothing here touches Qt or napari.
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import _fallback
from ._fallback import DeviceFallbackWarning, NotEnoughMemoryError
from .core import STLNMF, ZeroCountSpotsWarning
from .core import device as _device
from .core.markers import CPU_NONZERO_BUDGET, select_genes_for_depth, select_markers
from .core.reference import Reference
from .core.validation import check_coords, check_regions
from .io.errors import InputError
from .io.export import proportions_table, region_means
from .io.genes import GeneMatch, match_genes
from .io.reference import ReferenceSource
from .options import FRACTIONS, MARKERS_PER_TYPE, METHODS, RunOptions, make_estimator, uses_device
from .training_report import summarise_history, training_outcome

__all__ = [
    "Prepared",
    "DeconvolutionResult",
    "DeviceFallbackWarning",
    "NotEnoughMemoryError",
    "prepare",
    "train",
    "deconvolve",
    "mrna_fractions",
    "versions",
    "METHODS",
    "FRACTIONS",
    "MARKERS_PER_TYPE",
]


@dataclass
class Prepared:
    """A slide and a reference brought onto the same genes.

    Attributes
    ----------
    X : CSR (n_spots, n_genes) raw counts on the used genes, in ``reference.genes`` order
    reference : Reference
        The engine's reference on the used genes.
    coords : ndarray (n_spots, 2)
        Full-resolution (x, y) pixels.
    regions : ndarray (n_spots,)
    barcodes : list of str
    info : dict
        Gene overlap, marker selection and reference summary, for ``run.json``.
    """

    X: sp.csr_matrix
    reference: Reference
    coords: np.ndarray
    regions: np.ndarray
    barcodes: list[str]
    info: dict = field(default_factory=dict)

    @property
    def library_sizes(self) -> np.ndarray:
        """Mean counts per cell of each type over all reference genes (n_types,), from
        the reference (:attr:`Reference.library_sizes`)."""
        return self.reference.library_sizes


@dataclass
class DeconvolutionResult:
    """Proportions of one run and what produced them.

    Attributes
    ----------
    table : DataFrame
        barcode, x, y, region, then one column per cell type (``fractions`` kind).
    cell_types : list of str
    fractions : {"cells", "mrna"}
        Fractions of cells (library-size corrected) or of mRNA.
    cell_fractions : ndarray (n_spots, n_types)
    region_means : DataFrame
    metadata : dict
        Everything ``run.json`` holds.
    model : estimator
    lower, upper : ndarray (n_spots, n_types) or None
        The calibrated 90 % interval of each proportion (the ``fractions`` kind), from a
        model with an interval calibration (STL NMF); None otherwise.
    """

    table: pd.DataFrame
    cell_types: list[str]
    fractions: str
    cell_fractions: np.ndarray
    region_means: pd.DataFrame
    metadata: dict
    model: object
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None

    def interval_table(self, which: str) -> pd.DataFrame:
        """The proportions table with the ``"lower"`` or ``"upper"`` bounds in the type
        columns (``proportions_q05.csv`` / ``proportions_q95.csv``)."""
        bound = self.lower if which == "lower" else self.upper
        if bound is None:
            raise ValueError("this result has no intervals")
        out = self.table.copy()
        out[self.cell_types] = bound
        return out

    @property
    def proportions(self) -> pd.DataFrame:
        """Spots x types (index = barcodes)."""
        return self.table.set_index("barcode")[self.cell_types]


def mrna_bounds(
    cell_fractions: np.ndarray, bound: np.ndarray, library_sizes: np.ndarray
) -> np.ndarray:
    """A bound of each cell fraction as a bound of the mRNA fraction: type t's mRNA fraction
    with t at its bound and the other types at their estimates (monotone in t's share)."""
    w = np.asarray(cell_fractions, dtype=np.float64) * np.asarray(library_sizes)[None, :]
    rest = w.sum(1, keepdims=True) - w
    b = np.asarray(bound, dtype=np.float64) * np.asarray(library_sizes)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(b > 0, b / (b + rest), 0.0)
    out[~np.isfinite(w).all(1)] = np.nan
    return out


def mrna_fractions(cell_fractions: np.ndarray, library_sizes: np.ndarray) -> np.ndarray:
    """mRNA fractions from cell fractions: ``n_t l_t / sum_u n_u l_u`` (NaN rows stay)."""
    w = np.asarray(cell_fractions, dtype=np.float64) * np.asarray(library_sizes)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return w / w.sum(1, keepdims=True)


def _spot_regions(regions, adata) -> np.ndarray:
    m = adata.n_obs
    if regions is None:
        return np.zeros(m, dtype=np.int64)
    if isinstance(regions, pd.Series) and not isinstance(regions.index, pd.RangeIndex):
        missing = [b for b in adata.obs_names if b not in regions.index]
        if missing:
            raise InputError(
                f"regions miss {len(missing)} of {m} spots (e.g. {', '.join(missing[:3])})"
            )
        return regions.loc[list(adata.obs_names)].to_numpy()
    r = np.asarray(regions)
    if r.shape != (m,):
        raise InputError(f"regions must have one value per spot ({m}), got shape {r.shape}")
    return r


def _coords(adata) -> np.ndarray:
    if "spatial" not in adata.obsm:
        raise InputError("the slide has no spot coordinates (obsm['spatial'])")
    c = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    if c.ndim != 2 or c.shape[1] < 2:
        raise InputError(f"obsm['spatial'] must be (n_spots, 2), got shape {c.shape}")
    return c[:, :2]


def _check_engine_inputs(coords: np.ndarray, regions: np.ndarray) -> None:
    """The engine's own checks of the spots (finite, distinct positions; one region each),
    done here so that a slide the engine would refuse is the user's InputError."""
    try:
        check_coords(coords, len(coords))
        check_regions(regions, len(coords))
    except ValueError as e:
        raise InputError(str(e)) from None


def prepare(
    adata,
    reference: ReferenceSource | None = None,
    *,
    regions=None,
    model: STLNMF | None = None,
    markers: bool | str = "auto",
    n_markers: int = MARKERS_PER_TYPE,
    spatial_name: str = "the slide",
    device: str = "auto",
) -> Prepared:
    """Match genes, select markers and build the engine's inputs.

    Parameters
    ----------
    adata : AnnData
        The slide (counts in ``X``, ``obsm["spatial"]``).
    reference : ReferenceSource, optional
        Needed unless ``model`` is given.
    regions : array (n_spots,) or Series indexed by barcode, optional
    model : STLNMF, optional
        A fitted model: its genes and signatures are used (all its genes must be on the
        slide); a reference, when also given, must have the same cell types.
    markers : {"auto", True, False}, default "auto"
        ``True`` keeps only marker genes (:func:`~napari_stlnmf.core.markers.select_markers`),
        ``False`` every shared gene; ``"auto"`` keeps markers on deep spots and more genes,
        up to all, on shallow ones
        (:func:`~napari_stlnmf.core.markers.select_genes_for_depth`).
    n_markers : int, default :data:`MARKERS_PER_TYPE` (100)
        Markers per cell type.
    spatial_name : str
        The slide's file name, for messages.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where the fit will run: on the CPU, ``markers="auto"`` keeps the genes within
        :data:`~napari_stlnmf.core.markers.CPU_NONZERO_BUDGET` nonzero counts (a
        650,000-bin Visium HD slide on all genes is ~10x the work of a minute).
    """
    if reference is None and model is None:
        raise InputError("give a reference (or a trained model)")
    coords = _coords(adata)
    region_values = _spot_regions(regions, adata)
    _check_engine_inputs(coords, region_values)
    info: dict = {}
    if model is not None:
        ref = model.reference_
        if reference is not None and list(reference.cell_types) != list(ref.cell_types):
            only_m = sorted(set(ref.cell_types) - set(reference.cell_types))
            only_r = sorted(set(reference.cell_types) - set(ref.cell_types))
            raise InputError(
                f"reference {reference.path}: its cell types differ from the model's "
                f"(only in the model: {only_m[:5]}, only in the reference: {only_r[:5]}"
                + (", or another order" if not only_m and not only_r else "")
                + "); drop --reference or train a model with this reference"
            )
        match = match_genes(
            adata.var,
            pd.DataFrame(index=ref.genes),
            spatial_name=spatial_name,
            reference_name="the model",
            min_shared=0,  # none shared: still the "lacks N of the model's genes" message
            min_fraction=0.0,
        )
        if match.n_shared < ref.n_genes:
            have = {g.upper() for g in match.genes}
            missing = [g for g in ref.genes if g.upper() not in have]
            raise InputError(
                f"{spatial_name} lacks {len(missing)} of the model's {ref.n_genes} genes "
                f"(e.g. {', '.join(missing[:5])}): train a model on this slide's genes"
            )
        x = _columns(adata.X, match.spatial_index)
        info["genes"] = _gene_info(match, ref.genes, markers=False)
        return Prepared(x, ref, coords, region_values, list(adata.obs_names), info)

    match = match_genes(
        adata.var,
        reference.var,
        spatial_name=spatial_name,
        reference_name=str(reference.path),
    )
    s_idx, r_idx = match.spatial_index, match.reference_index
    genes = list(match.genes)
    x = None
    if markers == "auto":
        # the shared genes' counts, sliced once: the choice reads them, the fit keeps a part
        x = _columns(adata.X, s_idx)
        budget = CPU_NONZERO_BUDGET if _device.resolve_device(device).type == "cpu" else None
        keep = select_genes_for_depth(
            reference.profiles[r_idx], x, n_per_type=n_markers, max_nonzeros=budget
        )
    elif markers:
        keep = select_markers(reference.profiles[r_idx], n_per_type=n_markers)
    else:
        keep = np.arange(len(genes))
    selected = keep.size < len(genes)
    if x is None:
        x = _columns(adata.X, s_idx[keep])
    elif selected:
        x = x[:, keep].tocsr()
    s_idx, r_idx, genes = s_idx[keep], r_idx[keep], [genes[i] for i in keep]
    ref = reference.to_reference(r_idx, genes)
    info["genes"] = _gene_info(
        match, genes, markers=selected, n_markers=n_markers if markers is True else 0
    )
    info["genes"]["selection"] = "auto" if markers == "auto" else ("markers" if markers else "all")
    info["reference"] = reference.summary()
    return Prepared(x, ref, coords, region_values, list(adata.obs_names), info)


def _columns(X, idx: np.ndarray) -> sp.csr_matrix:
    x = sp.csr_matrix(X) if not sp.issparse(X) else X.tocsr()
    return x[:, idx].tocsr()


def _gene_info(match: GeneMatch, used: list[str], markers: bool, n_markers: int = 0) -> dict:
    out = {"overlap": match.to_dict(), "markers": markers, "n_used": len(used), "used": used}
    if markers and n_markers:
        out["markers_per_type"] = n_markers
    return out


def train(
    prepared: Prepared,
    *,
    method: str = "stlnmf",
    seed: int = 0,
    device: str = "auto",
    options: RunOptions | dict | None = None,
    callback: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
):
    """Fit an estimator on slides simulated from the reference on this slide's geometry.

    ``method`` is a key of :data:`~napari_stlnmf.options.ESTIMATORS`; ``options`` go to the
    estimator (a :class:`~napari_stlnmf.options.RunOptions`, or a dict such as
    ``{"epochs": 5, "n_layers": 20}``). Returns the fitted estimator; its reference carries
    the library sizes (``model.reference_.library_sizes``) for mRNA fractions and saving.

    When the GPU runs out of memory, the cache is freed, a :class:`DeviceFallbackWarning`
    is issued and training starts again on the CPU with the same seed (so the result is
    that of a CPU run). When the CPU runs out of memory too, :class:`NotEnoughMemoryError`
    says what to reduce.
    """

    def fit(on_cpu: bool):
        est = make_estimator(method, seed=seed, device="cpu" if on_cpu else device, options=options)
        return est.fit(
            prepared.reference,
            prepared.coords,
            prepared.regions,
            X=prepared.X,
            callback=callback,
            should_stop=should_stop,
        )

    return _fallback.with_cpu_fallback(
        fit,
        on_gpu=uses_device(method) and _device.resolve_device(device).type != "cpu",
        shape=prepared.X.shape,
        what="train on",
        message=lambda reason: (
            f"the GPU ran out of memory while training ({reason}); training again on the "
            f"CPU with the same seed ({seed})"
        ),
        stacklevel=3,
    )


def deconvolve(
    prepared: Prepared,
    model,
    *,
    fractions: str = "cells",
    extra_metadata: dict | None = None,
    timings: dict | None = None,
) -> DeconvolutionResult:
    """Proportions of every spot with a fitted model (see :func:`train`).

    Parameters
    ----------
    prepared : Prepared
    model : fitted STLNMF, PlainKL or NNLS
    fractions : {"cells", "mrna"}, default "cells"
        Cell-type fractions of cells (the engine's amounts are cells, because signatures
        are mean counts per cell) or of mRNA (cells weighted by each type's library size).
    extra_metadata, timings : dict, optional
        Merged into the result's metadata.
    """
    if fractions not in FRACTIONS:
        raise InputError(f"fractions must be one of {FRACTIONS}, got {fractions!r}")
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ZeroCountSpotsWarning)
        cells, lower, upper = _transform(prepared, model)
    zero = [w for w in caught if issubclass(w.category, ZeroCountSpotsWarning)]
    for w in caught:
        if w not in zero:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    n_nan = int((~np.isfinite(cells).all(1)).sum())
    if zero:
        warnings.warn(
            f"{n_nan} of {len(cells)} spots have no counts on the {prepared.X.shape[1]} genes "
            "used; their proportions are NaN (kept in every output)",
            ZeroCountSpotsWarning,
            stacklevel=2,
        )
    seconds = time.perf_counter() - t0
    types = list(prepared.reference.cell_types)
    out = cells if fractions == "cells" else mrna_fractions(cells, prepared.library_sizes)
    if lower is not None and fractions == "mrna":
        lower = mrna_bounds(cells, lower, prepared.library_sizes)
        upper = mrna_bounds(cells, upper, prepared.library_sizes)
    table = proportions_table(prepared.barcodes, prepared.coords, prepared.regions, out, types)
    means = region_means(table, types)
    meta = {
        "fractions": fractions,
        "fractions_meaning": (
            "fraction of cells of each type (mRNA fractions corrected by per-type library size)"
            if fractions == "cells"
            else "fraction of the spot's mRNA from each type (not corrected for library size)"
        ),
        "cell_types": types,
        "n_spots": len(prepared.barcodes),
        "n_spots_nan": n_nan,
        "library_sizes": [float(v) for v in prepared.library_sizes],
        **prepared.info,
        "model": _model_info(model),
        "timings": {**(timings or {}), "deconvolve_seconds": round(seconds, 3)},
        "versions": versions(),
    }
    if lower is not None:
        meta["uncertainty"] = interval_summary(model, lower, upper, types)
    meta.update(extra_metadata or {})
    return DeconvolutionResult(table, types, fractions, cells, means, meta, model, lower, upper)


def interval_summary(model, lower: np.ndarray, upper: np.ndarray, types: list[str]) -> dict:
    """run.json's ``uncertainty``: what the intervals are and how wide they came out."""
    width = upper - lower
    ok = np.isfinite(width).all(1)
    per_type = width[ok].mean(0) if ok.any() else np.full(len(types), np.nan)
    return {
        "level": model.intervals_.level,
        "method": (
            "per-type quantiles of (truth - estimate) by depth and estimate, calibrated after "
            "training on simulated slides of this geometry whose spots come from reference "
            "cells held out of the signatures (core/uncertainty.py)"
        ),
        "files": ["proportions_q05.csv", "proportions_q95.csv"],
        "mean_width": float(width[ok].mean()) if ok.any() else None,
        "mean_width_per_type": {t: float(w) for t, w in zip(types, per_type)},
    }


def _transform(prepared: Prepared, model) -> tuple:
    """``model``'s cell fractions and, when it has an interval calibration, their lower
    and upper bounds (else None, None); on GPU out-of-memory, the model moves to the CPU
    (it stays there) and the spots are deconvolved again, with a
    :class:`DeviceFallbackWarning`."""

    def run(on_cpu):
        args = (prepared.X, prepared.coords, prepared.regions)
        if getattr(model, "intervals_", None) is not None:
            return model.transform_intervals(*args)
        return model.transform(*args), None, None

    return _fallback.with_cpu_fallback(
        run,
        on_gpu=_fallback.model_device(model).type != "cpu",
        shape=prepared.X.shape,
        what="deconvolve",
        message=lambda reason: (
            f"the GPU ran out of memory while deconvolving {prepared.X.shape[0]} spots "
            f"({reason}); deconvolving again on the CPU (the model now stays on the CPU)"
        ),
        to_cpu=lambda: _fallback.to_cpu(model),
        stacklevel=4,
    )


def _model_info(model) -> dict:
    """The model's part of run.json: its class; for a trained network also its settings,
    where it ran, its learned parameters and its training summary."""
    info = {"method": type(model).__name__}
    if getattr(model, "net_", None) is not None:
        info.update(model.get_params())
        info["device"] = str(next(model.net_.parameters()).device)
        info["learned"] = model.learned_parameters()
        info["epochs_run"] = len(model.history_)
        if model.history_:
            info["best_val_rmse"] = float(min(h.get("val_rmse", np.inf) for h in model.history_))
        summary = summarise_history(model.history_, int(model.epochs))
        if summary is not None:
            # whether the learned network beat the untrained one on the simulated
            # validation slides, said plainly (the GUI shows the same sentence)
            info["training_improved"] = bool(summary.improved)
        info["training_outcome"] = training_outcome(model)
    return info


def versions() -> dict:
    """Versions of the package and of the libraries that shape the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    import scipy
    import torch

    from . import __version__

    try:
        anndata_version = version("anndata")
    except PackageNotFoundError:
        anndata_version = "not installed"
    return {
        "napari_stlnmf": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": str(torch.__version__),
        "anndata": anndata_version,
    }
