"""Per-spot intervals for every proportion, calibrated on simulated slides.

Count noise is a small part of STL NMF's error (``benchmarks/bench_uncertainty.py``): most
of it comes from cells differing from their type's mean and from the reference. So the
intervals are learned, not derived: after training, the network runs on fresh simulated
slides of the same geometry and depth whose spots are built from cells held out of the
signatures, and :class:`IntervalCalibration` records, per cell type, per depth band and
per band of the estimate, the 5 % quantile of ``truth - estimate`` and the upper quantile
that makes the pair cover 90 % (:func:`_bounds`: truths pile up at 0). A spot's
interval is its estimate plus the quantiles of its type, depth band and estimate
(interpolated between bands of the estimate), clipped to [0, 1] and widened to contain
the estimate. Applying it costs a table lookup per spot and type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IntervalCalibration", "ESTIMATE_EDGES", "N_DEPTH_BANDS", "LEVEL"]

#: Bands of the estimate (fractions): narrow near 0, where most entries are.
ESTIMATE_EDGES = np.array(
    [0.0, 0.005, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0 + 1e-9]
)
#: Depth bands (terciles of the calibration spots' counts).
N_DEPTH_BANDS = 3
#: Nominal coverage.
LEVEL = 0.9
#: Fewest calibration entries a (type, depth, estimate) cell needs before it is used on
#: its own; below that the quantiles come from the same cell pooled over depth, then over
#: types too.
MIN_SAMPLES = 40


@dataclass
class IntervalCalibration:
    """Quantiles of ``truth - estimate`` per type, depth band and estimate band.

    Attributes
    ----------
    level : float
        Nominal coverage (0.9: the 5 % and 95 % quantiles).
    depth_edges : ndarray (N_DEPTH_BANDS - 1,)
        Inner edges of the depth bands, in log1p(counts).
    centres : ndarray (k, N_DEPTH_BANDS, n_bands)
        Mean estimate of each cell (where the quantiles sit on the estimate axis).
    lower, upper : ndarray (k, N_DEPTH_BANDS, n_bands)
        The quantiles of ``truth - estimate``.
    """

    level: float
    depth_edges: np.ndarray
    centres: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def fit(
        cls, estimate: np.ndarray, truth: np.ndarray, depth: np.ndarray, level: float = LEVEL
    ) -> IntervalCalibration:
        """Calibrate from simulated spots.

        Parameters
        ----------
        estimate, truth : ndarray (n, k)
            The network's fractions and the true ones.
        depth : ndarray (n,)
            Each spot's counts (any monotone measure of depth, the same at apply time).
        level : float, default 0.9
        """
        est = np.asarray(estimate, dtype=np.float64)
        tru = np.asarray(truth, dtype=np.float64)
        ok = np.isfinite(est).all(1) & np.isfinite(tru).all(1)
        est, tru = est[ok], tru[ok]
        d = np.log1p(np.asarray(depth, dtype=np.float64)[ok])
        k = est.shape[1]
        n_bands = len(ESTIMATE_EDGES) - 1
        inner = np.quantile(d, np.linspace(0, 1, N_DEPTH_BANDS + 1)[1:-1]) if len(d) else []
        depth_edges = np.asarray(inner, dtype=np.float64)
        dband = np.searchsorted(depth_edges, d, side="right")
        eband = np.clip(np.searchsorted(ESTIMATE_EDGES, est, side="right") - 1, 0, n_bands - 1)
        resid = tru - est
        a = (1 - level) / 2
        shape = (k, N_DEPTH_BANDS, n_bands)
        centres, lower, upper = np.empty(shape), np.empty(shape), np.empty(shape)
        mids = (ESTIMATE_EDGES[:-1] + np.minimum(ESTIMATE_EDGES[1:], 1.0)) / 2
        for j in range(n_bands):
            in_band = eband == j  # (n, k)
            everywhere = resid[in_band]  # every type, every depth
            for q in range(N_DEPTH_BANDS):
                at_depth = resid[in_band & (dband == q)[:, None]]  # every type
                for t in range(k):
                    own = in_band[:, t] & (dband == q)
                    # the most specific sample with enough entries
                    r = next(
                        (
                            c
                            for c in (resid[own, t], resid[in_band[:, t], t], at_depth)
                            if c.size >= MIN_SAMPLES
                        ),
                        everywhere,
                    )
                    e = est[own, t]
                    centres[t, q, j] = e.mean() if e.size else mids[j]
                    if r.size == 0:  # no calibration entry in this band of estimates
                        r = np.array([-mids[j], 1.0 - mids[j]])
                    lower[t, q, j], upper[t, q, j] = _bounds(r, a, level)
        return cls(float(level), depth_edges, centres, lower, upper)

    def intervals(self, estimate: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds for each entry of ``estimate`` (n, k); NaN rows stay NaN."""
        est = np.asarray(estimate, dtype=np.float64)
        d = np.log1p(np.asarray(depth, dtype=np.float64))
        dband = np.searchsorted(self.depth_edges, d, side="right")
        lo = np.full_like(est, np.nan)
        hi = np.full_like(est, np.nan)
        k = est.shape[1]
        for q in range(N_DEPTH_BANDS):
            rows = dband == q
            if not rows.any():
                continue
            for t in range(k):
                c = self.centres[t, q]
                order = np.argsort(c, kind="stable")
                x = est[rows, t]
                lo[rows, t] = x + np.interp(x, c[order], self.lower[t, q][order])
                hi[rows, t] = x + np.interp(x, c[order], self.upper[t, q][order])
        lo = np.clip(np.minimum(lo, est), 0.0, 1.0)
        hi = np.clip(np.maximum(hi, est), 0.0, 1.0)
        bad = ~np.isfinite(est)
        lo[bad] = np.nan
        hi[bad] = np.nan
        return lo, hi

    # -- plain arrays, for the model file ------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "interval_depth_edges": self.depth_edges,
            "interval_centres": self.centres,
            "interval_lower": self.lower,
            "interval_upper": self.upper,
            "interval_level": np.array([self.level]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict, n_types: int) -> IntervalCalibration | None:
        """The calibration saved by :meth:`to_arrays`, None when absent (older models);
        ValueError on wrong shapes or values."""
        keys = ("interval_depth_edges", "interval_centres", "interval_lower", "interval_upper")
        if not all(k in arrays for k in keys):
            return None
        get = {k: np.asarray(arrays[k], dtype=np.float64) for k in (*keys, "interval_level")}
        shape = (n_types, N_DEPTH_BANDS, len(ESTIMATE_EDGES) - 1)
        for k in keys[1:]:
            if get[k].shape != shape or not np.isfinite(get[k]).all():
                raise ValueError(f"tensor {k} must be finite with shape {shape}")
        if get["interval_depth_edges"].shape != (N_DEPTH_BANDS - 1,):
            raise ValueError("tensor interval_depth_edges has the wrong shape")
        level = float(get["interval_level"].ravel()[0])
        if not 0 < level < 1:
            raise ValueError(f"interval level must be in (0, 1), got {level}")
        return cls(
            level,
            get["interval_depth_edges"],
            get["interval_centres"],
            get["interval_lower"],
            get["interval_upper"],
        )


def _bounds(r: np.ndarray, a: float, level: float) -> tuple[float, float]:
    """Offsets (lower, upper) covering ``level`` of the residuals ``r``: the lower one at
    quantile ``a``; the upper one at ``level`` plus the share actually below the lower one.
    Truths pile up at 0 (absent types), so often fewer than ``a`` fall below the lower
    offset; the plain ``1 - a`` quantile would then cover more than asked."""
    lo = float(np.quantile(r, a))
    below = float(np.mean(r < lo))
    hi = float(np.quantile(r, min(1.0, level + below)))
    return lo, hi
