"""Spot adjacency graph (paper eq. 1) as a fixed sparse edge list with learnable weights.

The edge *set* is found once with a KD-tree (radius in units of the spot pitch); the edge
*weights* ``a_ij = exp(-d_ij^2 / sigma1^2 - 4 [r_i != r_j] / sigma2^2)`` are recomputed from
``sigma1, sigma2`` inside the torch graph, so both sigmas receive gradients. The ``4`` is
``||z_i - z_j||_1^2`` for one-hot region memberships ``z`` that differ.
A dense ``m x m`` matrix is never formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from ._sparse import csr_tensor

__all__ = ["SpotGraph", "build_graph", "spot_pitch"]


def spot_pitch(coords: np.ndarray) -> float:
    """Median nearest-neighbour distance between distinct spots.

    Parameters
    ----------
    coords : ndarray of shape (m, 2)

    Returns
    -------
    float
        The pitch, used as the length unit of the graph (so ``sigma1 = 1`` means one spot).
        1.0 when fewer than two spots or all spots coincide.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape[0] < 2:
        return 1.0
    tree = cKDTree(coords)
    dist, _ = tree.query(coords, k=2)
    nn = dist[:, 1]
    nn = nn[nn > 0]
    if nn.size == 0:
        return 1.0
    return float(np.median(nn))


@dataclass
class SpotGraph:
    """Directed edge list (both directions of every undirected edge) of a spot graph.

    Attributes
    ----------
    src, dst : LongTensor of shape (E,)
        Edge endpoints; ``(A u)_src += a * u_dst``.
    dist2 : Tensor of shape (E,)
        Squared distance in pitch units.
    cross : Tensor of shape (E,)
        1.0 where the endpoints lie in different regions, else 0.0.
    n_nodes : int
    pitch : float
        Length unit (original coordinate units per pitch).
    """

    src: torch.Tensor
    dst: torch.Tensor
    dist2: torch.Tensor
    cross: torch.Tensor
    n_nodes: int
    pitch: float

    @property
    def n_edges(self) -> int:
        return int(self.src.shape[0])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> SpotGraph:
        dtype = dtype or self.dist2.dtype
        return SpotGraph(
            self.src.to(device),
            self.dst.to(device),
            self.dist2.to(device, dtype),
            self.cross.to(device, dtype),
            self.n_nodes,
            self.pitch,
        )

    def weights(self, sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
        """Edge weights of eq. 1, differentiable in ``sigma1`` and ``sigma2``."""
        return torch.exp(-self.dist2 / sigma1**2 - 4.0 * self.cross / sigma2**2)

    def degree(self, w: torch.Tensor) -> torch.Tensor:
        """Weighted degree ``D_ii = sum_j a_ij`` as an (m,) tensor."""
        deg = torch.zeros(self.n_nodes, dtype=w.dtype, device=w.device)
        return deg.index_add(0, self.src, w)

    def propagate(self, w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``A @ u`` for an (m, k) tensor ``u``, computed over the edge list."""
        out = torch.zeros_like(u)
        if self.n_edges == 0:
            return out
        return out.index_add(0, self.src, u[self.dst] * w[:, None])

    def csr(self, w: torch.Tensor) -> torch.Tensor:
        """The weighted adjacency as a sparse CSR (m, m) tensor (edges are sorted by src)."""
        counts = torch.bincount(self.src, minlength=self.n_nodes)
        crow = torch.zeros(self.n_nodes + 1, dtype=torch.int64, device=self.src.device)
        crow[1:] = torch.cumsum(counts, 0)
        return csr_tensor(crow, self.dst, w, (self.n_nodes, self.n_nodes))


def build_graph(
    coords: np.ndarray,
    regions: np.ndarray | None = None,
    radius: float = 1.5,
    pitch: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> SpotGraph:
    """Build the radius graph of spots.

    Parameters
    ----------
    coords : ndarray of shape (m, 2)
        Spot centres in any unit (pixels, micrometres).
    regions : ndarray of shape (m,), optional
        Region label per spot; ``None`` puts every spot in one region.
    radius : float, default 1.5
        Neighbourhood radius in units of the spot pitch. 1.5 gives the 6 hexagonal
        neighbours of a Visium spot and the 8 neighbours of a square grid.
    pitch : float, optional
        Length unit; by default the median nearest-neighbour distance.
    dtype : torch dtype of the float tensors.

    Returns
    -------
    SpotGraph
        Without self loops; coincident spots are joined with distance 0.
    """
    coords = np.asarray(coords, dtype=np.float64)
    m = coords.shape[0]
    if pitch is None:
        pitch = spot_pitch(coords)
    scaled = coords / pitch
    if m >= 2:
        pairs = cKDTree(scaled).query_pairs(r=radius, output_type="ndarray")
    else:
        pairs = np.empty((0, 2), dtype=np.int64)
    i, j = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    order = np.lexsort((dst, src))  # CSR order: by source, then target
    src, dst = src[order], dst[order]
    d2 = ((scaled[src] - scaled[dst]) ** 2).sum(axis=1)
    if regions is None:
        cross = np.zeros(src.shape[0])
    else:
        regions = np.asarray(regions)
        cross = (regions[src] != regions[dst]).astype(np.float64)
    return SpotGraph(
        torch.as_tensor(src),
        torch.as_tensor(dst),
        torch.as_tensor(d2, dtype=dtype),
        torch.as_tensor(cross, dtype=dtype),
        m,
        float(pitch),
    )
