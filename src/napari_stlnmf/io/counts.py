"""The one rule for "these are not raw counts", shared by the slide readers
(:mod:`~napari_stlnmf.io.tables`) and the reference reader
(:mod:`~napari_stlnmf.io.reference`).

Raw counts are whole numbers. A matrix whose stored values include one that is not a whole
number (NaN and infinities included) was normalised, log-transformed or scaled. A value
within :data:`INTEGER_TOLERANCE` of a whole number still counts as one: counts stored as
float32, or converted between types, carry round-off far below that, while normalised
values are off by much more. Every stored value is checked (in chunks, so a large matrix
needs no large temporary); integer dtypes are whole numbers by construction.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["non_integer", "INTEGER_TOLERANCE"]

#: Largest distance to the nearest whole number that still counts as a whole number.
INTEGER_TOLERANCE = 1e-6
_CHUNK = 1 << 20


def non_integer(x) -> bool:
    """Whether the count matrix ``x`` (dense or sparse: its stored values) holds a value
    that is not a whole number, i.e. it is not raw counts (see the module docstring)."""
    values = np.asarray(x.data if sp.issparse(x) else x).ravel()
    if values.size == 0 or not np.issubdtype(values.dtype, np.floating):
        return False
    with np.errstate(invalid="ignore"):
        for start in range(0, values.size, _CHUNK):
            v = values[start : start + _CHUNK]
            if not (np.abs(v - np.rint(v)) <= INTEGER_TOLERANCE).all():
                return True
    return False
