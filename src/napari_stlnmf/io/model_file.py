"""Fitted STL NMF models on disk, without pickle: safetensors (tensors) + JSON (the rest).

A model is one ``.safetensors`` file: the tensors (network parameters, signatures, gene
weights) and, in its metadata, one JSON object: format and format version, the network
config, the estimator's settings, cell types, genes, regions, spot pitch, training history
and library sizes. The estimator gives and takes this state itself
(``STLNMF._get_state`` / ``STLNMF._from_state``, which checks every tensor's shape and
values before anything is built); this module handles the bytes, the format and its
version, and turns every problem into a :class:`ModelFileError` that names the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .._version import __version__
from ..core.estimator import STLNMF
from .atomic import atomic_write
from .errors import InputError

__all__ = ["save_model", "load_model", "ModelFileError", "FORMAT", "FORMAT_VERSION"]

FORMAT = "napari-stlnmf-model"
FORMAT_VERSION = 1
MAX_BYTES = 2 * 1024**3  # a model is signatures + a few hundred scalars; refuse absurd files


class ModelFileError(InputError):
    """A model file that is not a valid napari-stlnmf model (names the file and the problem)."""


def save_model(model: STLNMF, path: str | os.PathLike) -> Path:
    """Write a fitted :class:`STLNMF` atomically to ``path`` (``.safetensors``)."""
    settings, tensors, state = model._get_state()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": state.pop("network"),
        "settings": settings,
        **state,
        "package_version": __version__,
    }
    return atomic_write(
        Path(path), lambda tmp: save_file(tensors, tmp, metadata={"stlnmf": json.dumps(meta)})
    )


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
    missing = [k for k in ("config", "cell_types", "genes", "regions", "pitch") if k not in meta]
    if missing:
        raise ModelFileError(f"{path}: incomplete metadata (no {', '.join(missing)})")
    if not isinstance(meta["config"], dict):
        raise ModelFileError(f"{path}: corrupt metadata (config must be an object)")
    for what in ("cell_types", "genes"):
        names = meta[what]
        if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
            raise ModelFileError(f"{path}: corrupt metadata ({what} must be a list of names)")
    if not isinstance(meta["regions"], list):
        raise ModelFileError(f"{path}: corrupt metadata (regions must be a list)")
    settings = meta.get("settings") or {}
    if not isinstance(settings, dict):
        raise ModelFileError(f"{path}: corrupt metadata (settings must be an object)")
    state = {k: meta[k] for k in ("cell_types", "genes", "regions", "pitch")}
    state["network"] = meta["config"]
    state["history"] = meta.get("history", [])
    if meta.get("library_sizes") is not None:
        state["library_sizes"] = meta["library_sizes"]
    try:
        model = STLNMF._from_state(settings, tensors, state)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if genes is not None and list(genes) != model.genes_:
        raise ModelFileError(f"{path}: {_diff('genes', model.genes_, genes)}")
    if cell_types is not None and list(cell_types) != model.cell_types_:
        raise ModelFileError(f"{path}: {_diff('cell types', model.cell_types_, cell_types)}")
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
