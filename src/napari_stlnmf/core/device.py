"""Device selection: CPU by default, CUDA when asked for or when ``auto`` finds it."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "available_devices"]


def available_devices() -> list[str]:
    """Devices usable here, e.g. ``["cpu", "cuda"]``."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


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
