"""Checks done once at the edge: the estimators' settings and the arrays given to them.

Settings (constructor parameters) are checked against a table ``name -> allowed values``
(each estimator's ``_parameter_constraints``, in the spirit of scikit-learn's) by
:func:`validate_params` at the start of ``fit`` and ``transform``. Arrays (counts, spot
coordinates, regions) are checked by the ``check_*`` functions, which return them in the
form the engine uses. The hot loops carry no checks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import scipy.sparse as sp
import torch
from scipy.spatial import cKDTree

__all__ = [
    "InvalidParameterError",
    "Interval",
    "Options",
    "Check",
    "validate_params",
    "is_device_name",
    "check_counts",
    "check_finite_nonnegative",
    "check_coords",
    "check_regions",
    "check_reference",
    "check_tensors",
]


# --------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------
class InvalidParameterError(ValueError, TypeError):
    """A setting of an estimator has a value outside its allowed ones (the message names
    the setting, the value and what is allowed). A ValueError, and a TypeError for a value
    of the wrong type, like scikit-learn's."""


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (:class:`numbers.Integral` or :class:`numbers.Real`) between
    ``low`` and ``high`` (None: unbounded); ``closed`` says which ends are included:
    ``"left"``, ``"right"``, ``"both"`` or ``"neither"``. Booleans and non-finite numbers
    are never in an interval."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def __contains__(self, value) -> bool:
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.kind):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        what = "an integer" if self.kind is Integral else "a number"
        parts = []
        if self.low is not None:
            parts.append((">= " if self.closed in ("left", "both") else "> ") + f"{self.low:g}")
        if self.high is not None:
            parts.append(("<= " if self.closed in ("right", "both") else "< ") + f"{self.high:g}")
        return what + (" " + " and ".join(parts) if parts else "")


@dataclass(frozen=True)
class Options:
    """One of a few strings."""

    values: tuple[str, ...]

    def __contains__(self, value) -> bool:
        return isinstance(value, str) and value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Check:
    """Any value for which ``predicate`` returns True; ``description`` says what that is."""

    predicate: Callable[[object], bool]
    description: str

    def __contains__(self, value) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return self.description


def _allows(constraint, value) -> bool:
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return isinstance(value, bool | np.bool_)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return value in constraint


def _describe(constraint) -> str:
    if constraint is None:
        return "None"
    if constraint == "boolean":
        return "True or False"
    if isinstance(constraint, type):
        return f"a {constraint.__name__}"
    return str(constraint)


def _short_repr(value, limit: int = 80) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_params(
    owner: str, params: dict, constraints: dict, names: Iterable[str] | None = None
) -> None:
    """Raise :class:`InvalidParameterError` for the first of ``names`` (default: every
    constrained name) whose value in ``params`` satisfies none of its constraints.

    A constraint is ``None`` (the value None), ``"boolean"``, a type (``isinstance``), or
    an :class:`Interval`, :class:`Options` or :class:`Check`.
    """
    for name in constraints if names is None else names:
        value = params[name]
        allowed = constraints[name]
        if not any(_allows(c, value) for c in allowed):
            raise InvalidParameterError(
                f"{owner} setting {name!r} must be "
                + " or ".join(_describe(c) for c in allowed)
                + f"; got {_short_repr(value)}"
            )


def is_device_name(value) -> bool:
    """``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (any case), or a torch device.
    Whether CUDA is there is checked when the device is used
    (:func:`~napari_stlnmf.core.device.resolve_device`)."""
    if isinstance(value, torch.device):
        return True
    return (
        isinstance(value, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", value.lower()) is not None
    )


# --------------------------------------------------------------------------------------
# arrays
# --------------------------------------------------------------------------------------
def check_finite_nonnegative(
    values: np.ndarray, what: str, noun: str = "values", verb: str = "contain"
) -> None:
    """Raise ValueError when ``values`` hold NaN, infinities or negative numbers; the
    message reads ``"<what> <verb> NaN or infinite <noun>"`` (or ``negative``)."""
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} {verb} NaN or infinite {noun}")
    if (values < 0).any():
        raise ValueError(f"{what} {verb} negative {noun}")


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
    check_finite_nonnegative(x.data, name, noun="counts", verb="contains")
    # never modify the caller's matrix (csr_matrix shares its arrays when it can)
    if not x.has_canonical_format or (x.data == 0).any():
        x = x.copy()
        x.sum_duplicates()
        x.eliminate_zeros()
    return x


def check_coords(coords, m: int) -> np.ndarray:
    """Spot centres as a float (m, 2) array: finite, no two spots at one position."""
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


def check_regions(regions, m: int) -> np.ndarray:
    """One region label per spot (None: all spots in region 0)."""
    if regions is None:
        return np.zeros(m, dtype=np.int64)
    r = np.asarray(regions)
    if r.ndim != 1 or r.shape[0] != m:
        raise ValueError(f"regions must have shape ({m},), got {r.shape}")
    if r.dtype.kind == "f" and not np.all(np.isfinite(r)):
        raise ValueError("regions contain NaN; use an integer label (0 = unassigned)")
    return r


def check_reference(reference):
    """``reference`` itself when it is a :class:`~napari_stlnmf.core.reference.Reference`."""
    from .reference import Reference  # reference.py uses this module's array checks

    if not isinstance(reference, Reference):
        raise TypeError(
            "reference must be a napari_stlnmf.Reference (Reference.from_cells or "
            f"Reference.from_signatures), got {type(reference).__name__}"
        )
    return reference


def check_tensors(tensors: dict, expected: dict, optional: Iterable[str] = ()) -> None:
    """Every tensor of ``expected`` (name -> shape) present, of that shape and finite; no
    tensor besides those and the ``optional`` ones (whose values their user checks)."""
    for name, shape in expected.items():
        if name not in tensors:
            raise ValueError(f"tensor {name!r} is missing")
        if tuple(tensors[name].shape) != shape:
            raise ValueError(
                f"tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {shape}"
            )
        if not torch.isfinite(tensors[name]).all():
            raise ValueError(f"tensor {name!r} has NaN or infinite values")
    extra = set(tensors) - set(expected) - set(optional)
    if extra:
        raise ValueError(f"unexpected tensors {sorted(extra)}")
