import numpy as np
import pytest
import scipy.sparse as sp
import torch

from napari_stlnmf.core.data_terms import DenseKLData, FrobeniusData, KLData
from napari_stlnmf.core.graph import build_graph


def random_problem(seed=0, m=60, n=40, k=5, n_regions=3):
    """Small random slide: counts, signatures, coords, regions (float64 tensors)."""
    rng = np.random.default_rng(seed)
    sig = rng.gamma(0.6, 2.0, size=(n, k))
    u_true = rng.dirichlet(np.full(k, 0.5), size=m) * rng.uniform(2, 10, size=(m, 1))
    x = rng.poisson(u_true @ sig.T).astype(float)
    x[x.sum(1) == 0, 0] = 1.0
    coords = rng.uniform(0, 8, size=(m, 2))
    regions = rng.integers(0, n_regions, size=m)
    return sp.csr_matrix(x), sig, coords, regions


def torch_csr(x):
    return torch.sparse_csr_tensor(
        torch.as_tensor(x.indptr, dtype=torch.int64),
        torch.as_tensor(x.indices, dtype=torch.int64),
        torch.as_tensor(x.data, dtype=torch.float64),
        size=x.shape,
        check_invariants=False,
    )


@pytest.fixture(params=["kl", "frobenius"])
def data_term(request):
    return request.param


def make_data(kind, x, sig):
    """``kind``: "kl", "frobenius", "kl_weighted" (KL with random gene weights) or
    "kl_dense" (the dense implementation of the weighted KL term)."""
    sig_t = torch.as_tensor(sig, dtype=torch.float64)
    w = torch.as_tensor(np.random.default_rng(7).uniform(0.05, 1.0, size=sig.shape[0]))
    if kind == "kl_weighted":
        return KLData.from_counts(torch_csr(x), sig_t, w)
    if kind == "kl_dense":
        return DenseKLData(torch.as_tensor(x.toarray(), dtype=torch.float64), sig_t, w)
    cls = KLData if kind == "kl" else FrobeniusData
    return cls.from_counts(torch_csr(x), sig_t)


def make_graph(coords, regions):
    return build_graph(coords, regions, radius=1.5, dtype=torch.float64)
