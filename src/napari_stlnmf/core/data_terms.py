"""Data terms and the multiplicative (majorise-minimise) update of STL NMF.

Notation (see ``docs/method.md``): ``U`` is spots x types (``U = V^T``), one row ``u_s`` per
spot. Every term of the objective contributes to four per-entry arrays evaluated at the
current ``U``:

* ``a``     -- the gradient of the *positive quadratic* parts (``P U`` with ``P >= 0``),
* ``b``     -- the *positive linear* parts (KL only),
* ``c_lin`` -- the *negative linear* parts (kept exact),
* ``c_log`` -- the parts majorised with ``z >= 1 + log z`` (graph coupling ``A U`` and the
  Jensen bound of the KL data term).

The minimiser of the separable majoriser is ``U' = U * t`` with ``t`` the positive root of
``a t^2 + (b - c_lin) t - c_log = 0`` (:func:`mm_factor`). It never increases the objective;
it reduces to Lee--Seung's rule for Frobenius NMF and to the classic KL rule when the
regularisers vanish.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ._sparse import csr_tensor

__all__ = [
    "DataTerm",
    "DenseKLData",
    "FrobeniusData",
    "KLData",
    "make_data_term",
    "make_kl_data",
    "mm_factor",
    "ratio_factor",
    "torch_csr",
]

_EPS = 1e-10


def mm_factor(
    a: torch.Tensor, beta: torch.Tensor, c_log: torch.Tensor, eps: float = _EPS
) -> torch.Tensor:
    """Positive root ``t`` of ``a t^2 + beta t - c_log = 0`` (all arrays broadcast).

    Two algebraically equal forms are used so that neither cancels catastrophically:
    ``2 c / (beta + s)`` for ``beta >= 0`` and ``(s - beta) / (2 a)`` for ``beta < 0``,
    with ``s = sqrt(beta^2 + 4 a c)``.
    """
    s = torch.sqrt(beta * beta + 4.0 * a * c_log + eps * eps)
    t_pos = 2.0 * c_log / (beta + s).clamp_min(eps)
    t_neg = (s - beta) / (2.0 * a).clamp_min(eps)
    return torch.where(beta >= 0, t_pos, t_neg)


def ratio_factor(
    a: torch.Tensor,
    b: torch.Tensor,
    c_lin: torch.Tensor,
    c_log: torch.Tensor,
    eps: float = _EPS,
) -> torch.Tensor:
    """The paper's gradient-split rule: negative parts over positive parts.

    Never increases the Frobenius objective, but can increase the KL one (docs/method.md).
    """
    return (c_lin + c_log) / (a + b).clamp_min(eps)


class DataTerm:
    """Interface of a data term prepared for one slide (tensors on one device)."""

    n_spots: int
    n_types: int

    def pieces(
        self, u: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | float, torch.Tensor | float, torch.Tensor | float]:
        """``(a, b, c_lin, c_log)`` contributions of the data term at ``u``."""
        raise NotImplementedError

    def value(self, u: torch.Tensor) -> torch.Tensor:
        """Data term summed over spots (the objective multiplies it by ``1/m``)."""
        raise NotImplementedError

    def to_cell_fractions(self, u: torch.Tensor) -> torch.Tensor:
        """Map the fitted rows to cell-number fractions (rows sum to 1)."""
        raise NotImplementedError

    def row_blocks(self, size: int) -> list[tuple[slice, DataTerm]]:
        """The data term split into blocks of ``size`` consecutive spots (views, no copy of
        the counts)."""
        raise NotImplementedError


class FrobeniusData(DataTerm):
    """Squared Frobenius data term on library-size-normalised counts.

    ``1/(2c) * sum_s || x_s / T_s - Bn u_s ||^2`` with ``Bn`` the signatures with columns
    scaled to sum 1 and ``c = trace(Bn^T Bn) / k`` so the term is free of the gene count.
    ``u_s`` are then mRNA fractions; :meth:`to_cell_fractions` divides by the per-type
    mean library size. Only ``X Bn`` (m x k) and ``Bn^T Bn`` (k x k) are kept, so a layer
    costs O(m k^2) whatever the number of genes.
    """

    def __init__(self, xb: torch.Tensor, gram: torch.Tensor, xx: torch.Tensor, lib: torch.Tensor):
        self.xb = xb  # (m, k) = (X/T) Bn / c
        self.gram = gram  # (k, k) = Bn^T Bn / c
        self.xx = xx  # (m,) = ||x_s/T_s||^2 / c  (for the objective value only)
        self.lib = lib  # (k,) mean counts per cell of each type
        self.n_spots, self.n_types = xb.shape

    @classmethod
    def from_counts(
        cls, x_csr: torch.Tensor, signatures: torch.Tensor, eps: float = _EPS
    ) -> FrobeniusData:
        """Prepare from a sparse CSR ``(m, n)`` count tensor and ``(n, k)`` signatures."""
        lib = signatures.sum(0)
        bn = signatures / lib.clamp_min(eps)
        c = (bn * bn).sum() / bn.shape[1]
        totals = _row_sums(x_csr)
        inv_t = torch.where(totals > 0, 1.0 / totals.clamp_min(eps), torch.zeros_like(totals))
        xb = (x_csr @ bn) * inv_t[:, None] / c
        xx = _row_sq_sums(x_csr) * inv_t**2 / c
        return cls(xb, bn.T @ bn / c, xx, lib)

    def pieces(self, u):
        return u @ self.gram, 0.0, self.xb, 0.0

    def value(self, u):
        # ||x - Bu||^2 / c = xx - 2 u.xb + u^T G u, halved
        quad = ((u @ self.gram) * u).sum(1)
        return 0.5 * (self.xx - 2.0 * (u * self.xb).sum(1) + quad).sum()

    def to_cell_fractions(self, u):
        cells = u / self.lib.clamp_min(_EPS)
        return cells / cells.sum(1, keepdim=True).clamp_min(_EPS)

    def row_blocks(self, size):
        return [
            (
                slice(s, s + size),
                FrobeniusData(self.xb[s : s + size], self.gram, self.xx[s : s + size], self.lib),
            )
            for s in range(0, self.n_spots, size)
        ]


class _KLTerm(DataTerm):
    """What the sparse and dense KL terms share: per-spot weighted totals, the weighted
    signatures, the optimal spot scale and the ``b`` piece."""

    def _set_common(self, totals: torch.Tensor, signatures: torch.Tensor, weights) -> None:
        self.weights = weights
        self.totals = totals
        self.inv_t = torch.where(totals > 0, 1.0 / totals.clamp_min(_EPS), torch.zeros_like(totals))
        self.has = (totals > 0).to(totals.dtype)
        self.sig = signatures
        self.sig_w = signatures * weights[:, None]
        self.sig_sum = self.sig_w.sum(0)
        self.n_spots = int(totals.shape[0])
        self.n_types = int(signatures.shape[1])

    def _b(self, u: torch.Tensor) -> torch.Tensor:
        mass = (u @ self.sig_sum).clamp_min(_EPS)  # w^T B u per spot
        return self.sig_sum[None, :] * (self.has / mass)[:, None]

    def _scale_part(self, u: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        mass = (u @ self.sig_sum).clamp_min(_EPS)
        return (scale * mass * self.has * self.inv_t).sum()

    def optimal_scale(self, u: torch.Tensor) -> torch.Tensor:
        return self.totals / (u @ self.sig_sum).clamp_min(_EPS)

    def to_cell_fractions(self, u):
        return u / u.sum(1, keepdim=True).clamp_min(_EPS)


class KLData(_KLTerm):
    """Gene-weighted Poisson / KL data term on raw counts, per spot normalised by its total.

    ``sum_s 1/T_s * sum_g w_g KL(x_sg || N_s (B u_s)_g)`` with ``B`` the per-type mean raw
    counts per cell, ``w`` per-gene weights (the reference's ``1 / Fano factor``; all ones
    gives the plain KL term), ``T_s = sum_g w_g x_sg`` and the spot scale
    ``N_s = T_s / w^T B u_s`` set to its closed-form optimum before each update, so ``u_s``
    are cell fractions. Only the nonzeros of ``X`` enter: ``B u`` is sampled at them (SDDMM)
    and ``(W B)^T (x / B u)`` is a sparse-dense product, so a layer costs O(nnz(X) k) time
    and memory.
    """

    def __init__(
        self,
        x_csr: torch.Tensor,
        signatures: torch.Tensor,
        pattern_values: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ):
        self.crow = x_csr.crow_indices()
        self.col = x_csr.col_indices()
        self.vals = x_csr.values()
        self.shape = tuple(x_csr.shape)
        # sampled_addmm only reads the pattern; blocks share one zero buffer
        if pattern_values is None:
            pattern_values = torch.zeros_like(self.vals)
        self.pattern_values = pattern_values
        self.pattern = csr_tensor(self.crow, self.col, pattern_values, self.shape)
        if weights is None:
            weights = torch.ones(self.shape[1], dtype=self.vals.dtype, device=self.vals.device)
        self._set_common(_row_sums(x_csr, weights), signatures, weights)

    @classmethod
    def from_counts(
        cls, x_csr: torch.Tensor, signatures: torch.Tensor, weights: torch.Tensor | None = None
    ) -> KLData:
        """Prepare from a sparse CSR ``(m, n)`` count tensor, ``(n, k)`` signatures and
        optional ``(n,)`` gene weights."""
        return cls(x_csr, signatures, weights=weights)

    def _fitted_at_nonzeros(self, u: torch.Tensor) -> torch.Tensor:
        """``(B u)_sg`` at the nonzeros of ``X``, in CSR value order."""
        y = torch.sparse.sampled_addmm(self.pattern, u, self.sig.T, beta=0.0)
        return y.values().clamp_min(_EPS)

    def _csr(self, values: torch.Tensor) -> torch.Tensor:
        return csr_tensor(self.crow, self.col, values, self.shape)

    def pieces(self, u):
        c_log = _KLRatio.apply(u, self) * self.inv_t[:, None]
        return 0.0, self._b(u), 0.0, c_log

    def value(self, u, scale: torch.Tensor | None = None):
        """KL term; ``scale`` is ``N_s`` (default: its optimum ``T_s / w^T B u_s``)."""
        if scale is None:
            scale = self.optimal_scale(u)
        counts = self.crow[1:] - self.crow[:-1]
        per_nz = torch.repeat_interleave(self.inv_t, counts) * self.weights[self.col]
        y = self._fitted_at_nonzeros(u) * torch.repeat_interleave(scale, counts)
        x = self.vals
        data = ((x * torch.log(x / y) - x) * per_nz).sum()
        return data + self._scale_part(u, scale)

    def row_blocks(self, size):
        blocks = []
        for s in range(0, self.n_spots, size):
            e = min(s + size, self.n_spots)
            lo, hi = int(self.crow[s]), int(self.crow[e])
            sub = csr_tensor(
                self.crow[s : e + 1] - lo, self.col[lo:hi], self.vals[lo:hi], (e - s, self.shape[1])
            )
            blocks.append(
                (slice(s, e), KLData(sub, self.sig, self.pattern_values[lo:hi], self.weights))
            )
        return blocks


class DenseKLData(_KLTerm):
    """:class:`KLData` on a dense count matrix: the same objective and pieces.

    On small, dense slides (training crops of a few thousand spots, panels of a few hundred
    genes with most entries nonzero) dense matrix products are several times faster than
    torch's CPU sparse kernels, and autograd differentiates them directly. Chosen by
    :func:`make_kl_data`; entries with ``x = 0`` contribute only through ``N_s (B u_s)_g``,
    exactly as in the sparse term.
    """

    def __init__(self, x: torch.Tensor, signatures: torch.Tensor, weights: torch.Tensor):
        self.x = x
        self._set_common(x @ weights, signatures, weights)

    def _fitted(self, u: torch.Tensor) -> torch.Tensor:
        return (u @ self.sig.T).clamp_min(_EPS)

    def pieces(self, u):
        c_log = ((self.x / self._fitted(u)) @ self.sig_w) * self.inv_t[:, None]
        return 0.0, self._b(u), 0.0, c_log

    def value(self, u, scale: torch.Tensor | None = None):
        if scale is None:
            scale = self.optimal_scale(u)
        y = self._fitted(u) * scale[:, None]
        pos = self.x > 0
        xlogx = torch.where(pos, self.x * torch.log(torch.where(pos, self.x, 1.0) / y), 0.0)
        data = ((xlogx - self.x) * self.weights[None, :] * self.inv_t[:, None]).sum()
        return data + self._scale_part(u, scale)

    def row_blocks(self, size):
        return [
            (slice(s, s + size), DenseKLData(self.x[s : s + size], self.sig, self.weights))
            for s in range(0, self.n_spots, size)
        ]


# Dense counts when at least this fraction of entries is nonzero and the matrix is small:
# measured on the mouse_brain sample (1,200 spots x 306 genes, 76 % nonzero), 100 plain
# updates take 0.35 s sparse and 0.11 s dense on one CPU thread. The size cap bounds what
# autograd keeps per layer in training (a few dense m x n tensors instead of nnz values).
DENSE_MIN_DENSITY = 0.3
DENSE_MAX_ENTRIES = 1_000_000


def make_kl_data(
    x_csr: torch.Tensor, signatures: torch.Tensor, weights: torch.Tensor | None = None
) -> DataTerm:
    """The KL data term for a CSR count tensor: :class:`DenseKLData` for small, dense
    matrices, :class:`KLData` otherwise (same objective, same numbers to rounding)."""
    m, n = x_csr.shape
    entries = m * n
    if weights is None:
        weights = torch.ones(n, dtype=signatures.dtype, device=signatures.device)
    nnz = x_csr.values().numel()
    if 0 < entries <= DENSE_MAX_ENTRIES and nnz >= DENSE_MIN_DENSITY * entries:
        return DenseKLData(x_csr.to_dense(), signatures, weights)
    return KLData.from_counts(x_csr, signatures, weights)


def torch_csr(x: sp.csr_matrix, device, dtype) -> torch.Tensor:
    """A scipy CSR matrix as a torch CSR tensor of ``dtype`` on ``device``."""
    return csr_tensor(
        torch.as_tensor(x.indptr, dtype=torch.int64),
        torch.as_tensor(x.indices, dtype=torch.int64),
        torch.as_tensor(x.data, dtype=dtype),
        x.shape,
    ).to(device)


def make_data_term(
    x: sp.csr_matrix, signatures: np.ndarray, kind: str, device, dtype, weights=None
) -> DataTerm:
    """Prepare a data term (``kind`` "kl" or "frobenius") for counts ``x`` against
    ``signatures``; ``weights`` (n_genes,) weight the genes of the KL term (None: all
    ones)."""
    xt = torch_csr(x, device, dtype)
    sig = torch.as_tensor(signatures, dtype=dtype, device=device)
    if kind == "kl":
        w = None if weights is None else torch.as_tensor(weights, dtype=dtype, device=device)
        return make_kl_data(xt, sig, w)
    return FrobeniusData.from_counts(xt, sig)


class _KLRatio(torch.autograd.Function):
    """``(W B)^T (x / B u)`` per spot over the nonzeros of ``x``, with a hand-written backward.

    torch's autograd through ``sampled_addmm`` and CSR products gave wrong gradients here
    (checked against finite differences), so both directions use the same two sparse
    kernels: an SDDMM and a CSR x dense product. With ``y = B u`` at the nonzeros, gene
    weights ``w`` and an upstream gradient ``G``: ``dL/du = -R B`` where
    ``R_sg = (G (W B)^T)_sg x_sg / y_sg^2``.
    """

    @staticmethod
    def forward(ctx, u, data):
        y = data._fitted_at_nonzeros(u)
        ctx.data = data
        ctx.save_for_backward(y)
        return data._csr(data.vals / y) @ data.sig_w

    @staticmethod
    def backward(ctx, grad):
        data = ctx.data
        (y,) = ctx.saved_tensors
        g_at = torch.sparse.sampled_addmm(data.pattern, grad.contiguous(), data.sig_w.T, beta=0.0)
        weights = -g_at.values() * data.vals / (y * y)
        return data._csr(weights) @ data.sig, None


def _row_sums(x_csr: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    if weights is None:
        weights = torch.ones(x_csr.shape[1], dtype=x_csr.dtype, device=x_csr.device)
    return (x_csr @ weights[:, None].to(x_csr.dtype))[:, 0]


def _row_sq_sums(x_csr: torch.Tensor) -> torch.Tensor:
    crow = x_csr.crow_indices()
    counts = crow[1:] - crow[:-1]
    rows = torch.repeat_interleave(torch.arange(counts.shape[0], device=crow.device), counts)
    vals = x_csr.values()
    out = torch.zeros(counts.shape[0], dtype=vals.dtype, device=vals.device)
    return out.index_add(0, rows, vals * vals)
