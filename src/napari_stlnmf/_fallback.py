"""GPU -> CPU fallback on out-of-memory, for :func:`napari_stlnmf.pipeline.train` and
:func:`~napari_stlnmf.pipeline.deconvolve`.

A run that exhausts the GPU's memory is redone on the CPU (same seed, so the numbers are
those of a CPU run) after one :class:`DeviceFallbackWarning`; a run that exhausts the CPU's
memory too ends in a one-line :class:`NotEnoughMemoryError` that says what to reduce.
Nothing here touches Qt or napari.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from .core import device as _device
from .io.errors import InputError, one_line

__all__ = [
    "DeviceFallbackWarning",
    "NotEnoughMemoryError",
    "with_cpu_fallback",
    "model_device",
    "to_cpu",
]


class DeviceFallbackWarning(RuntimeWarning):
    """The GPU ran out of memory and the run was redone on the CPU.

    A :class:`RuntimeWarning` (not a :class:`ResourceWarning`, which Python hides by
    default) so that scripts and the napari console show it.
    """


class NotEnoughMemoryError(InputError):
    """Not even the CPU has the memory for this run; the message says what to reduce."""


def is_gpu_oom(error: BaseException) -> bool:
    """An accelerator allocator failure (``torch.OutOfMemoryError``, or a RuntimeError such
    as "CUDA error: out of memory"). CPU allocation failures are MemoryError or "can't
    allocate memory", never these."""
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(error, oom):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def is_cpu_oom(error: BaseException) -> bool:
    """A host allocation failure: MemoryError, or torch's "can't allocate memory"."""
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error).lower()
    )


def _free_gpu_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _memory_hint(shape: tuple[int, int], what: str) -> str:
    m, n = shape
    return (
        f"not enough memory to {what} {m} spots x {n} genes, even on the CPU: deconvolve "
        "fewer spots per run (split the slide), use fewer marker genes "
        "(--markers-per-type / n_markers), or close other programs"
    )


def _on_cpu_or_hint(run: Callable, shape: tuple[int, int], what: str):
    """``run()``, with CPU out-of-memory turned into a one-line NotEnoughMemoryError."""
    try:
        return run()
    except Exception as e:
        if not is_cpu_oom(e):
            raise
    _free_gpu_memory()
    raise NotEnoughMemoryError(_memory_hint(shape, what))


def with_cpu_fallback(
    run: Callable[[bool], object],
    *,
    on_gpu: bool,
    shape: tuple[int, int],
    what: str,
    message: Callable[[str], str],
    to_cpu: Callable[[], object] | None = None,
    stacklevel: int = 3,
):
    """``run(on_cpu=False)`` on the GPU; on GPU out-of-memory, free the cache, warn once
    (:class:`DeviceFallbackWarning` with ``message(reason)``), call ``to_cpu`` and
    ``run(on_cpu=True)``. CPU out-of-memory becomes a one-line NotEnoughMemoryError that
    names ``what`` and the data's ``shape`` (spots, genes).

    ``stacklevel`` counts from this function, as for :func:`warnings.warn`: 3 points the
    warning at the caller of the function that calls this one.
    """
    if on_gpu:
        try:
            return _on_cpu_or_hint(lambda: run(False), shape, what)
        except NotEnoughMemoryError:
            raise
        except Exception as e:
            if not is_gpu_oom(e):
                raise
            reason = one_line(e, limit=160)
        # out of the except block: the failed run's GPU tensors can now be freed
        _free_gpu_memory()
        warnings.warn(message(reason), DeviceFallbackWarning, stacklevel=stacklevel)
        if to_cpu is not None:
            to_cpu()
    return _on_cpu_or_hint(lambda: run(on_gpu), shape, what)


def model_device(model) -> torch.device:
    """Where ``model`` computes: its network's device, or its ``device`` setting."""
    net = getattr(model, "net_", None)
    if net is not None:
        return next(net.parameters()).device
    if getattr(model, "device", None) is not None:
        return _device.resolve_device(model.device)
    return torch.device("cpu")


def to_cpu(model) -> None:
    """Move a fitted model's computation to the CPU (in place)."""
    if getattr(model, "net_", None) is not None:
        model.net_.to("cpu")
    elif hasattr(model, "device"):
        model.device = "cpu"
