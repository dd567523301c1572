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
    """One thread for problems below ~4M nonzero x type entries on CPU, else torch's default."""
    return 1 if device.type == "cpu" and work < 4_000_000 else None
