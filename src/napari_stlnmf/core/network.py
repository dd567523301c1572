"""The unrolled STL NMF network: each layer one multiplicative update, then a per-spot
normalisation. Learnable: lambda1..3, sigma1, sigma2 (positive through ``exp``) and the
per-region group weights omega (non-negative through ``softplus``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from numbers import Integral, Real

import torch
from torch import nn
from torch.nn import functional as F

from . import _fused
from .data_terms import DataTerm, mm_factor, ratio_factor
from .graph import SpotGraph
from .validation import Interval

__all__ = [
    "NetConfig",
    "STLNMFNet",
    "plain_updates",
    "is_net_init",
    "DATA_TERMS",
    "GROUPS",
    "UPDATES",
    "INIT_FIELDS",
]

_FLOOR = 1e-8

#: Allowed values of :class:`NetConfig`'s ``data_term``, ``group`` and ``update``.
DATA_TERMS = ("kl", "frobenius")
GROUPS = ("region", "literal", "none")
UPDATES = ("mm", "ratio")
#: :class:`NetConfig`'s initial values of the learned parameters (all positive).
INIT_FIELDS = ("lambda1", "lambda2", "lambda3", "sigma1", "sigma2", "omega")


@dataclass
class NetConfig:
    """Hyper-parameters of the unrolled network (all JSON-serialisable).

    Attributes
    ----------
    n_types, n_regions : int
    n_layers : int
        Number of unrolled updates.
    tied : bool
        One set of lambda/sigma shared by every layer (True) or one per layer.
    data_term : {"kl", "frobenius"}
    group : {"region", "literal", "none"}
        ``region``: sum_s ||omega_{r(s)} * u_s||^2; ``literal``: the paper's ||W V||_F^2 with
        W m-tall (acts as one k x k quadratic form shared by all spots); ``none``: off.
    update : {"mm", "ratio"}
        ``mm``: the majorise-minimise rule (monotone); ``ratio``: the paper's split rule.
    lambda1, lambda2, lambda3, sigma1, sigma2, omega : float
        Initial values (sigma1 in spot pitches).
    warm_start : int
        Plain (unregularised) multiplicative updates run before the learned layers, with
        no gradient: the layers then refine the data term's own estimate instead of
        spending their depth on converging from uniform fractions (a KL update on 10,000
        genes needs ~300 iterations; 60 layers from uniform stop far from it).
    """

    n_types: int
    n_regions: int = 1
    n_layers: int = 60
    tied: bool = True
    data_term: str = "kl"
    group: str = "region"
    update: str = "mm"
    lambda1: float = 0.02
    lambda2: float = 0.01
    lambda3: float = 0.01
    sigma1: float = 1.0
    sigma2: float = 1.0
    omega: float = 1.0
    warm_start: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def is_net_init(value) -> bool:
    """A dict of initial values a caller may give for :class:`NetConfig`: positive
    ``INIT_FIELDS`` and a non-negative integer ``warm_start``."""
    if not isinstance(value, dict):
        return False
    for key, v in value.items():
        if key == "warm_start":
            ok = v in Interval(Integral, 0, None)
        else:
            ok = key in INIT_FIELDS and v in Interval(Real, 0, None, closed="neither")
        if not ok:
            return False
    return True


def _inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class STLNMFNet(nn.Module):
    """Unrolled STL NMF (see ``docs/method.md`` for the update it unrolls)."""

    def __init__(self, config: NetConfig):
        super().__init__()
        # the network's own invariants (a config may come from a file, not from STLNMF)
        if config.data_term not in DATA_TERMS:
            raise ValueError(f"data_term must be 'kl' or 'frobenius', got {config.data_term!r}")
        if config.group not in GROUPS:
            raise ValueError(f"group must be 'region', 'literal' or 'none', got {config.group!r}")
        if config.update not in UPDATES:
            raise ValueError(f"update must be 'mm' or 'ratio', got {config.update!r}")
        self.config = config
        n_sets = 1 if config.tied else config.n_layers
        lam0 = torch.log(torch.tensor([config.lambda1, config.lambda2, config.lambda3]))
        sig0 = torch.log(torch.tensor([config.sigma1, config.sigma2]))
        self.log_lambda = nn.Parameter(lam0.repeat(n_sets, 1))
        self.log_sigma = nn.Parameter(sig0.repeat(n_sets, 1))
        self.omega_raw = nn.Parameter(
            torch.full((config.n_regions, config.n_types), _inv_softplus(config.omega))
        )

    @staticmethod
    def parameter_shapes(config: NetConfig) -> dict[str, tuple[int, ...]]:
        """Shape of every tensor of the network's ``state_dict`` for ``config``."""
        n_sets = 1 if config.tied else config.n_layers
        return {
            "log_lambda": (n_sets, 3),
            "log_sigma": (n_sets, 2),
            "omega_raw": (config.n_regions, config.n_types),
        }

    # -- learned parameters in their natural units ------------------------------------
    @property
    def lambdas(self) -> torch.Tensor:
        """(n_sets, 3) tensor of lambda1..3."""
        return self.log_lambda.exp()

    @property
    def sigmas(self) -> torch.Tensor:
        """(n_sets, 2) tensor of sigma1 (spot pitches), sigma2."""
        return self.log_sigma.exp()

    @property
    def omega(self) -> torch.Tensor:
        """(n_regions, n_types) non-negative group weights."""
        return F.softplus(self.omega_raw)

    def omega_for_inference(self) -> torch.Tensor:
        """omega with one extra row, the mean over regions, for regions unseen in training
        (their index is ``n_regions``)."""
        om = self.omega
        return torch.cat([om, om.mean(0, keepdim=True)])

    # -- one layer ----------------------------------------------------------------------
    def terms(self, graph: SpotGraph, region_idx: torch.Tensor, layer: int = 0) -> LayerTerms:
        """Constants of one layer (all layers share them when tied)."""
        p = 0 if self.config.tied else layer
        lam1, lam2, lam3 = self.lambdas[p]
        sig1, sig2 = self.sigmas[p]
        w = graph.weights(sig1, sig2)
        return layer_terms(
            graph,
            w,
            region_idx,
            self.omega_for_inference(),
            lam1,
            lam2,
            lam3,
            self.config.group,
            graph.n_nodes,
        )

    def step(
        self,
        u: torch.Tensor,
        data: DataTerm,
        graph: SpotGraph,
        region_idx: torch.Tensor,
        layer: int = 0,
    ) -> torch.Tensor:
        """One multiplicative update (no normalisation)."""
        terms = self.terms(graph, region_idx, layer)
        return apply_step(u, data, terms, self.config.group, self.config.update)

    def forward(
        self,
        data: DataTerm,
        graph: SpotGraph,
        region_idx: torch.Tensor,
        u0: torch.Tensor | None = None,
        callback=None,
        block_rows: int = 8192,
    ) -> torch.Tensor:
        """Run every layer; returns cell fractions (m, k), rows summing to 1.

        Without autograd and above ``block_rows`` spots, layers run block by block of rows
        (same numbers, far less memory traffic on large slides)."""
        m, k = data.n_spots, data.n_types
        dtype = self.log_lambda.dtype
        device = self.log_lambda.device
        u = torch.full((m, k), 1.0 / k, dtype=dtype, device=device) if u0 is None else u0
        if not torch.is_grad_enabled() and dtype == torch.float32:
            fused = _fused.fused_for(data)
            if fused is not None and self._fusable():
                return self._forward_fused(fused, data, graph, region_idx, u, u0 is None, callback)
        terms = None
        blocks = None
        if not torch.is_grad_enabled() and m > block_rows:
            blocks = data.row_blocks(block_rows)
        if u0 is None and self.config.warm_start > 0:
            u = plain_updates(u, data, self.config.warm_start, blocks)
        for layer in range(self.config.n_layers):
            if terms is None or not self.config.tied:
                terms = self.terms(graph, region_idx, layer)
            if blocks is not None:
                u = blocked_layer(u, blocks, terms, self.config.group, self.config.update)
            else:
                u = apply_step(u, data, terms, self.config.group, self.config.update)
                u = _normalise(u)
            if callback is not None:
                callback(layer)
        return data.to_cell_fractions(u)

    def _fusable(self) -> bool:
        return self.config.update == "mm" and self.config.group in ("region", "none")

    def _forward_fused(self, fused, data, graph, region_idx, u, warm, callback):
        """:meth:`forward` on the CPU through the fused kernel (same updates, float32)."""
        arr = u.detach().numpy()
        if warm and self.config.warm_start > 0:
            arr = _fused.run_updates(fused, arr, self.config.warm_start)
        # tied: one set of layer constants for every layer; untied: one per layer
        per_set = self.config.n_layers if self.config.tied else 1
        for offset in range(0, self.config.n_layers, per_set):
            terms = self.terms(graph, region_idx, offset)
            adj, gw = terms.adjacency, terms.group_weights
            arr = _fused.run_updates(
                fused,
                arr,
                per_set,
                graph=(
                    adj.crow_indices().numpy(),
                    adj.col_indices().numpy(),
                    adj.values().numpy(),
                ),
                deg=terms.deg.numpy(),
                group_weights=None if gw is None else gw.numpy(),
                lambdas=(float(terms.lam1), float(terms.lam2), float(terms.lam3)),
                callback=None if callback is None else (lambda i, o=offset: callback(o + i)),
            )
        out = torch.from_numpy(arr)
        return data.to_cell_fractions(out)


