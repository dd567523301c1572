"""Fitted STL NMF models on disk, without pickle: safetensors (tensors) + JSON (the rest).

A model is one ``.safetensors`` file whose metadata holds the JSON: format version,
network config, cell types, genes, regions, spot pitch, signatures are a tensor. Loading
checks the version, the sizes and every tensor's shape before anything is built.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..core.estimator import STLNMF
from ..core.model import NetConfig, STLNMFNet
from ..core.reference import Reference
from .atomic import atomic_write

__all__ = ["save_model", "load_model", "ModelFileError", "FORMAT", "FORMAT_VERSION"]

FORMAT = "napari-stlnmf-model"
FORMAT_VERSION = 1
MAX_BYTES = 2 * 1024**3  # a model is signatures + a few hundred scalars; refuse absurd files


class ModelFileError(ValueError):
    """A model file that is not a valid napari-stlnmf model (names the file and the problem)."""


def save_model(model: STLNMF, path: str | os.PathLike) -> Path:
    """Write a fitted :class:`STLNMF` atomically to ``path`` (``.safetensors``)."""
    model._check_fitted()
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.net_.state_dict().items()}
    tensors["signatures"] = torch.as_tensor(
        np.ascontiguousarray(model.reference_.signatures), dtype=torch.float64
    )
    # the data term's per-gene weights came from the reference cells, which are not saved
    tensors["gene_weights"] = torch.as_tensor(
        np.ascontiguousarray(model.reference_.weights), dtype=torch.float64
    )
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.net_.config.to_dict(),
        "settings": {k: getattr(model, k) for k in STLNMF.SETTINGS},
        "cell_types": model.reference_.cell_types,
        "genes": model.reference_.genes,
        "regions": [_jsonable(r) for r in model.regions_],
        "pitch": model.pitch_,
        "history": model.history_,
    }
    lib = getattr(model, "library_sizes_", None)
    if lib is not None:
        # mean counts per cell of each type over all reference genes (for mRNA fractions)
        meta["library_sizes"] = [float(v) for v in lib]
    from .. import __version__

    meta["package_version"] = __version__
    return atomic_write(
        path, lambda tmp: save_file(tensors, tmp, metadata={"stlnmf": json.dumps(meta)})
    )


def _jsonable(v):
    return v.item() if isinstance(v, np.generic) else v


def load_model(
    path: str | os.PathLike, genes: list[str] | None = None, cell_types: list[str] | None = None
) -> STLNMF:
    """Load a model saved by :func:`save_model`, checking it before use.

    Parameters
    ----------
    path : path to the ``.safetensors`` file
    genes, cell_types : lists, optional
        When given, they must equal the model's; the error says what differs.

    Raises
    ------
    ModelFileError
        Not a model file, another format version, or inconsistent contents.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if path.stat().st_size > MAX_BYTES:
        raise ModelFileError(f"{path}: {path.stat().st_size} bytes is too large for a model")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw_meta = (f.metadata() or {}).get("stlnmf")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors model ({exc})") from None
    if raw_meta is None:
        raise ModelFileError(f"{path}: no napari-stlnmf metadata (not a model saved by this tool)")
    try:
        meta = json.loads(raw_meta)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: corrupt metadata ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: corrupt metadata (not a JSON object)")
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: format {meta.get('format')!r} is not {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {meta.get('format_version')} is not supported "
            f"(this version reads {FORMAT_VERSION}; saved by napari-stlnmf "
            f"{meta.get('package_version')})"
        )
    try:
        config = NetConfig(**meta["config"])
        ctypes, mgenes, regions = meta["cell_types"], meta["genes"], meta["regions"]
        pitch = float(meta["pitch"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: incomplete metadata ({exc})") from None
    for what, names in (("cell_types", ctypes), ("genes", mgenes)):
        if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
            raise ModelFileError(f"{path}: corrupt metadata ({what} must be a list of names)")
    if not isinstance(regions, list):
        raise ModelFileError(f"{path}: corrupt metadata (regions must be a list)")
    k, n = len(ctypes), len(mgenes)
    expected = {"signatures": (n, k), "omega_raw": (config.n_regions, config.n_types)}
    n_sets = 1 if config.tied else config.n_layers
    expected["log_lambda"] = (n_sets, 3)
    expected["log_sigma"] = (n_sets, 2)
    if config.n_types != k or config.n_regions != len(regions):
        raise ModelFileError(f"{path}: config does not match its cell types / regions")
    for name, shape in expected.items():
        if name not in tensors:
            raise ModelFileError(f"{path}: tensor {name!r} is missing")
        if tuple(tensors[name].shape) != shape:
            raise ModelFileError(
                f"{path}: tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {shape}"
            )
        if not torch.isfinite(tensors[name]).all():
            raise ModelFileError(f"{path}: tensor {name!r} has NaN or infinite values")
    if "gene_weights" in tensors:
        w = tensors["gene_weights"]
        if tuple(w.shape) != (n,) or not torch.isfinite(w).all() or (w <= 0).any():
            raise ModelFileError(f"{path}: tensor 'gene_weights' must be {n} positive numbers")
    extra = set(tensors) - set(expected) - {"gene_weights"}
    if extra:
        raise ModelFileError(f"{path}: unexpected tensors {sorted(extra)}")
    if genes is not None and list(genes) != list(mgenes):
        raise ModelFileError(f"{path}: {_diff('genes', mgenes, genes)}")
    if cell_types is not None and list(cell_types) != list(ctypes):
        raise ModelFileError(f"{path}: {_diff('cell types', ctypes, cell_types)}")
    try:
        reference = Reference.from_signatures(tensors["signatures"].numpy(), mgenes, ctypes)
        if "gene_weights" in tensors:
            reference.gene_weights = tensors["gene_weights"].numpy().astype(np.float64)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None

    settings = meta.get("settings") or {}
    if not isinstance(settings, dict):
        raise ModelFileError(f"{path}: corrupt metadata (settings must be an object)")
    settings = {k: v for k, v in settings.items() if k in STLNMF.SETTINGS}
    try:
        model = STLNMF(**settings)
        net = STLNMFNet(config)
        state = {
            k: v.to(torch.float32)
            for k, v in tensors.items()
            if k not in ("signatures", "gene_weights")
        }
        net.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: invalid network settings ({exc})") from None
    model.net_ = net.eval()
    model.reference_ = reference
    model.regions_ = regions
    model.pitch_ = pitch
    model.history_ = meta.get("history", [])
    lib = meta.get("library_sizes")
    if lib is not None:
        lib = np.asarray(lib, dtype=np.float64)
        if lib.shape != (k,) or not np.all(np.isfinite(lib)) or (lib <= 0).any():
            raise ModelFileError(f"{path}: library_sizes must be {k} positive numbers")
    model.library_sizes_ = lib
    model.fit_seconds_ = 0.0
    return model


def _diff(what: str, model_names, data_names) -> str:
    a, b = set(model_names), set(data_names)
    only_m, only_d = sorted(a - b)[:5], sorted(b - a)[:5]
    if not only_m and not only_d:
        return f"the {what} are the same but in another order"
    return (
        f"the model's {what} differ from the data's: {len(a - b)} only in the model "
        f"(e.g. {only_m}), {len(b - a)} only in the data (e.g. {only_d})"
    )
