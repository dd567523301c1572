"""Training data for STL NMF: slides simulated from the reference on the target slide's
geometry (random crops of it for large slides), with randomised simulator settings, the
target's sequencing depth and region compositions centred on a plain KL estimate."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree

from .base import ZeroCountSpotsWarning, nonzero_spots, used_genes
from .baselines import PlainKL
from .graph import spot_pitch
from .network import plain_updates
from .reference import Reference
from .simulate import SimulationSettings, simulate_slide
from .train import TrainingSlide
from .validation import check_counts

__all__ = [
    "training_slides",
    "randomised",
    "calibrated_settings",
    "region_prior",
    "check_prior_shape",
    "is_prior_array",
    "is_simulation_dict",
    "simulation_settings",
    "depth_ratio",
]


def is_simulation_dict(value) -> bool:
    """A dict of :class:`SimulationSettings` fields (the ``simulation`` setting in JSON)."""
    names = {f.name for f in dataclasses.fields(SimulationSettings)}
    return isinstance(value, dict) and set(value) <= names


def is_prior_array(value) -> bool:
    """A 2-D array of non-negative finite numbers whose rows have positive sums (a
    ``prior`` of region compositions, one row per region)."""
    if isinstance(value, str):
        return False
    a = np.asarray(value, dtype=np.float64)
    return (
        a.ndim == 2
        and a.size > 0
        and bool(np.all(np.isfinite(a)))
        and bool((a >= 0).all())
        and bool((a.sum(1) > 0).all())
    )


def simulation_settings(simulation) -> SimulationSettings | None:
    """The ``simulation`` setting as :class:`SimulationSettings` (it may be given as a
    dict of its fields, e.g. read back from JSON); None stays None."""
    if simulation is None or isinstance(simulation, SimulationSettings):
        return simulation
    return SimulationSettings(**simulation)


def randomised(settings: SimulationSettings, gen: np.random.Generator) -> SimulationSettings:
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


def calibrated_settings(
    simulation: SimulationSettings | None, sim_ref: Reference, X
) -> SimulationSettings:
    """Simulation settings whose sequencing depth matches the target slide's.

    The amount of spatial smoothing worth learning depends on how noisy the counts are,
    so the simulated spots get the target's median total count (when X is given and
    ``simulation`` was not set by the caller).
    """
    settings = simulation or SimulationSettings()
    if X is None or simulation is not None:
        return settings
    genes = used_genes(sim_ref.signatures)
    x = check_counts(X, sim_ref.n_genes)[:, genes]
    depth = _depth(x, sim_ref.signatures[genes], settings.mean_cells)
    if depth is None:
        return settings
    return dataclasses.replace(settings, depth=float(np.clip(depth, 1e-4, 1e4)))


def _depth(x, signatures: np.ndarray, cells: float) -> float | None:
    """Median spot total of ``x`` over ``cells`` cells of the signatures' mean per-cell
    total; None when no spot (or no signature) has counts."""
    totals = np.asarray(x.sum(1)).ravel()
    totals = totals[totals > 0]
    per_cell = float(np.mean(signatures.sum(0)))
    if totals.size == 0 or per_cell <= 0:
        return None
    return float(np.median(totals)) / (cells * per_cell)


def depth_ratio(x, signatures: np.ndarray, cells: float | None = None) -> float:
    """How deeply the slide's spots sample each cell, relative to the reference cells.

    ``p = median spot total / (cells * mean reference cell total)`` over the genes of
    ``signatures``: the depth :func:`calibrated_settings` simulates at, with ``cells`` the
    simulator's default mean cells per spot, capped at 1 (a spot summing whole cells keeps
    their Fano factor, a shallower one thins them by ``p``). 1 when nothing has counts.
    ``x``: spots x genes, scipy sparse or dense.
    """
    cells = SimulationSettings().mean_cells if cells is None else cells
    depth = _depth(x, signatures, cells)
    return 1.0 if depth is None else float(np.clip(depth, 1e-6, 1.0))


def check_prior_shape(prior, n_regions: int, n_types: int) -> None:
    """An array ``prior`` must have one row per region and one column per type."""
    if isinstance(prior, str):
        return
    shape = np.shape(prior)
    if shape != (n_regions, n_types):
        raise ValueError(f"prior must have shape ({n_regions}, {n_types}), got {shape}")


def region_prior(prior, reference: Reference, X, region_idx: np.ndarray, device):
    """Centre of the simulated region compositions, (n_regions, n_types), or None.

    ``"auto"``: each region's mean plain KL composition on the target counts ``X`` (None
    without ``X``); ``"none"``: None; an array: its rows normalised to sum 1.
    """
    if isinstance(prior, str):
        if prior == "none" or X is None:
            return None
        n_reg = int(region_idx.max()) + 1
        # a region's mean is known to ~1e-3 from a few thousand spots: on a 650k-bin slide
        # fitting every spot would cost more than the whole training
        rows = _prior_rows(region_idx, n_reg)
        if rows is not None:
            X = X[rows]
            region_idx = region_idx[rows]
        est = PlainKL(n_iter=200, device=device).fit(reference)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ZeroCountSpotsWarning)
            props = est.transform(X)
        out = np.full((n_reg, reference.n_types), 1.0 / reference.n_types)
        for r in range(n_reg):
            rows = props[(region_idx == r) & np.isfinite(props).all(1)]
            if len(rows):
                out[r] = rows.mean(0)
        return out
    out = np.asarray(prior, dtype=np.float64)
    return out / out.sum(1, keepdims=True)


#: Spots per region the ``prior="auto"`` composition is estimated from (at most).
PRIOR_SPOTS_PER_REGION = 5000


def _prior_rows(region_idx: np.ndarray, n_reg: int) -> np.ndarray | None:
    """Sorted rows of a fixed random subset of at most :data:`PRIOR_SPOTS_PER_REGION`
    spots per region (None: every spot)."""
    sizes = np.bincount(region_idx, minlength=n_reg)
    if sizes.max() <= PRIOR_SPOTS_PER_REGION:
        return None
    rng = np.random.default_rng(0)  # the same subset for the same slide, whatever the seed
    picked = []
    for r in range(n_reg):
        idx = np.flatnonzero(region_idx == r)
        if idx.size > PRIOR_SPOTS_PER_REGION:
            idx = rng.choice(idx, size=PRIOR_SPOTS_PER_REGION, replace=False)
        picked.append(idx)
    return np.sort(np.concatenate(picked))


def training_slides(
    reference: Reference,
    coords: np.ndarray,
    region_idx: np.ndarray,
    X,
    rng: np.random.Generator,
    dev: torch.device,
    *,
    prepare: Callable,
    warm: int,
    epochs: int,
    n_train_slides: int,
    n_val_slides: int,
    max_train_spots: int,
    randomise: bool,
    holdout_cells: bool,
    simulation: SimulationSettings | None,
    prior,
    device,
) -> tuple[Callable[[int], list[TrainingSlide]], list[TrainingSlide]]:
    """Validation slides, and a function drawing fresh training slides per epoch.

    ``prepare(x, signatures, weights, coords, region_idx, pitch, dev)`` builds a slide's
    data term, graph and region indices (the estimator's own preparation); ``warm`` plain
    updates give each slide's starting point. The other arguments are the estimator's
    settings of the same names (``device`` runs the plain KL prior). Random numbers are
    drawn from ``rng`` in a fixed order, so the same seed gives the same slides.
    """
    if holdout_cells and reference.cells is not None and reference.labels is not None:
        sig_ref, sim_ref = reference.split_cells(0.5, rng)
    else:
        sig_ref = sim_ref = reference
    settings = calibrated_settings(simulation, sim_ref, X)
    centre = region_prior(prior, reference, X, region_idx, device)
    pitch = spot_pitch(coords)
    genes = used_genes(sig_ref.signatures)
    signatures = sig_ref.signatures[genes]
    weights = sig_ref.weights[genes]
    tree = cKDTree(coords)

    def one_slide(gen: np.random.Generator) -> TrainingSlide:
        if coords.shape[0] > max_train_spots:
            middle = coords[gen.integers(coords.shape[0])]
            _, idx = tree.query(middle, k=max_train_spots)
            idx = np.sort(idx)
        else:
            idx = np.arange(coords.shape[0])
        slide_settings = randomised(settings, gen) if randomise else settings
        sim = simulate_slide(sim_ref, coords[idx], region_idx[idx], gen, slide_settings, centre)
        x = sim.counts[:, genes].tocsr()
        keep = nonzero_spots(x)
        idx, x, truth = idx[keep], x[keep], sim.proportions[keep]
        data, graph, ridx = prepare(
            x, signatures, weights, coords[idx], region_idx[idx], pitch, dev
        )
        truth = torch.as_tensor(truth, dtype=torch.float32, device=dev)
        start = None
        if warm > 0:
            k = signatures.shape[1]
            uniform = torch.full((data.n_spots, k), 1.0 / k, device=dev)
            start = plain_updates(uniform, data, warm)
        return TrainingSlide(data, graph, ridx, truth, start)

    val = [one_slide(rng) for _ in range(n_val_slides)]
    seeds = rng.integers(0, 2**63 - 1, size=epochs + 1)

    def draw(epoch: int) -> list[TrainingSlide]:
        gen = np.random.default_rng(seeds[epoch])
        return [one_slide(gen) for _ in range(n_train_slides)]

    return draw, val