def plain_updates(u: torch.Tensor, data: DataTerm, n_iter: int, blocks=None) -> torch.Tensor:
    """``n_iter`` unregularised multiplicative updates of the data term alone (no grad)."""
    fused = _fused.fused_for(data) if u.dtype == torch.float32 and u.device.type == "cpu" else None
    if fused is not None:
        return torch.from_numpy(_fused.run_updates(fused, u.detach().numpy(), n_iter))
    with torch.no_grad():
        if blocks is not None:
            parts = [plain_updates(u[sl], d, n_iter) for sl, d in blocks]
            return torch.cat(parts, dim=0)
        for _ in range(n_iter):
            a, b, c_lin, c_log = data.pieces(u)
            u = _normalise(u * mm_factor(torch.as_tensor(a), b - c_lin, torch.as_tensor(c_log)))
    return u.detach()


def _group_weights(omega: torch.Tensor, region_idx: torch.Tensor, group: str, m: int):
    if group == "region":
        return (omega * omega)[region_idx]  # (m, k)
    if group == "literal":
        counts = torch.bincount(region_idx, minlength=omega.shape[0]).to(omega.dtype)
        return (omega.T * (counts / m)) @ omega  # (k, k) = W^T W / m
    return None


@dataclass
class LayerTerms:
    """Everything a layer needs besides ``u`` and the data; constant across tied layers."""

    lam1: torch.Tensor
    lam2: torch.Tensor
    lam3: torch.Tensor
    deg: torch.Tensor  # (m,) weighted degree
    propagate: Callable[[torch.Tensor], torch.Tensor]  # u -> A u
    group_weights: torch.Tensor | None  # (m, k) for "region", (k, k) for "literal"
    adjacency: torch.Tensor | None = None  # A as CSR (m, m); None under autograd


