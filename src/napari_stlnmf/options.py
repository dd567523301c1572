"""The estimators, choices and user-settable options of a run, defined once for the CLI,
the napari widget and :mod:`napari_stlnmf.pipeline`.

- :data:`ESTIMATORS` names the estimators a run can use (``--method``, ``pipeline.train``);
  :func:`make_estimator` builds one, passing the run's seed and device to those that take
  them.
- :data:`FRACTIONS`, :data:`GENE_WEIGHTS`, :data:`DATA_TERMS` and :data:`DEVICES` are the
  allowed values the CLI offers as choices (the estimator checks its own settings).
- :class:`RunOptions` holds the STL NMF settings a user can change: the CLI fills one from
  its flags, the widget from its form, and both hand the estimator the same keys.

Nothing here touches Qt or napari.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass

from .core import NNLS, STLNMF, PlainKL
from .core.estimator import GENE_WEIGHTS
from .core.network import DATA_TERMS
from .io.errors import InputError

__all__ = [
    "ESTIMATORS",
    "METHODS",
    "FRACTIONS",
    "GENE_WEIGHTS",
    "DATA_TERMS",
    "DEVICES",
    "MARKERS_PER_TYPE",
    "GENE_SELECTIONS",
    "GENE_CHOICES",
    "RunOptions",
    "make_estimator",
    "uses_device",
]

#: Estimators by method name (``--method``; the first is the default).
ESTIMATORS: dict[str, type] = {"stlnmf": STLNMF, "plainkl": PlainKL, "nnls": NNLS}
METHODS = tuple(ESTIMATORS)
#: What the proportions are: fractions of cells (library-size corrected) or of mRNA.
FRACTIONS = ("cells", "mrna")
#: Device names a user can choose (``cuda`` only where torch sees a GPU).
DEVICES = ("auto", "cpu", "cuda")
#: Marker genes kept per cell type, chosen with benchmarks/bench_accuracy.py: 300 per type
#: improved seqFISH+ with the full reference (0.084 vs 0.088) but not with the honest
#: leave-one-FOV-out reference (0.101 vs 0.0996); panels of a few hundred genes keep all.
MARKERS_PER_TYPE = 100
#: ``--genes`` / the widget's "genes" choice, and the ``markers`` argument of
#: :func:`napari_stlnmf.pipeline.prepare` each one gives.
GENE_SELECTIONS = {"auto": "auto", "markers": True, "all": False}
GENE_CHOICES = tuple(GENE_SELECTIONS)


def _parameters(method: str) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(ESTIMATORS[method]).parameters)


def _stlnmf_default(name: str):
    return _parameters("stlnmf")[name].default


@dataclass
class RunOptions:
    """The STL NMF settings a user can change, from the CLI (flags) or the widget (form).

    Defaults are :class:`~napari_stlnmf.core.estimator.STLNMF`'s own, so options left at
    their default train the same model as an estimator built without them.
    """

    epochs: int = _stlnmf_default("epochs")
    n_layers: int = _stlnmf_default("n_layers")
    warm_start: int = _stlnmf_default("warm_start")
    gene_weights: str = _stlnmf_default("gene_weights")
    data_term: str = _stlnmf_default("data_term")
    tied: bool = _stlnmf_default("tied")
    lr: float = _stlnmf_default("lr")
    n_train_slides: int = _stlnmf_default("n_train_slides")
    #: simulated slides the 90 % intervals are calibrated on (0: no intervals)
    interval_slides: int = _stlnmf_default("interval_slides")

    def estimator_options(self, method: str = "stlnmf") -> dict:
        """The options the estimator of ``method`` takes, as keyword arguments (all of them
        for ``stlnmf``; none for the baselines, which have nothing to train)."""
        accepted = _parameters(_checked_method(method))
        return {k: v for k, v in asdict(self).items() if k in accepted}


def _checked_method(method: str) -> str:
    if method not in ESTIMATORS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def uses_device(method: str) -> bool:
    """Whether the estimator of ``method`` computes with torch on a chosen device (NNLS runs
    on the CPU with scipy)."""
    return "device" in _parameters(_checked_method(method))


def make_estimator(
    method: str = "stlnmf",
    *,
    seed: int = 0,
    device: str = "auto",
    options: RunOptions | dict | None = None,
):
    """An unfitted estimator of ``method`` (a key of :data:`ESTIMATORS`).

    ``seed`` and ``device`` go to the estimators that take them (``random_state``,
    ``device``); ``options`` are passed as keyword arguments (a :class:`RunOptions` gives
    those the estimator takes). Raises InputError for an unknown method.
    """
    params = _parameters(_checked_method(method))
    if isinstance(options, RunOptions):
        options = options.estimator_options(method)
    run = {"random_state": seed, "device": device}
    kwargs = {k: v for k, v in run.items() if k in params}
    return ESTIMATORS[method](**kwargs, **dict(options or {}))
