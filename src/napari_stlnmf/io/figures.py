"""Static figures of results (matplotlib, Agg backend; no display needed)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write

__all__ = ["write_proportion_maps"]

#: Above this many spots the maps are drawn as binned images (BINS x BINS mean values).
BIN_ABOVE = 50_000
BINS = 300


def write_proportion_maps(
    path: str | os.PathLike,
    table: pd.DataFrame,
    cell_types: list[str],
    max_columns: int = 5,
    cmap: str = "viridis",
) -> Path:
    """One map per cell type (colour = proportion, fixed range [0, 1]) in a grid PNG.

    ``table`` is a proportions table (``x``, ``y`` in image pixels, so y points down).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    k = len(cell_types)
    cols = min(max_columns, k)
    rows = int(np.ceil(k / cols))
    fig = Figure(figsize=(2.6 * cols + 1.0, 2.6 * rows + 0.3), dpi=110, layout="constrained")
    x, y = table["x"].to_numpy(), table["y"].to_numpy()
    span = max(np.ptp(x), np.ptp(y), 1e-9)
    # marker area (pt^2) so that neighbouring spots about touch in a 2.6-inch panel
    size = float(np.clip(2.2e4 / max(len(x), 1), 0.05, 30))
    sc = None
    binned = len(x) > BIN_ABOVE
    if binned:
        # a scatter of 500k points per panel takes minutes: show per-pixel means instead
        edges = (np.linspace(x.min(), x.max(), BINS + 1), np.linspace(y.min(), y.max(), BINS + 1))
        ix = np.clip(np.searchsorted(edges[0], x, side="right") - 1, 0, BINS - 1)
        iy = np.clip(np.searchsorted(edges[1], y, side="right") - 1, 0, BINS - 1)
        extent = (edges[0][0], edges[0][-1], edges[1][-1], edges[1][0])
    for j, t in enumerate(cell_types):
        ax = fig.add_subplot(rows, cols, j + 1)
        v = table[t].to_numpy(dtype=np.float64)
        ok = np.isfinite(v)
        if binned:
            total = np.zeros((BINS, BINS))
            count = np.zeros((BINS, BINS))
            np.add.at(total, (iy[ok], ix[ok]), v[ok])
            np.add.at(count, (iy[ok], ix[ok]), 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                img = np.where(count > 0, total / count, np.nan)
            sc = ax.imshow(img, extent=extent, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        else:
            if (~ok).any():
                ax.scatter(x[~ok], y[~ok], s=size, c="#bbbbbb", linewidths=0, rasterized=True)
            sc = ax.scatter(
                x[ok],
                y[ok],
                c=v[ok],
                s=size,
                cmap=cmap,
                vmin=0,
                vmax=1,
                linewidths=0,
                rasterized=True,
            )
        ax.set_title(t, fontsize=9)
        ax.set_xlim(x.min() - 0.02 * span, x.max() + 0.02 * span)
        ax.set_ylim(y.max() + 0.02 * span, y.min() - 0.02 * span)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if sc is not None:
        fig.colorbar(sc, ax=fig.axes, shrink=0.6, label="proportion")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