def layer_terms(
    graph: SpotGraph,
    w: torch.Tensor,
    region_idx: torch.Tensor,
    omega: torch.Tensor,
    lam1: torch.Tensor,
    lam2: torch.Tensor,
    lam3: torch.Tensor,
    group: str,
    m: int,
) -> LayerTerms:
    """Precompute a layer's constants. Without autograd, ``A u`` uses a CSR matrix (one
    fast sparse product); with autograd, an edge-list scatter whose gradient reaches w."""
    adj = None
    if torch.is_grad_enabled() and w.requires_grad:

        def propagate(u):
            return graph.propagate(w, u)
    else:
        adj = graph.csr(w)

        def propagate(u):
            return adj @ u

    gw = _group_weights(omega, region_idx, group, m)
    return LayerTerms(lam1, lam2, lam3, graph.degree(w), propagate, gw, adj)


def _update(u, data, lam1, lam2, lam3, deg, au, gw, group, update):
    """The update of the rows ``u`` given their data term, degrees, ``A u`` rows and group
    weights (shared by the whole-slide and the row-block paths)."""
    a, b, c_lin, c_log = data.pieces(u)
    a = a + lam1 * deg[:, None] * u + lam2 * u.sum(1, keepdim=True)
    c_log = c_log + lam1 * au
    c_lin = c_lin + lam2
    if gw is not None:
        a = a + lam3 * (gw * u if group == "region" else u @ gw)
    if update == "ratio":
        return u * ratio_factor(a, b, c_lin, c_log)
    beta = b - c_lin
    if not torch.is_tensor(beta):
        beta = torch.full_like(u, float(beta))
    return u * mm_factor(a, beta, c_log)


def apply_step(
    u: torch.Tensor, data: DataTerm, terms: LayerTerms, group: str, update: str
) -> torch.Tensor:
    """One update ``U * t`` of the regularised objective (see module docs of ``layers``)."""
    return _update(
        u,
        data,
        terms.lam1,
        terms.lam2,
        terms.lam3,
        terms.deg,
        terms.propagate(u),
        terms.group_weights,
        group,
        update,
    )


def _normalise(u: torch.Tensor) -> torch.Tensor:
    return (u / u.sum(1, keepdim=True).clamp_min(1e-30)).clamp_min(_FLOOR)


def blocked_layer(
    u: torch.Tensor, blocks, terms: LayerTerms, group: str, update: str
) -> torch.Tensor:
    """Update + normalisation, computed block of rows by block of rows (inference only).

    Only ``A u`` needs the whole slide; everything else is row-local, so working on blocks
    of a few thousand spots keeps the ~30 temporaries of a layer in cache instead of
    streaming slide-sized arrays through memory 30 times.
    """
    au = terms.propagate(u)
    gw = terms.group_weights
    out = torch.empty_like(u)
    for rows, data in blocks:
        g = gw[rows] if (gw is not None and group == "region") else gw
        new = _update(
            u[rows],
            data,
            terms.lam1,
            terms.lam2,
            terms.lam3,
            terms.deg[rows],
            au[rows],
            g,
            group,
            update,
        )
        out[rows] = _normalise(new)
    return out
