"""Device selection: CPU by default, CUDA when asked for or when ``auto`` finds it."""

from __future__ import annotations

from contextlib import contextmanager

import torch

__all__ = ["resolve_device", "cpu_threads", "threads_for"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Map ``"auto"``/``"cpu"``/``"cuda[:i]"`` to a torch device, with a clear error."""
    if isinstance(device, torch.device):
        device = str(device)
    device = str(device).lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was asked for but CUDA is not available here "
                "(use device='cpu' or 'auto')"
            )
        return torch.device(device)
    if device == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'")


@contextmanager
def cpu_threads(n: int | None):
    """Run a block with ``n`` torch CPU threads (None: leave as is), then restore.

    Small sparse problems (training crops, small slides) run several times faster on one
    thread, and dramatically faster when the machine is busy: torch's thread pool then
    spins on every one of the thousands of tiny ops of an unrolled network.
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def threads_for(work: int, device: torch.device) -> int | None:
    """torch threads for a CPU fit: one, whatever the size (``work`` is kept for callers).

    The KL layers run in the fused kernel's own thread pool (``core/_fused.py``); what is
    left on torch (training's autograd, the Frobenius term, the fallback without numba)
    spends its time in thousands of small ops, where torch's OpenMP team spin-waits: on a
    50,000-bin slide the Frobenius fit took 1.5 s on one thread and on two, but 4.7 s on
    two with one core busy, and 1.5 s on one (docs/benchmarks.md).
    """
    return 1 if device.type == "cpu" else None
