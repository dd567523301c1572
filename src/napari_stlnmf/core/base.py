"""What every estimator shares: settings (``get_params``/``set_params``, checked against
``_parameter_constraints``), gene filtering, zero-count spots and NaN re-insertion.

All estimators share one contract::

    est.fit(reference, coords, regions=None, X=None)   # X: optional target counts
    props = est.transform(X, coords, regions=None)    # (m, k) cell fractions, rows sum to 1

``X`` is spots x genes (raw counts, dense or scipy sparse) in the reference's gene order.
Spots with no counts on the used genes get a NaN row and a :class:`ZeroCountSpotsWarning`.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
import torch

from .reference import Reference
from .validation import check_counts, validate_params

__all__ = ["ZeroCountSpotsWarning", "to_jsonable", "used_genes", "nonzero_spots"]


class ZeroCountSpotsWarning(UserWarning):
    """Some spots have no counts on the genes used; their proportions are NaN."""


def used_genes(signatures: np.ndarray) -> np.ndarray:
    """Genes the reference expresses at all; the others carry no information."""
    return np.flatnonzero(signatures.sum(1) > 0)


def nonzero_spots(x: sp.csr_matrix) -> np.ndarray:
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


def to_jsonable(value):
    """A setting's value in plain JSON types: numpy scalars and arrays become numbers and
    lists, dataclasses (``SimulationSettings``) dicts, devices strings."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.device):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


class _Base:
    """Shared helpers: settings, gene filtering, zero-spot handling, NaN re-insertion."""

    #: setting name -> allowed values (see :func:`~napari_stlnmf.core.validation.validate_params`)
    _parameter_constraints: dict = {}

    reference_: Reference

    # -- settings ----------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        """The constructor's parameters, in order: the estimator's settings."""
        params = inspect.signature(cls.__init__).parameters.values()
        return [
            p.name
            for p in params
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict:
        """Every setting (constructor parameter) by name, in JSON types.

        ``type(est)(**est.get_params())`` builds an unfitted copy; ``json.dumps`` of the
        result always works (what ``run.json`` and the model file store). ``deep`` is
        accepted for scikit-learn compatibility (there are no nested estimators).
        """
        return {name: to_jsonable(getattr(self, name)) for name in self._param_names()}

    def set_params(self, **params):
        """Change settings (checked at the next ``fit``/``transform``); returns self."""
        valid = self._param_names()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no setting {unknown[0]!r}; "
                f"its settings are: {', '.join(valid)}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _validate_params(self, names: Iterable[str] | None = None) -> None:
        """Check the settings ``names`` (default: all) against ``_parameter_constraints``."""
        params = {name: getattr(self, name) for name in self._param_names()}
        validate_params(type(self).__name__, params, self._parameter_constraints, names)

    # -- fitted state ------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "reference_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    @property
    def cell_types_(self) -> list[str]:
        return list(self.reference_.cell_types)

    @property
    def genes_(self) -> list[str]:
        return list(self.reference_.genes)

    @property
    def library_sizes_(self) -> np.ndarray:
        """Mean counts per cell of each type over all reference genes:
        ``reference_.library_sizes`` (for mRNA fractions)."""
        if not hasattr(self, "reference_"):
            raise AttributeError(f"this {type(self).__name__} is not fitted yet")
        return self.reference_.library_sizes

    # -- shared steps of transform -----------------------------------------------------
    def _split(self, X):
        self._check_fitted()
        x = check_counts(X, self.reference_.n_genes)
        genes = used_genes(self.reference_.signatures)
        # slicing copies the whole matrix: only do it when something is dropped
        if genes.size < x.shape[1]:
            x = x[:, genes].tocsr()
        valid = nonzero_spots(x)
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
