"""Display helpers: a fitted model's learned parameters as short text (``stlnmf info``,
the widget's status and model file messages)."""

from __future__ import annotations

import json

__all__ = ["rounded", "format_parameters"]


def rounded(v, digits: int = 4):
    """Floats in nested dicts/lists rounded, for display (learned parameters)."""
    if isinstance(v, dict):
        return {k: rounded(x, digits) for k, x in v.items()}
    if isinstance(v, list):
        return [rounded(x, digits) for x in v]
    return round(v, digits) if isinstance(v, float) else v


def format_parameters(model, digits: int = 4) -> str:
    """``model.learned_parameters()`` as one line of JSON, floats rounded to ``digits``."""
    return json.dumps(rounded(model.learned_parameters(), digits))
