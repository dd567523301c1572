"""The baselines STL NMF is measured against: plain Poisson/KL updates and per-spot NNLS.
Neither learns anything; both follow the estimators' contract (see :mod:`.base`)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import nnls

from .base import _Base
from .data_terms import make_data_term
from .device import cpu_threads, resolve_device, threads_for
from .network import plain_updates
from .validation import Check, Interval, check_reference, is_device_name

__all__ = ["PlainKL", "NNLS"]


class _ReferenceOnly(_Base):
    """A baseline that learns nothing: ``fit`` only checks and keeps the reference (the
    same ``fit(reference, coords, regions, X=...)`` contract as STLNMF)."""

    def fit(self, reference, coords=None, regions=None, X=None, **_):
        self._validate_params()
        self.reference_ = check_reference(reference)
        return self


class PlainKL(_ReferenceOnly):
    """Poisson/KL multiplicative update on raw counts, no spatial term, nothing learned.

    The same updates as STL NMF's warm start (:func:`~napari_stlnmf.core.network.plain_updates`).

    Parameters
    ----------
    n_iter : int, default 300
    device : str, default "auto"
    """

    _parameter_constraints = {
        "n_iter": [Interval(Integral, 1, None)],
        "device": [Check(is_device_name, "'auto', 'cpu', 'cuda' or 'cuda:N'")],
    }

    def __init__(self, n_iter: int = 300, device: str = "auto"):
        self.n_iter = n_iter
        self.device = device

    def transform(self, X, coords=None, regions=None) -> np.ndarray:
        self._validate_params()
        x, sig, _, valid = self._split(X)
        dev = resolve_device(self.device)
        data = make_data_term(x, sig, "kl", dev, torch.float32)
        with torch.no_grad(), cpu_threads(threads_for(x.nnz * sig.shape[1], dev)):
            k = data.n_types
            u = torch.full((data.n_spots, k), 1.0 / k, dtype=torch.float32, device=dev)
            u = plain_updates(u, data, self.n_iter)
        return self._merge(u.double().cpu().numpy(), valid)


class NNLS(_ReferenceOnly):
    """Non-negative least squares per spot on library-size-normalised counts.

    Solves ``min ||x_s / T_s - Bn u||`` with ``Bn`` the per-type mean profiles scaled to sum
    1 (mRNA fractions); with ``cell_fractions=True`` (default) the result is divided by the
    per-type library size so it estimates cell fractions like the other estimators.
    """

    _parameter_constraints = {"cell_fractions": ["boolean"]}

    def __init__(self, cell_fractions: bool = True):
        self.cell_fractions = cell_fractions

    def transform(self, X, coords=None, regions=None) -> np.ndarray:
        self._validate_params()
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
