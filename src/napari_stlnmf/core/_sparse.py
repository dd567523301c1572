"""torch CSR tensors, without torch's one-time "beta" notice reaching the user."""

from __future__ import annotations

import warnings

import torch

__all__ = ["csr_tensor"]

_BETA_NOTICE = "Sparse CSR tensor support is in beta"
_notice_silenced = False


def csr_tensor(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, size) -> torch.Tensor:
    """``torch.sparse_csr_tensor(crow, col, values, size)``, invariants not re-checked.

    torch warns "Sparse CSR tensor support is in beta" once per process, at the first CSR
    tensor; the CSR operations used here are stable. So the first construction runs under
    a scoped filter, instead of a filter installed for the whole program at import. Later
    constructions skip ``catch_warnings``: it is not thread-safe (the napari widget trains
    in a worker thread) and these calls sit in the layers' loops.
    """
    global _notice_silenced
    if _notice_silenced:
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_BETA_NOTICE)
        out = torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)
    _notice_silenced = True
    return out
