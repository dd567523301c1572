"""STL NMF, the estimator: settings, fit (training on simulated slides), transform.

The baselines it is measured against are in :mod:`.baselines`, the shared contract in
:mod:`.base`, the training slides in :mod:`.training_data`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch

from .base import ZeroCountSpotsWarning, _Base, to_jsonable
from .baselines import NNLS, PlainKL
from .data_terms import make_data_term
from .device import cpu_threads, resolve_device, threads_for
from .graph import build_graph, spot_pitch
from .network import DATA_TERMS, GROUPS, INIT_FIELDS, UPDATES, NetConfig, STLNMFNet, is_net_init
from .reference import Reference, depth_adapted_weights
from .simulate import SimulationSettings
from .train import TrainingProgress, train_network
from .training_data import (
    check_prior_shape,
    depth_ratio,
    is_prior_array,
    is_simulation_dict,
    simulation_settings,
    training_slides,
)
from .uncertainty import IntervalCalibration
from .validation import (
    Check,
    Interval,
    Options,
    check_coords,
    check_reference,
    check_regions,
    check_tensors,
    is_device_name,
)

#: Tensors of a saved model's interval calibration (absent in older model files).
INTERVAL_TENSORS = (
    "interval_depth_edges",
    "interval_centres",
    "interval_lower",
    "interval_upper",
    "interval_level",
)


#: Simulated spots the interval calibration wants at least (more slides on small slides).
CALIBRATION_SPOTS = 6000


def _depth(data) -> torch.Tensor:
    """Each spot's depth, as the interval calibration sees it: the (gene-weighted) counts
    of the KL terms, the squared norm of the Frobenius term."""
    totals = getattr(data, "totals", None)
    return totals if totals is not None else data.xx


__all__ = [
    "STLNMF",
    "DEFAULT_EPOCHS",
    "DEFAULT_LAYERS",
    "DEFAULT_WARM_START",
    "GENE_WEIGHTS",
    # re-exported from their new modules until every caller imports them from there
    "PlainKL",
    "NNLS",
    "ZeroCountSpotsWarning",
]

# Shipped defaults, chosen by benchmarks/bench_accuracy.py (docs/benchmarks.md); the CLI
# and the widget read them from here.
DEFAULT_EPOCHS = 20
DEFAULT_LAYERS = 60
DEFAULT_WARM_START = 100

#: Allowed values of the ``gene_weights`` setting.
GENE_WEIGHTS = ("auto", "fano", "none")


class STLNMF(_Base):
    """Spatial transcriptomics learned NMF: an unrolled, spatially regularised NMF.

    The settings are stored as given; :meth:`fit` (and :meth:`transform`, for the ones it
    uses) checks them first against ``_parameter_constraints`` and raises
    :class:`~napari_stlnmf.core.validation.InvalidParameterError` (a ValueError) naming
    the setting. :meth:`get_params` / :meth:`set_params` read and change them.

    Parameters
    ----------
    data_term : {"kl", "frobenius"}, default "kl"
        Poisson/KL on raw counts (default; see ``docs/method.md``) or the paper's squared
        Frobenius on normalised counts.
    gene_weights : {"auto", "fano", "none"}, default "auto"
        ``fano`` weights each gene of the KL term by ``1 / Fano factor`` of its counts
        within a cell type (``Reference.gene_weights``, from the reference cells): a
        quasi-Poisson likelihood that trusts bursty genes less. ``auto`` takes that Fano
        factor to the slide's depth, ``1 / (1 + (F - 1) p)`` with ``p`` the slide's
        counts per cell against the reference's
        (:func:`~napari_stlnmf.core.reference.depth_adapted_weights`): shallow spots are
        nearly Poisson, so their genes keep nearly equal weight. ``none`` gives the plain
        Poisson term. References given as signatures only have all weights 1.
    group : {"region", "literal", "none"}, default "region"
    update : {"mm", "ratio"}, default "mm"
    n_layers : int, default 60
    warm_start : int, default 100
        Plain multiplicative updates (the data term alone, no gradient) before the learned
        layers, so the layers refine a converged data fit instead of spending themselves
        on reaching it (``docs/benchmarks.md``).
    tied : bool, default True
    epochs : int, default 20
        0 gives the untrained MU with the initial parameters.
    lr : float, default 0.1
    patience : int, default 5
    n_train_slides : int, default 3
        Freshly simulated slides per epoch (one optimiser step each).
    n_val_slides : int, default 2
        Simulated slides, fixed for the whole run, for early stopping.
    max_train_spots : int, default 1200
        Larger geometries are trained on random spatial crops of this many spots (the
        parameters are scale-free, so they transfer to the whole slide).
    radius : float, default 1.5
        Graph radius in spot pitches.
    prior : {"auto", "none"} or array (R, k), default "auto"
        Centre of the simulated region compositions: ``auto`` uses the plain KL estimate of
        each region's mean composition on the target counts ``X`` given to :meth:`fit`.
    holdout_cells : bool, default False
        Build the training signatures from half of each type's reference cells and simulate
        spots from the other half, so training sees signature noise like real data.
    randomise : bool, default True
        Draw each simulated slide's spatial scale (1–6 pitches), within-region variation
        (0–1.5) and mean cells per spot (2–10) at random around ``simulation``, so the
        learned parameters hold over tissues of unknown smoothness (domain randomisation;
        ``docs/benchmarks.md``). False simulates every slide with ``simulation`` as given.
    simulation : SimulationSettings or dict of its fields, optional
    init : dict, optional
        Initial ``lambda1..3``, ``sigma1``, ``sigma2``, ``omega`` (see :class:`NetConfig`).
    interval_slides : int >= 0, default 6
        After training, at least this many simulated slides (spots from reference cells
        held out of the signatures; more on small slides, up to 60, to reach 6,000 spots)
        on which the per-spot 90 % intervals are calibrated
        (:mod:`~napari_stlnmf.core.uncertainty`); 0: no intervals.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
    random_state : int >= 0, default 0

    Attributes
    ----------
    net_ : STLNMFNet
    reference_ : Reference
    regions_ : list
        Region labels seen in :meth:`fit`, in the order of the rows of ``omega``.
    history_ : list of dict
    fit_seconds_ : float
    library_sizes_ : ndarray
        ``reference_.library_sizes``.
    intervals_ : IntervalCalibration or None
        The interval calibration (None with ``interval_slides=0`` or a model saved before
        intervals existed); :meth:`transform_intervals` uses it.
    """

    _parameter_constraints = {
        "data_term": [Options(DATA_TERMS)],
        "gene_weights": [Options(GENE_WEIGHTS)],
        "group": [Options(GROUPS)],
        "update": [Options(UPDATES)],
        "n_layers": [Interval(Integral, 1, None)],
        "warm_start": [Interval(Integral, 0, None)],
        "tied": ["boolean"],
        "epochs": [Interval(Integral, 0, None)],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "patience": [Interval(Integral, 1, None)],
        "n_train_slides": [Interval(Integral, 1, None)],
        "n_val_slides": [Interval(Integral, 1, None)],
        "max_train_spots": [Interval(Integral, 2, None)],
        "radius": [Interval(Real, 0, None, closed="neither")],
        "prior": [
            Options(("auto", "none")),
            Check(is_prior_array, "an (n_regions, n_types) array of non-negative numbers"),
        ],
        "holdout_cells": ["boolean"],
        "randomise": ["boolean"],
        "simulation": [
            None,
            SimulationSettings,
            Check(is_simulation_dict, "a dict of SimulationSettings fields"),
        ],
        "init": [
            None,
            Check(
                is_net_init, "a dict of positive " + ", ".join(INIT_FIELDS) + " (and warm_start)"
            ),
        ],
        "interval_slides": [Interval(Integral, 0, None)],
        "device": [Check(is_device_name, "'auto', 'cpu', 'cuda' or 'cuda:N'")],
        "random_state": [Interval(Integral, 0, None)],
    }
    #: settings that :meth:`transform` uses
    _transform_params = ("data_term", "gene_weights", "radius")

    def __init__(
        self,
        *,
        data_term: str = "kl",
        gene_weights: str = "auto",
        group: str = "region",
        update: str = "mm",
        n_layers: int = DEFAULT_LAYERS,
        warm_start: int = DEFAULT_WARM_START,
        tied: bool = True,
        epochs: int = DEFAULT_EPOCHS,
        lr: float = 0.1,
        patience: int = 5,
        n_train_slides: int = 3,
        n_val_slides: int = 2,
        max_train_spots: int = 1200,
        radius: float = 1.5,
        prior="auto",
        holdout_cells: bool = False,
        randomise: bool = True,
        simulation: SimulationSettings | None = None,
        init: dict | None = None,
        interval_slides: int = 6,
        device: str = "auto",
        random_state: int = 0,
    ):
        self.data_term = data_term
        self.gene_weights = gene_weights
        self.group = group
        self.update = update
        self.n_layers = n_layers
        self.warm_start = warm_start
        self.tied = tied
        self.epochs = epochs
        self.lr = lr
        self.patience = patience
        self.n_train_slides = n_train_slides
        self.n_val_slides = n_val_slides
        self.max_train_spots = max_train_spots
        self.radius = radius
        self.prior = prior
        self.holdout_cells = holdout_cells
        self.randomise = randomise
        self.simulation = simulation
        self.init = init
        self.interval_slides = interval_slides
        self.device = device
        self.random_state = random_state

    # ---------------------------------------------------------------------------------
    def _config(self, n_types: int, n_regions: int) -> NetConfig:
        init = dict(self.init or {})
        init.setdefault("warm_start", int(self.warm_start))
        return NetConfig(
            n_types=n_types,
            n_regions=n_regions,
            n_layers=int(self.n_layers),
            tied=bool(self.tied),
            data_term=self.data_term,
            group=self.group,
            update=self.update,
            **init,
        )

    def _region_index(self, regions: np.ndarray) -> np.ndarray:
        """Rows of omega for each spot; unseen regions use the extra, mean row."""
        lookup = {r: i for i, r in enumerate(self.regions_)}
        return np.array(
            [lookup.get(r, len(self.regions_)) for r in regions.tolist()], dtype=np.int64
        )

    def _prepare(self, x, sig, weights, coords, region_idx, pitch, dev, dtype=torch.float32):
        w = None
        if self.gene_weights == "fano":
            w = weights
        elif self.gene_weights == "auto":
            w = depth_adapted_weights(weights, depth_ratio(x, sig))
        data = make_data_term(x, sig, self.data_term, dev, dtype, w)
        graph = build_graph(coords, region_idx, self.radius, pitch, dtype).to(dev)
        return data, graph, torch.as_tensor(region_idx, device=dev)

    def fit(
        self,
        reference: Reference,
        coords,
        regions=None,
        X=None,
        callback: Callable[[TrainingProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> STLNMF:
        """Learn the parameters on slides simulated from ``reference`` on this geometry.

        Parameters
        ----------
        reference : Reference
            With single cells, half of each type's cells build the training signatures and
            the other half are summed into simulated spots (honest held-out simulation).
        coords : (m, 2) array
            Spot centres of the slide to deconvolve (its geometry is simulated).
        regions : (m,) array, optional
        X : (m, n_genes) counts, optional
            The target slide; only used to centre the simulated region compositions
            (``prior="auto"``), never as a training target.
        callback, should_stop : see :func:`~napari_stlnmf.core.train.train_network`.

        Returns
        -------
        self
        """
        self._validate_params()
        reference = check_reference(reference)
        coords = np.asarray(coords, dtype=np.float64)
        coords = check_coords(coords, coords.shape[0] if coords.ndim == 2 else -1)
        m = coords.shape[0]
        regions = check_regions(regions, m)
        region_labels = sorted(set(regions.tolist()), key=lambda v: (str(type(v)), v))
        check_prior_shape(self.prior, len(region_labels), reference.n_types)
        lookup = {r: i for i, r in enumerate(region_labels)}
        region_idx = np.array([lookup[r] for r in regions.tolist()], dtype=np.int64)
        dev = resolve_device(self.device)
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        t0 = time.perf_counter()

        net = STLNMFNet(self._config(reference.n_types, len(region_labels))).to(dev)
        where = (reference, coords, region_idx, X, rng, dev)
        history: list[dict] = []
        if self.epochs > 0:
            train, val = self._simulated(
                where,
                net,
                epochs=self.epochs,
                n_train_slides=self.n_train_slides,
                n_val_slides=self.n_val_slides,
                holdout_cells=self.holdout_cells,
            )
            # training crops are small: one thread is faster, and robust on a busy machine
            with cpu_threads(threads_for(0, dev)):
                net, history = train_network(
                    net,
                    train,
                    val,
                    epochs=self.epochs,
                    lr=self.lr,
                    patience=self.patience,
                    callback=callback,
                    should_stop=should_stop,
                )
        net = net.eval()
        intervals = None
        if self.interval_slides > 0:
            intervals = self._calibrate_intervals(net, where)
        # only now, after a successful (not cancelled) fit, change the estimator
        self.intervals_ = intervals
        self.net_ = net
        self.reference_ = reference
        self.regions_ = region_labels
        self.pitch_ = spot_pitch(coords)
        self.history_ = history
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _simulated(self, where: tuple, net, **kw):
        """:func:`training_slides` of ``where`` = (reference, coords, region_idx, X, rng,
        device) with this estimator's settings (``kw``: epochs, slide counts,
        holdout_cells)."""
        return training_slides(
            *where,
            prepare=self._prepare,
            warm=net.config.warm_start,
            max_train_spots=self.max_train_spots,
            randomise=self.randomise,
            simulation=simulation_settings(self.simulation),
            prior=self.prior,
            device=self.device,
            **kw,
        )

    def _calibrate_intervals(self, net, where: tuple):
        """Fit the interval calibration on fresh simulated slides whose spots come from
        cells held out of their signatures (when the reference has cells)."""
        return IntervalCalibration.fit(*self._calibration_spots(net, where))

    def _calibration_spots(self, net, where: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(estimate, truth, depth) of the calibration slides of ``where`` (see
        :meth:`_simulated`), one row per simulated spot."""
        # at least CALIBRATION_SPOTS simulated spots: small slides take more of them
        per_slide = min(where[1].shape[0], self.max_train_spots)
        n_slides = int(np.clip(-(-CALIBRATION_SPOTS // per_slide), self.interval_slides, 60))
        draw, _ = self._simulated(
            where,
            net,
            epochs=n_slides,
            n_train_slides=1,
            n_val_slides=0,
            holdout_cells=True,
        )
        est, truth, depth = [], [], []
        with torch.no_grad(), cpu_threads(threads_for(0, where[5])):
            for i in range(n_slides):
                for s in draw(i):
                    est.append(net(s.data, s.graph, s.region_idx, u0=s.start).double().cpu())
                    truth.append(s.truth.double().cpu())
                    depth.append(_depth(s.data).cpu())
        return torch.cat(est).numpy(), torch.cat(truth).numpy(), torch.cat(depth).numpy()

    def transform(self, X, coords, regions=None, callback=None) -> np.ndarray:
        """Cell-type fractions of every spot, (m, k); NaN rows for spots with no counts."""
        return self._run(X, coords, regions, callback)[0]

    def transform_intervals(
        self, X, coords, regions=None, callback=None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cell-type fractions with their calibrated 90 % intervals.

        Returns
        -------
        fractions, lower, upper : ndarray (m, k)
            ``lower <= fractions <= upper`` in [0, 1]; NaN rows for spots with no counts.

        Raises
        ------
        ValueError
            The model has no interval calibration (``interval_slides=0``, or saved by a
            version without intervals): fit it again.
        """
        self._check_fitted()
        if getattr(self, "intervals_", None) is None:
            raise ValueError(
                "this model has no interval calibration (interval_slides=0, or it was saved "
                "by a version without intervals): fit it again"
            )
        props, depth = self._run(X, coords, regions, callback)
        lower, upper = self.intervals_.intervals(props, depth)
        return props, lower, upper

    def _run(self, X, coords, regions, callback) -> tuple[np.ndarray, np.ndarray]:
        """(fractions (m, k), depth (m,)) with NaN for spots with no counts."""
        self._validate_params(self._transform_params)
        x, sig, weights, valid = self._split(X)
        m = valid.size
        coords = check_coords(coords, m)
        regions = check_regions(regions, m)
        region_idx = self._region_index(regions)
        dev = next(self.net_.parameters()).device
        data, graph, ridx = self._prepare(
            x,
            sig,
            weights,
            coords[valid],
            region_idx[valid],
            self.pitch_ if self._same_scale(coords) else None,
            dev,
        )
        with torch.no_grad(), cpu_threads(threads_for(x.nnz * sig.shape[1], dev)):
            props = self.net_(data, graph, ridx, callback=callback)
        depth = np.full(m, np.nan)
        depth[valid] = _depth(data).cpu().numpy()
        return self._merge(props.double().cpu().numpy(), valid), depth

    def _same_scale(self, coords) -> bool:
        # a new slide may come in other units: only reuse the fitted pitch when it matches
        p = spot_pitch(coords)
        return abs(p - self.pitch_) <= 0.05 * self.pitch_

    # ---------------------------------------------------------------------------------
    def learned_parameters(self) -> dict:
        """Learned lambdas, sigmas (sigma1 in spot pitches) and per-region omega, as floats."""
        self._check_fitted()
        lam = self.net_.lambdas.detach().cpu().numpy()
        sig = self.net_.sigmas.detach().cpu().numpy()
        om = self.net_.omega.detach().cpu().numpy()
        return {
            "lambda1": lam[:, 0].tolist(),
            "lambda2": lam[:, 1].tolist(),
            "lambda3": lam[:, 2].tolist(),
            "sigma1": sig[:, 0].tolist(),
            "sigma2": sig[:, 1].tolist(),
            "omega": {str(r): om[i].tolist() for i, r in enumerate(self.regions_)},
        }

    # -- state, for saving without pickle (io/model_file.py) ---------------------------
    def _get_state(self) -> tuple[dict, dict[str, torch.Tensor], dict]:
        """The fitted estimator as plain data, for :meth:`_from_state`.

        Returns
        -------
        config : dict
            Its settings, :meth:`get_params` (JSON types).
        tensors : dict of str to Tensor
            The network's parameters, ``signatures`` and ``gene_weights`` (CPU, contiguous;
            the gene weights came from reference cells, which are not kept).
        meta : dict
            JSON types: ``network`` (the :class:`NetConfig`), ``cell_types``, ``genes``,
            ``regions``, ``pitch``, ``history`` and ``library_sizes``.
        """
        self._check_fitted()
        ref = self.reference_
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net_.state_dict().items()}
        tensors["signatures"] = torch.as_tensor(
            np.ascontiguousarray(ref.signatures), dtype=torch.float64
        )
        tensors["gene_weights"] = torch.as_tensor(
            np.ascontiguousarray(ref.weights), dtype=torch.float64
        )
        if getattr(self, "intervals_", None) is not None:
            for name, arr in self.intervals_.to_arrays().items():
                tensors[name] = torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float64)
        meta = {
            "network": self.net_.config.to_dict(),
            "cell_types": list(ref.cell_types),
            "genes": list(ref.genes),
            "regions": [to_jsonable(r) for r in self.regions_],
            "pitch": self.pitch_,
            "history": self.history_,
            "library_sizes": [float(v) for v in ref.library_sizes],
        }
        return self.get_params(), tensors, meta

    @classmethod
    def _from_state(cls, config: dict, tensors: dict, meta: dict) -> STLNMF:
        """A fitted estimator from :meth:`_get_state`'s three parts, checked before use.

        Settings this version does not know are ignored, missing ones take their defaults
        (``meta["library_sizes"]`` too: the signatures' column sums). Raises ValueError
        (or TypeError) naming the first inconsistency: a setting, the network config
        against the cell types and regions, a tensor's presence, shape or finiteness, the
        reference or the library sizes.
        """
        names = cls._param_names()
        model = cls(**{k: v for k, v in config.items() if k in names})
        model._validate_params()
        model.simulation = simulation_settings(model.simulation)
        ctypes, genes, regions = meta["cell_types"], meta["genes"], meta["regions"]
        try:
            net_config = NetConfig(**meta["network"])
        except TypeError as exc:
            raise ValueError(f"invalid network config ({exc})") from None
        k, n = len(ctypes), len(genes)
        if net_config.n_types != k or net_config.n_regions != len(regions):
            raise ValueError("config does not match its cell types / regions")
        expected = {"signatures": (n, k), **STLNMFNet.parameter_shapes(net_config)}
        check_tensors(tensors, expected, optional=("gene_weights", *INTERVAL_TENSORS))
        pitch = meta["pitch"]
        if pitch not in Interval(Real, 0, None, closed="neither"):
            raise ValueError(f"pitch must be a positive number, got {pitch!r}")
        weights = tensors.get("gene_weights")
        reference = Reference(
            tensors["signatures"].numpy().astype(np.float64),
            list(genes),
            list(ctypes),
            gene_weights=None if weights is None else weights.numpy().astype(np.float64),
            library_sizes=meta.get("library_sizes"),
        )
        try:
            net = STLNMFNet(net_config)
        except ValueError as exc:
            raise ValueError(f"invalid network config ({exc})") from None
        net.load_state_dict({name: tensors[name].to(torch.float32) for name in net.state_dict()})
        model.net_ = net.eval()
        model.intervals_ = IntervalCalibration.from_arrays(
            {name: t.numpy() for name, t in tensors.items() if name in INTERVAL_TENSORS}, k
        )
        model.reference_ = reference
        model.regions_ = list(regions)
        model.pitch_ = float(pitch)
        model.history_ = list(meta.get("history") or [])
        model.fit_seconds_ = 0.0
        return model
