"""scikit-learn-style estimators: STL NMF and the baselines it is measured against.

All estimators share one contract::

    est.fit(reference, coords, regions=None, X=None)   # X: optional target counts
    props = est.transform(X, coords, regions=None)    # (m, k) cell fractions, rows sum to 1

``X`` is spots x genes (raw counts, dense or scipy sparse) in the reference's gene order.
Spots with no counts on the used genes get a NaN row and a :class:`ZeroCountSpotsWarning`.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import nnls
from scipy.spatial import cKDTree

from .device import cpu_threads, resolve_device, threads_for
from .graph import build_graph, spot_pitch
from .layers import FrobeniusData, make_kl_data
from .model import NetConfig, STLNMFNet, plain_updates
from .reference import Reference
from .simulate import SimulationSettings, simulate_slide
from .train import TrainingProgress, TrainingSlide, train_network

__all__ = ["STLNMF", "PlainKL", "NNLS", "ZeroCountSpotsWarning", "check_counts"]


class ZeroCountSpotsWarning(UserWarning):
    """Some spots have no counts on the genes used; their proportions are NaN."""


# --------------------------------------------------------------------------------------
# input validation, done once at the edge
# --------------------------------------------------------------------------------------
def check_counts(X, n_genes: int | None = None, name: str = "X") -> sp.csr_matrix:
    """Validate a spots x genes count matrix and return it as float64 CSR."""
    if hasattr(X, "to_numpy") and not sp.issparse(X):
        X = X.to_numpy()
    x = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else None
    if x is None:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D (spots x genes), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        x = sp.csr_matrix(arr.astype(np.float64))
    if n_genes is not None and x.shape[1] != n_genes:
        raise ValueError(
            f"{name} has {x.shape[1]} genes (columns) but the reference has {n_genes}: "
            "align the genes first (same genes, same order)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no spots")
    if not np.all(np.isfinite(x.data)):
        raise ValueError(f"{name} contains NaN or infinite counts")
    if (x.data < 0).any():
        raise ValueError(f"{name} contains negative counts")
    # never modify the caller's matrix (csr_matrix shares its arrays when it can)
    if not x.has_canonical_format or (x.data == 0).any():
        x = x.copy()
        x.sum_duplicates()
        x.eliminate_zeros()
    return x


def _check_coords(coords, m: int) -> np.ndarray:
    c = np.asarray(coords, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"coords must have shape (n_spots, 2), got {c.shape}")
    if c.shape[0] != m:
        raise ValueError(f"coords have {c.shape[0]} spots but the counts have {m}")
    if not np.all(np.isfinite(c)):
        raise ValueError("coords contain NaN or infinite values")
    if m > 1:
        pairs = cKDTree(c).query_pairs(0.0, output_type="ndarray")
        if len(pairs):
            i, j = pairs[0]
            raise ValueError(
                f"duplicated coordinates: {len(pairs)} pairs of spots share a position, "
                f"e.g. spots {i} and {j} at {tuple(c[i])}"
            )
    return c


def _check_regions(regions, m: int) -> np.ndarray:
    if regions is None:
        return np.zeros(m, dtype=np.int64)
    r = np.asarray(regions)
    if r.ndim != 1 or r.shape[0] != m:
        raise ValueError(f"regions must have shape ({m},), got {r.shape}")
    if r.dtype.kind == "f" and not np.all(np.isfinite(r)):
        raise ValueError("regions contain NaN; use an integer label (0 = unassigned)")
    return r


def _check_reference(reference) -> Reference:
    if not isinstance(reference, Reference):
        raise TypeError(
            "reference must be a napari_stlnmf.Reference (Reference.from_cells or "
            f"Reference.from_signatures), got {type(reference).__name__}"
        )
    return reference


def _used_genes(signatures: np.ndarray) -> np.ndarray:
    """Genes the reference expresses at all; the others carry no information."""
    return np.flatnonzero(signatures.sum(1) > 0)


def _nonzero_spots(x: sp.csr_matrix) -> np.ndarray:
    return np.asarray(x.sum(1)).ravel() > 0


def _warn_zero(valid: np.ndarray) -> None:
    n_zero = int((~valid).sum())
    if n_zero:
        warnings.warn(
            f"{n_zero} of {valid.size} spots have no counts on the reference genes; "
            "their proportions are NaN",
            ZeroCountSpotsWarning,
            stacklevel=3,
        )


def _torch_csr(x: sp.csr_matrix, device, dtype) -> torch.Tensor:
    return torch.sparse_csr_tensor(
        torch.as_tensor(x.indptr, dtype=torch.int64),
        torch.as_tensor(x.indices, dtype=torch.int64),
        torch.as_tensor(x.data, dtype=dtype),
        size=x.shape,
        check_invariants=False,
    ).to(device)


def make_data_term(
    x: sp.csr_matrix, signatures: np.ndarray, kind: str, device, dtype, weights=None
):
    """Prepare a data term (KL or Frobenius) for counts ``x`` against ``signatures``;
    ``weights`` (n_genes,) weight the genes of the KL term (None: all ones)."""
    xt = _torch_csr(x, device, dtype)
    sig = torch.as_tensor(signatures, dtype=dtype, device=device)
    if kind == "kl":
        w = None if weights is None else torch.as_tensor(weights, dtype=dtype, device=device)
        return make_kl_data(xt, sig, w)
    return FrobeniusData.from_counts(xt, sig)


def _randomised(settings: SimulationSettings, gen: np.random.Generator) -> SimulationSettings:
    """The simulator's unknowns drawn per slide around ``settings`` (domain randomisation):
    how smooth the tissue is, how strongly compositions vary within a region, and how many
    cells a spot holds are not known for a real slide, so the learned parameters are made
    to work over a range of them."""
    return dataclasses.replace(
        settings,
        field_scale=float(gen.uniform(1.0, 6.0)),
        field_strength=float(gen.uniform(0.0, 1.5)),
        mean_cells=float(gen.uniform(2.0, 10.0)),
    )


# --------------------------------------------------------------------------------------
class _Base:
    """Shared helpers: gene filtering, zero-spot handling, NaN re-insertion."""

    reference_: Reference

    def _check_fitted(self):
        if not hasattr(self, "reference_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    @property
    def cell_types_(self) -> list[str]:
        return list(self.reference_.cell_types)

    @property
    def genes_(self) -> list[str]:
        return list(self.reference_.genes)

    def _split(self, X):
        self._check_fitted()
        x = check_counts(X, self.reference_.n_genes)
        genes = _used_genes(self.reference_.signatures)
        # slicing copies the whole matrix: only do it when something is dropped
        if genes.size < x.shape[1]:
            x = x[:, genes].tocsr()
        valid = _nonzero_spots(x)
        _warn_zero(valid)
        if not valid.all():
            x = x[valid].tocsr()
        return x, self.reference_.signatures[genes], self.reference_.weights[genes], valid

    @staticmethod
    def _merge(props: np.ndarray, valid: np.ndarray) -> np.ndarray:
        out = np.full((valid.size, props.shape[1]), np.nan)
        out[valid] = props
        return out

    def predict(self, X, coords=None, regions=None) -> np.ndarray:
        """Alias of :meth:`transform`."""
        return self.transform(X, coords, regions)

    def fit_transform(self, reference, coords, regions=None, X=None, **kw) -> np.ndarray:
        if X is None:
            raise ValueError("fit_transform needs the target counts X")
        return self.fit(reference, coords, regions, X=X, **kw).transform(X, coords, regions)


class PlainKL(_Base):
    """Poisson/KL multiplicative update on raw counts, no spatial term, nothing learned.

    Parameters
    ----------
    n_iter : int, default 300
    device : str, default "auto"
    """

    def __init__(self, n_iter: int = 300, device: str = "auto"):
        self.n_iter = n_iter
        self.device = device

    def fit(self, reference, coords=None, regions=None, X=None, **_):
        self.reference_ = _check_reference(reference)
        return self

    def transform(self, X, coords=None, regions=None) -> np.ndarray:
        x, sig, _, valid = self._split(X)
        dev = resolve_device(self.device)
        data = make_data_term(x, sig, "kl", dev, torch.float32)
        with torch.no_grad(), cpu_threads(threads_for(x.nnz * sig.shape[1], dev)):
            u = torch.full(
                (data.n_spots, data.n_types), 1.0 / data.n_types, dtype=torch.float32, device=dev
            )
            for _ in range(self.n_iter):
                _, b, _, c = data.pieces(u)
                u = u * c / b.clamp_min(1e-30)
                u = u / u.sum(1, keepdim=True).clamp_min(1e-30)
        return self._merge(u.double().cpu().numpy(), valid)


class NNLS(_Base):
    """Non-negative least squares per spot on library-size-normalised counts.

    Solves ``min ||x_s / T_s - Bn u||`` with ``Bn`` the per-type mean profiles scaled to sum
    1 (mRNA fractions); with ``cell_fractions=True`` (default) the result is divided by the
    per-type library size so it estimates cell fractions like the other estimators.
    """

    def __init__(self, cell_fractions: bool = True):
        self.cell_fractions = cell_fractions

    def fit(self, reference, coords=None, regions=None, X=None, **_):
        self.reference_ = _check_reference(reference)
        return self

    def transform(self, X, coords=None, regions=None) -> np.ndarray:
        x, sig, _, valid = self._split(X)
        lib = sig.sum(0)
        bn = sig / lib
        xn = sp.diags(1.0 / np.asarray(x.sum(1)).ravel()) @ x
        out = np.empty((x.shape[0], sig.shape[1]))
        for s in range(x.shape[0]):
            out[s] = nnls(bn, xn[s].toarray().ravel())[0]
        if self.cell_fractions:
            out = out / lib
        total = out.sum(1, keepdims=True)
        out = np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / out.shape[1])
        return self._merge(out, valid)


# Shipped defaults, chosen by benchmarks/bench_accuracy.py (docs/benchmarks.md); the CLI
# and the widget read them from here.
DEFAULT_EPOCHS = 20
DEFAULT_LAYERS = 60
DEFAULT_WARM_START = 100


class STLNMF(_Base):
    """Spatial transcriptomics learned NMF: an unrolled, spatially regularised NMF.

    Parameters
    ----------
    data_term : {"kl", "frobenius"}, default "kl"
        Poisson/KL on raw counts (default; see ``docs/method.md``) or the paper's squared
        Frobenius on normalised counts.
    gene_weights : {"fano", "none"}, default "fano"
        Weight each gene of the KL term by ``1 / Fano factor`` of its counts within a cell
        type (``Reference.gene_weights``, from the reference cells): a quasi-Poisson
        likelihood that trusts bursty genes less. ``none`` gives the plain Poisson term.
        References given as signatures only have all weights 1.
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
    simulation : SimulationSettings, optional
    init : dict, optional
        Initial ``lambda1..3``, ``sigma1``, ``sigma2``, ``omega`` (see :class:`NetConfig`).
    device : {"auto", "cpu", "cuda"}, default "auto"
    random_state : int, default 0

    Attributes
    ----------
    net_ : STLNMFNet
    reference_ : Reference
    regions_ : list
        Region labels seen in :meth:`fit`, in the order of the rows of ``omega``.
    history_ : list of dict
    fit_seconds_ : float
    """

    # Plain-valued settings: saved with a model (io/model_file.py) and reported in run.json.
    SETTINGS = (
        "data_term",
        "gene_weights",
        "group",
        "update",
        "n_layers",
        "warm_start",
        "tied",
        "epochs",
        "lr",
        "patience",
        "n_train_slides",
        "randomise",
        "max_train_spots",
        "radius",
        "random_state",
    )

    def __init__(
        self,
        *,
        data_term: str = "kl",
        gene_weights: str = "fano",
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
        self.device = device
        self.random_state = random_state

    # ---------------------------------------------------------------------------------
    def _config(self, n_types: int, n_regions: int) -> NetConfig:
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {self.n_layers}")
        if self.warm_start < 0:
            raise ValueError(f"warm_start must be >= 0, got {self.warm_start}")
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
        if self.gene_weights not in ("fano", "none"):
            raise ValueError(f"gene_weights must be 'fano' or 'none', got {self.gene_weights!r}")
        w = weights if self.gene_weights == "fano" else None
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
        reference = _check_reference(reference)
        coords = np.asarray(coords, dtype=np.float64)
        coords = _check_coords(coords, coords.shape[0] if coords.ndim == 2 else -1)
        m = coords.shape[0]
        regions = _check_regions(regions, m)
        region_labels = sorted(set(regions.tolist()), key=lambda v: (str(type(v)), v))
        lookup = {r: i for i, r in enumerate(region_labels)}
        region_idx = np.array([lookup[r] for r in regions.tolist()], dtype=np.int64)
        dev = resolve_device(self.device)
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        t0 = time.perf_counter()

        net = STLNMFNet(self._config(reference.n_types, len(region_labels))).to(dev)
        history: list[dict] = []
        if self.epochs > 0:
            train, val = self._training_slides(
                reference, coords, region_idx, X, rng, dev, net.config.warm_start
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
        # only now, after a successful (not cancelled) fit, change the estimator
        self.net_ = net.eval()
        self.reference_ = reference
        self.regions_ = region_labels
        self.pitch_ = spot_pitch(coords)
        self.history_ = history
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _training_slides(self, reference, coords, region_idx, X, rng, dev, warm: int):
        """Validation slides, and a function drawing fresh training slides per epoch."""
        if self.holdout_cells and reference.cells is not None and reference.labels is not None:
            sig_ref, sim_ref = reference.split_cells(0.5, rng)
        else:
            sig_ref = sim_ref = reference
        settings = self._calibrated_settings(sim_ref, X, rng)
        prior = self._region_prior(reference, X, coords, region_idx)
        pitch = spot_pitch(coords)
        genes = _used_genes(sig_ref.signatures)
        signatures = sig_ref.signatures[genes]
        weights = sig_ref.weights[genes]
        tree = cKDTree(coords)

        def one_slide(gen: np.random.Generator) -> TrainingSlide:
            if coords.shape[0] > self.max_train_spots:
                centre = coords[gen.integers(coords.shape[0])]
                _, idx = tree.query(centre, k=self.max_train_spots)
                idx = np.sort(idx)
            else:
                idx = np.arange(coords.shape[0])
            slide_settings = _randomised(settings, gen) if self.randomise else settings
            sim = simulate_slide(sim_ref, coords[idx], region_idx[idx], gen, slide_settings, prior)
            x = sim.counts[:, genes].tocsr()
            keep = _nonzero_spots(x)
            idx, x, truth = idx[keep], x[keep], sim.proportions[keep]
            data, graph, ridx = self._prepare(
                x, signatures, weights, coords[idx], region_idx[idx], pitch, dev
            )
            truth = torch.as_tensor(truth, dtype=torch.float32, device=dev)
            start = None
            if warm > 0:
                k = signatures.shape[1]
                uniform = torch.full((data.n_spots, k), 1.0 / k, device=dev)
                start = plain_updates(uniform, data, warm)
            return TrainingSlide(data, graph, ridx, truth, start)

        val = [one_slide(rng) for _ in range(self.n_val_slides)]
        seeds = rng.integers(0, 2**63 - 1, size=self.epochs + 1)

        def draw(epoch: int) -> list[TrainingSlide]:
            gen = np.random.default_rng(seeds[epoch])
            return [one_slide(gen) for _ in range(self.n_train_slides)]

        return draw, val

    def _calibrated_settings(self, sim_ref, X, rng) -> SimulationSettings:
        """Simulation settings whose sequencing depth matches the target slide's.

        The amount of spatial smoothing worth learning depends on how noisy the counts are,
        so the simulated spots get the target's median total count (when X is given and
        ``simulation.depth`` was not set by the caller).
        """
        settings = self.simulation or SimulationSettings()
        if X is None or self.simulation is not None:
            return settings
        x = check_counts(X, sim_ref.n_genes)[:, _used_genes(sim_ref.signatures)]
        totals = np.asarray(x.sum(1)).ravel()
        target = float(np.median(totals[totals > 0])) if (totals > 0).any() else 0.0
        if target <= 0:
            return settings
        per_cell = float(np.mean(sim_ref.signatures.sum(0)))
        depth = target / (settings.mean_cells * per_cell)
        return dataclasses.replace(settings, depth=float(np.clip(depth, 1e-4, 1e4)))

    def _region_prior(self, reference, X, coords, region_idx):
        if isinstance(self.prior, str):
            if self.prior == "none" or X is None:
                return None
            if self.prior != "auto":
                raise ValueError(f"prior must be 'auto', 'none' or an array, got {self.prior!r}")
            est = PlainKL(n_iter=200, device=self.device).fit(reference)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ZeroCountSpotsWarning)
                props = est.transform(X)
            n_reg = int(region_idx.max()) + 1
            prior = np.full((n_reg, reference.n_types), 1.0 / reference.n_types)
            for r in range(n_reg):
                rows = props[(region_idx == r) & np.isfinite(props).all(1)]
                if len(rows):
                    prior[r] = rows.mean(0)
            return prior
        prior = np.asarray(self.prior, dtype=np.float64)
        n_reg = int(region_idx.max()) + 1
        if prior.shape != (n_reg, reference.n_types):
            raise ValueError(
                f"prior must have shape ({n_reg}, {reference.n_types}), got {prior.shape}"
            )
        return prior / prior.sum(1, keepdims=True)

    def transform(self, X, coords, regions=None, callback=None) -> np.ndarray:
        """Cell-type fractions of every spot, (m, k); NaN rows for spots with no counts."""
        x, sig, weights, valid = self._split(X)
        m = valid.size
        coords = _check_coords(coords, m)
        regions = _check_regions(regions, m)
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
        return self._merge(props.double().cpu().numpy(), valid)

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
