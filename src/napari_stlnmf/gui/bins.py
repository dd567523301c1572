"""Visium HD bins drawn as the squares they are: one raster pixel per bin.

A slide read by :func:`~napari_stlnmf.io.visium_hd.read_visium_hd` carries each bin's grid
position (``obs["array_row"]``, ``obs["array_col"]``) and centre (``obsm["spatial"]``,
full-resolution px). Its raster is the bin grid itself: pixel ``(array_row - row0,
array_col - col0)`` holds that bin's value, NaN (Image) or 0 (Labels) where the grid has no
bin. A least-squares fit of the centres against the grid indices gives the grid's origin
and axis directions in full-resolution pixels; the layer is placed with ``scale`` and
``translate`` when the grid is axis-aligned, else with an ``affine`` (Space Ranger's grid is
often rotated by a fraction of a degree against the H&E). Drawing a value is one scatter of
``n_bins`` numbers. Pure numpy, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BinGrid", "bin_grid", "bin_size_px", "fit_grid", "is_bins"]

#: The nominal bin size (bin_size_um / microns_per_pixel) is used for the raster's pixel
#: size when it agrees with the fitted bin spacing to this relative tolerance; otherwise
#: the fit wins (the squares must sit on the bin centres the slide reports).
NOMINAL_RTOL = 0.02
#: A fitted grid is treated as axis-aligned (scale + translate, no affine) when its
#: rotation moves no raster corner by more than this many full-resolution pixels.
ALIGNED_TOL_PX = 1e-3


def is_bins(adata) -> bool:
    """True for Visium HD bins (``uns["stlnmf_hd"]["kind"] == "bins"`` with grid indices)."""
    hd = adata.uns.get("stlnmf_hd") if hasattr(adata, "uns") else None
    return (
        isinstance(hd, dict)
        and hd.get("kind") == "bins"
        and "array_row" in adata.obs
        and "array_col" in adata.obs
    )


def bin_size_px(adata) -> float | None:
    """Nominal bin width in full-resolution pixels (``bin_size_um / microns_per_pixel``),
    or None when either is missing or not positive."""
    hd = adata.uns.get("stlnmf_hd") or {}
    try:
        size, mpp = float(hd["bin_size_um"]), float(hd["microns_per_pixel"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (np.isfinite(size) and np.isfinite(mpp) and size > 0 and mpp > 0):
        return None
    return size / mpp


@dataclass(frozen=True)
class BinGrid:
    """Where each bin sits on the raster and where the raster sits in the world.

    Attributes
    ----------
    rows, cols : ndarray (n_bins,) of int64
        Raster pixel of each bin (grid index minus the grid's smallest one).
    shape : (H, W)
        Raster size: the bins' bounding box on the grid.
    affine : ndarray (3, 3)
        Raster pixel (row, col, 1) -> world (full-resolution y, x, 1); pixel centres sit
        on integer coordinates, as in napari.
    """

    rows: np.ndarray
    cols: np.ndarray
    shape: tuple[int, int]
    affine: np.ndarray

    @property
    def linear(self) -> np.ndarray:
        """(2, 2) linear part of :attr:`affine`."""
        return self.affine[:2, :2]

    @property
    def bin_px(self) -> float:
        """Bin width in world units (mean length of the two axis vectors)."""
        return float(np.mean(np.linalg.norm(self.linear, axis=0)))

    @property
    def aligned(self) -> bool:
        """True when the grid is axis-aligned with positive axes (no affine needed)."""
        lin = self.linear
        return bool(lin[0, 1] == 0 and lin[1, 0] == 0 and lin[0, 0] > 0 and lin[1, 1] > 0)

    def placement(self) -> dict:
        """``scale``, ``translate`` and ``affine`` kwargs of a napari layer showing the
        raster (all three, so that updating a layer in place resets the ones not used)."""
        if self.aligned:
            lin = self.linear
            return {
                "scale": (float(lin[0, 0]), float(lin[1, 1])),
                "translate": (float(self.affine[0, 2]), float(self.affine[1, 2])),
                "affine": np.eye(3),
            }
        return {"scale": (1.0, 1.0), "translate": (0.0, 0.0), "affine": self.affine.copy()}

    def world(self, rows, cols) -> np.ndarray:
        """(n, 2) world (y, x) of raster positions ``rows``, ``cols``."""
        rc = np.column_stack([np.asarray(rows, np.float64), np.asarray(cols, np.float64)])
        return rc @ self.linear.T + self.affine[:2, 2]

    def subset(self, index: np.ndarray) -> BinGrid:
        """The same raster showing only the bins ``index`` (in that order)."""
        return BinGrid(self.rows[index], self.cols[index], self.shape, self.affine)

    def image(self, values: np.ndarray) -> np.ndarray:
        """float32 (H, W) image of per-bin ``values`` (NaN where no bin)."""
        out = np.full(self.shape[0] * self.shape[1], np.nan, dtype=np.float32)
        out[self._flat] = np.asarray(values, dtype=np.float32)
        return out.reshape(self.shape)

    def labels(self, codes: np.ndarray) -> np.ndarray:
        """int32 (H, W) label image of per-bin integer ``codes`` (0 where no bin)."""
        out = np.zeros(self.shape[0] * self.shape[1], dtype=np.int32)
        out[self._flat] = np.asarray(codes, dtype=np.int32)
        return out.reshape(self.shape)

    @property
    def _flat(self) -> np.ndarray:
        # computed per call (a few ms at 650k bins): a frozen dataclass keeps no cache,
        # and the gather it feeds costs as much anyway
        return self.rows * self.shape[1] + self.cols


def fit_grid(
    array_row: np.ndarray, array_col: np.ndarray, xy: np.ndarray, bin_px: float | None = None
) -> BinGrid:
    """Fit the bin grid's placement in the world from the bin centres.

    Parameters
    ----------
    array_row, array_col : ndarray (n,) of int
        Grid indices of the bins.
    xy : ndarray (n, 2)
        Bin centres (x, y), full-resolution px.
    bin_px : float, optional
        Nominal bin width (full-resolution px); used as the raster's pixel size when it
        agrees with the fitted spacing (:data:`NOMINAL_RTOL`).

    Returns
    -------
    BinGrid
    """
    r = np.asarray(array_row).astype(np.int64)
    c = np.asarray(array_col).astype(np.int64)
    pts = np.asarray(xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2 or len(pts) != len(r) or len(r) != len(c):
        raise ValueError(f"need n grid rows, cols and (n, 2) centres; got {len(r)}, {pts.shape}")
    if len(r) == 0:
        raise ValueError("no bins")
    rows, cols = r - r.min(), c - c.min()
    shape = (int(rows.max()) + 1, int(cols.max()) + 1)
    world = pts[:, [1, 0]]  # (y, x): napari's (row, col)
    linear = _fit_linear(rows, cols, world, bin_px)
    mean_rc = np.array([rows.mean(), cols.mean()])
    origin = world.mean(0) - linear @ mean_rc
    span = max(shape)
    off = np.abs(linear - np.diag(np.diag(linear)))
    if off.max() * span < ALIGNED_TOL_PX and (np.diag(linear) > 0).all():
        linear = np.diag(np.diag(linear))
        # refit the origin for the axis-aligned placement actually drawn
        origin = world.mean(0) - linear @ mean_rc
    affine = np.eye(3)
    affine[:2, :2] = linear
    affine[:2, 2] = origin
    return BinGrid(rows, cols, shape, affine)


def _fit_linear(rows, cols, world, bin_px) -> np.ndarray:
    """(2, 2) world-per-grid-step matrix: least squares on centred coordinates; its
    orthogonal part (rotation, possibly a flip) times the nominal size when that agrees."""
    rc = np.column_stack([rows, cols]).astype(np.float64)
    rc -= rc.mean(0)
    w = world - world.mean(0)
    gram = rc.T @ rc
    if len(rows) < 3 or np.linalg.matrix_rank(gram) < 2:
        # a single bin, row or column: nothing to fit the directions from
        size = bin_px or 1.0
        return np.diag([size, size])
    fitted = np.linalg.solve(gram, rc.T @ w).T  # world = fitted @ rc
    u, s, vt = np.linalg.svd(fitted)
    if bin_px and np.all(np.abs(s / bin_px - 1.0) < NOMINAL_RTOL):
        return bin_px * (u @ vt)
    return fitted


def bin_grid(adata) -> BinGrid:
    """The :class:`BinGrid` of a Visium HD bins slide (see :func:`is_bins`)."""
    if not is_bins(adata):
        raise ValueError("not a Visium HD bins slide (uns['stlnmf_hd']['kind'] != 'bins')")
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)[:, :2]
    return fit_grid(
        adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy(), xy, bin_size_px(adata)
    )
