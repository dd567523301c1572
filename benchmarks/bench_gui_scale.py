#!/usr/bin/env python
"""GUI timings of small and large slides: Points layers versus the raster path.

For synthetic Visium-like slides (hex lattice, pitch 100 full-resolution px, an AnnData in
the form of :mod:`napari_stlnmf.io.visium` with a 2000 x 2000 hires image, 50 genes) and
Dirichlet proportions of 10 cell types, this measures in a shown ``napari.Viewer``:

* **open**: ``slide_layers(adata)`` + adding the layers + processing Qt events until the
  window has repainted (``_qt_window.repaint()`` + ``processEvents()``);
* **first draw**: ``viewer.screenshot(canvas_only=True, flash=False)`` right after opening
  (a full render of the canvas);
* **results**: ``show_results(viewer, table, types, slide=...)`` + draw (auto path:
  per-type Points layers at 5k spots, raster Image + dominant Labels at 200k);
* **switch**: showing another cell type + draw, median over the 10 types: per-type Points
  layers by visibility (and active layer), the raster by ``set_raster_type``;
* for comparison at 200k, the Points path forced: spots as Points (threshold patched),
  ``show_results(..., large=False)`` with 2 types and one ``layer.face_color`` switch;
* a Visium HD slide (``--hd-bins``, default 650k 8 µm bins on a square grid with a
  rounded tissue mask, rotated 0.3° against the H&E, 20 Dirichlet cell types): open, results
  and switch as above, drawn on the bin grid itself (:mod:`napari_stlnmf.gui.bins`); the
  open time is split into building the layer data (``slide_layers``) and adding + drawing.

Cheap steps are repeated (median of 3); slow ones run once. Run under Xvfb with
``QT_QPA_PLATFORM`` unset (offscreen has no GL context)::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_gui_scale.py

Writes ``benchmarks/out/gui_scale.md``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

N_GENES = 50
N_TYPES = 10
#: the Visium HD case: types, bin size (µm), microns per full-resolution px, grid rotation
HD_TYPES = 20
HD_BIN_UM = 8.0
HD_MPP = 0.2738
HD_ANGLE_DEG = 0.3
PITCH = 100.0
HIRES = 2000
REPEATS = 3
#: a step repeats (up to REPEATS) only while one run of it takes less than this
CHEAP_S = 4.0

OUT = Path(__file__).resolve().parent / "out" / "gui_scale.md"


# --------------------------------------------------------------------------- synthetic data


def make_slide(n: int, seed: int = 0):
    """AnnData of ``n`` spots on a hex lattice (Visium form, library id ``bench``)."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    ncol = int(np.ceil(np.sqrt(n * np.sqrt(3) / 2)))
    nrow = int(np.ceil(n / ncol))
    r, c = np.divmod(np.arange(nrow * ncol), ncol)
    r, c = r[:n], c[:n]
    dy = PITCH * np.sqrt(3) / 2
    extent = max(ncol * PITCH, nrow * dy) * 1.1
    margin = 0.05 * extent
    x = margin + c * PITCH + (r % 2) * PITCH / 2
    y = margin + r * dy
    xy = np.column_stack([x, y]).astype(np.float64)

    lam = rng.gamma(0.5, 2.0, N_GENES)
    X = sp.csr_matrix(rng.poisson(lam, size=(n, N_GENES)).astype(np.int32))

    # hires picture: pale background, pink tissue with coarse texture over the spot area
    coarse = rng.uniform(0.6, 1.0, (HIRES // 40, HIRES // 40))
    tex = np.kron(coarse, np.ones((40, 40)))
    img = np.empty((HIRES, HIRES, 3), dtype=np.uint8)
    img[..., 0] = (235 * tex).astype(np.uint8)
    img[..., 1] = (150 * tex).astype(np.uint8)
    img[..., 2] = (200 * tex).astype(np.uint8)
    scalef = HIRES / extent
    hi = (np.array([y.max(), x.max()]) + PITCH) * scalef
    lo = (np.array([y.min(), x.min()]) - PITCH) * scalef
    mask = np.ones((HIRES, HIRES), dtype=bool)
    mask[int(lo[0]) : int(hi[0]), int(lo[1]) : int(hi[1])] = False
    img[mask] = 245

    barcodes = [f"S{i:07d}-1" for i in range(n)]
    genes = [f"G{g:02d}" for g in range(N_GENES)]
    adata = ad.AnnData(
        X=X,
        obs=pd.DataFrame(
            {"in_tissue": np.ones(n, dtype=np.int64), "array_row": r, "array_col": 2 * c + r % 2},
            index=barcodes,
        ),
        var=pd.DataFrame({"gene_symbols": genes, "gene_ids": genes}, index=genes),
    )
    adata.obsm["spatial"] = xy
    adata.uns["spatial"] = {
        "bench": {
            "images": {"hires": img},
            "scalefactors": {
                "tissue_hires_scalef": scalef,
                "tissue_lowres_scalef": scalef * 0.3,
                "spot_diameter_fullres": 0.55 * PITCH,
                "fiducial_diameter_fullres": 0.8 * PITCH,
            },
            "metadata": {"source": "tables", "path": "<synthetic>"},
        }
    }
    return adata


def hd_tissue(side: int) -> np.ndarray:
    """(side, side) bool: a rounded square of tissue (|u|^4 + |v|^4 < 1, ~93% of it)."""
    u = np.linspace(-1.0, 1.0, side)
    return (u[:, None] ** 4 + u[None, :] ** 4) < 1.0


def make_hd_slide(n_bins: int, seed: int = 0):
    """AnnData of about ``n_bins`` Visium HD bins in the form of
    :func:`napari_stlnmf.io.visium_hd.read_visium_hd` (library ``bench``): an ``side x side``
    grid of 8 µm bins masked by :func:`hd_tissue`, rotated by ``HD_ANGLE_DEG``, sparse
    Poisson counts of ``N_GENES`` genes and a ``HIRES`` px hires image."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_bins / 0.927)))
    mask = hd_tissue(side)
    rows, cols = np.nonzero(mask)
    n = len(rows)
    s = HD_BIN_UM / HD_MPP
    th = np.deg2rad(HD_ANGLE_DEG)
    margin = 0.03 * side * s
    x = margin + s * (np.cos(th) * (cols + 0.5) - np.sin(th) * (rows + 0.5))
    y = margin + s * (np.sin(th) * (cols + 0.5) + np.cos(th) * (rows + 0.5))
    x += s * side * np.sin(th)  # keep every centre positive
    xy = np.column_stack([x, y])
    lam = rng.gamma(0.3, 1.0, N_GENES)
    blocks = []
    for start in range(0, n, 100_000):  # chunks: a dense (n, genes) int64 is 260 MB
        m = min(100_000, n - start)
        blocks.append(sp.csr_matrix(rng.poisson(lam, size=(m, N_GENES)).astype(np.int32)))
    X = sp.vstack(blocks).tocsr()

    extent = float(xy.max() + margin)
    scalef = HIRES / extent
    img = np.full((HIRES, HIRES, 3), 245, dtype=np.uint8)
    coarse = rng.uniform(0.6, 1.0, (HIRES // 40, HIRES // 40))
    tex = np.kron(coarse, np.ones((40, 40)))
    hy = np.clip((y * scalef).astype(int), 0, HIRES - 1)
    hx = np.clip((x * scalef).astype(int), 0, HIRES - 1)
    tissue = np.zeros((HIRES, HIRES), dtype=bool)
    tissue[hy, hx] = True
    for c, v in enumerate((235, 150, 200)):
        img[..., c] = np.where(tissue, (v * tex).astype(np.uint8), 245)
    barcodes = pd.Index([f"s_008um_{r:05d}_{c:05d}-1" for r, c in zip(rows, cols)])
    genes = [f"G{g:02d}" for g in range(N_GENES)]
    adata = ad.AnnData(
        X=X,
        obs=pd.DataFrame(
            {"in_tissue": np.ones(n, dtype=np.int64), "array_row": rows, "array_col": cols},
            index=barcodes,
        ),
        var=pd.DataFrame({"gene_symbols": genes, "gene_ids": genes}, index=genes),
    )
    adata.obsm["spatial"] = xy
    adata.uns["spatial"] = {
        "bench": {
            "images": {"hires": img},
            "scalefactors": {
                "tissue_hires_scalef": scalef,
                "tissue_lowres_scalef": scalef * 0.1,
                "spot_diameter_fullres": s,
                "bin_size_um": HD_BIN_UM,
                "microns_per_pixel": HD_MPP,
            },
            "metadata": {"source": "spaceranger", "path": "<synthetic>"},
        }
    }
    adata.uns["stlnmf_hd"] = {
        "kind": "bins",
        "bin_size_um": HD_BIN_UM,
        "microns_per_pixel": HD_MPP,
    }
    return adata


def make_table(adata, seed: int = 1, n_types: int = N_TYPES) -> tuple[pd.DataFrame, list[str]]:
    """Proportions table (barcode, x, y, region, T0..T{n_types-1}), Dirichlet rows."""
    rng = np.random.default_rng(seed)
    n = adata.n_obs
    types = [f"T{j}" for j in range(n_types)]
    props = rng.dirichlet(np.full(n_types, 0.5), size=n)
    xy = adata.obsm["spatial"]
    table = pd.DataFrame(
        {
            "barcode": list(adata.obs_names),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "region": (xy[:, 0] > np.median(xy[:, 0])).astype(np.int64) + 1,
        }
    )
    for j, t in enumerate(types):
        table[t] = props[:, j]
    return table, types


# --------------------------------------------------------------------------- Qt helpers


def draw(viewer) -> None:
    """Process pending events, repaint the window synchronously, process again."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    app.processEvents()
    viewer.window._qt_window.repaint()
    app.processEvents()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def new_viewer():
    import napari

    viewer = napari.Viewer(show=True)
    for _ in range(5):
        draw(viewer)
        time.sleep(0.05)
    return viewer


def clear(viewer) -> None:
    viewer.layers.clear()
    draw(viewer)
    gc.collect()


def painted_fraction(shot: np.ndarray) -> float:
    """Fraction of canvas pixels that are not the (black) background: a rendering check."""
    rgb = np.asarray(shot)[..., :3].astype(np.int32)
    return float((rgb.sum(-1) > 30).mean())


# --------------------------------------------------------------------------- measurements


def open_slide(viewer, adata) -> float:
    from napari.layers import Layer

    from napari_stlnmf.gui.layers import slide_layers

    def run():
        for data, kwargs, kind in slide_layers(adata):
            viewer.add_layer(Layer.create(data, kwargs, kind))
        draw(viewer)

    return timed(run)


def repeat(step, reset, repeats: int = REPEATS) -> list[float]:
    """Run ``step`` (returns seconds) up to ``repeats`` times while it stays cheap."""
    times = []
    for i in range(repeats):
        if i:
            reset()
        times.append(step())
        if times[-1] > CHEAP_S:
            break
    return times


def log(msg: str) -> None:
    print(msg, flush=True)


def bench_size(n: int, *, force_points: bool = False) -> dict:
    import napari_stlnmf.gui.layers as gl
    from napari_stlnmf.gui.results import result_layers, set_raster_type, show_results

    adata = make_slide(n)
    table, types = make_table(adata)
    saved_threshold = gl.LARGE_SLIDE_SPOTS
    if force_points:
        gl.LARGE_SLIDE_SPOTS = 10**12  # spots as Points too
        types = types[:2]
    viewer = new_viewer()
    row: dict = {"spots": n}
    try:
        # open
        opens = repeat(lambda: open_slide(viewer, adata), lambda: clear(viewer))
        kinds = [type(ly).__name__ for ly in viewer.layers]
        row["open"] = opens
        t0 = time.perf_counter()
        shot = viewer.screenshot(canvas_only=True, flash=False)
        row["first_draw"] = time.perf_counter() - t0
        row["painted_open"] = painted_fraction(shot)
        log(f"  {n:,} open {fmt_list(opens)} layers={kinds} first draw {row['first_draw']:.2f}s")

        # results
        large = False if force_points else None
        out: list = []

        def results():
            t0 = time.perf_counter()
            out[:] = show_results(viewer, table, types, slide="bench", large=large)
            draw(viewer)
            return time.perf_counter() - t0

        def drop_results():
            for ly in result_layers(viewer, "bench"):
                viewer.layers.remove(ly)
            draw(viewer)
            gc.collect()

        row["results"] = repeat(results, drop_results)
        is_raster = bool(result_layers(viewer, "bench", "raster"))
        row["path"] = "raster" if is_raster else "points"
        log(f"  {n:,} results ({row['path']}, {len(out)} layers) {fmt_list(row['results'])}")

        # switch
        switches = []
        order = types[1:] + types[:1]
        if is_raster:
            layer = out[0]  # [raster image, dominant labels]
            for t in order:
                switches.append(timed(lambda t=t: (set_raster_type(layer, t), draw(viewer))))
            row["switch_how"] = "set_raster_type"
        elif force_points:
            layer = out[0]
            switches.append(timed(lambda: (setattr(layer, "face_color", types[1]), draw(viewer))))
            row["switch_how"] = "face_color"
        else:
            by_type = {ly.name: ly for ly in out[: len(types)]}
            current = by_type[types[0]]
            for t in order:
                nxt = by_type[t]

                def swap(cur=current, nxt=nxt):
                    cur.visible = False
                    nxt.visible = True
                    viewer.layers.selection.active = nxt
                    draw(viewer)

                switches.append(timed(swap))
                current = nxt
            row["switch_how"] = "visibility"
            # also the single-layer alternative: recolour one layer by another feature
            layer = out[0]
            layer.visible = True
            draw(viewer)
            fc = [timed(lambda t=t: (setattr(layer, "face_color", t), draw(viewer))) for t in order]
            row["switch_face_color"] = fc
        row["switch"] = switches
        t0 = time.perf_counter()
        shot = viewer.screenshot(canvas_only=True, flash=False)
        row["draw_after"] = time.perf_counter() - t0
        row["painted_results"] = painted_fraction(shot)
        log(
            f"  {n:,} switch ({row['switch_how']}) median {statistics.median(switches):.3f}s "
            f"of {fmt_list(switches)}; redraw {row['draw_after']:.2f}s"
        )
    finally:
        gl.LARGE_SLIDE_SPOTS = saved_threshold
        viewer.close()
        draw_app()
        gc.collect()
    return row


def bench_hd(n_bins: int) -> dict:
    """Open, results and type switches of a Visium HD slide (bins on their own grid)."""
    from napari.layers import Layer

    from napari_stlnmf.gui.layers import slide_layers
    from napari_stlnmf.gui.results import result_layers, set_raster_type, show_results

    adata = make_hd_slide(n_bins)
    table, types = make_table(adata, n_types=HD_TYPES)
    viewer = new_viewer()
    row: dict = {"spots": adata.n_obs, "hd": True}
    try:
        parts: dict[str, list[float]] = {"data": [], "add": []}

        def open_hd() -> float:
            t0 = time.perf_counter()
            tuples = slide_layers(adata)
            t1 = time.perf_counter()
            for data, kwargs, kind in tuples:
                viewer.add_layer(Layer.create(data, kwargs, kind))
            draw(viewer)
            t2 = time.perf_counter()
            parts["data"].append(t1 - t0)
            parts["add"].append(t2 - t1)
            return t2 - t0

        row["open"] = repeat(open_hd, lambda: clear(viewer))
        row["open_data"], row["open_add"] = parts["data"], parts["add"]
        spots = viewer.layers[-1]
        row["grid"] = tuple(spots.data.shape)
        row["affine"] = not np.allclose(spots.affine.affine_matrix, np.eye(3))
        t0 = time.perf_counter()
        shot = viewer.screenshot(canvas_only=True, flash=False)
        row["first_draw"] = time.perf_counter() - t0
        row["painted_open"] = painted_fraction(shot)
        log(
            f"  HD {adata.n_obs:,} bins, grid {row['grid']}, affine {row['affine']}: open "
            f"{fmt_list(row['open'])} (layer data {fmt_list(parts['data'])}, add + draw "
            f"{fmt_list(parts['add'])}) first draw {row['first_draw']:.2f}s"
        )
        out: list = []

        def results():
            t0 = time.perf_counter()
            out[:] = show_results(viewer, table, types, slide=spots.name)
            draw(viewer)
            return time.perf_counter() - t0

        def drop_results():
            for ly in result_layers(viewer, spots.name):
                viewer.layers.remove(ly)
            draw(viewer)
            gc.collect()

        row["results"] = repeat(results, drop_results)
        layer = out[0]
        assert layer.data.shape == row["grid"], "results not on the bin grid"
        row["path"], row["switch_how"] = "bins", "set_raster_type"
        log(f"  HD results (bin raster, {len(out)} layers) {fmt_list(row['results'])}")
        order = types[1:] + types[:1]
        row["switch"] = [
            timed(lambda t=t: (set_raster_type(layer, t), draw(viewer))) for t in order
        ]
        t0 = time.perf_counter()
        shot = viewer.screenshot(canvas_only=True, flash=False)
        row["draw_after"] = time.perf_counter() - t0
        row["painted_results"] = painted_fraction(shot)
        log(
            f"  HD switch median {med(row['switch']):.3f}s of {fmt_list(row['switch'])}; "
            f"redraw {row['draw_after']:.2f}s"
        )
    finally:
        viewer.close()
        draw_app()
        gc.collect()
    return row


def draw_app():
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        app.processEvents()


def fmt_list(xs) -> str:
    return "[" + ", ".join(f"{x:.2f}" for x in xs) + "]"


def med(xs) -> float:
    return float(statistics.median(xs))


# --------------------------------------------------------------------------- report


def render(rows: list[dict], total_s: float) -> str:
    import napari
    import vispy

    lines = [
        "| spots | path | open s | results s | switch median s | first-draw s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        label = {
            ("points", "visibility"): "Points, 10 per-type layers (auto)",
            ("raster", "set_raster_type"): "raster Image + Labels (auto)",
            ("points", "face_color"): "Points forced (2 types, face_color switch)",
            ("bins", "set_raster_type"): f"Visium HD bins: bin-grid Image + Labels, "
            f"{HD_TYPES} types",
        }[(r["path"], r["switch_how"])]
        lines.append(
            f"| {r['spots']:,} | {label} | {med(r['open']):.2f} | {med(r['results']):.2f} | "
            f"{med(r['switch']):.3f} | {r['first_draw']:.2f} |"
        )
    table = "\n".join(lines)
    details = ["", "Details (seconds; each list = the repeats / the switches, in order):", ""]
    for r in rows:
        if r.get("hd"):
            details.append(
                f"- {r['spots']:,} HD bins on a {r['grid'][0]}x{r['grid'][1]} grid "
                f"(affine placement: {r['affine']}): layer data {fmt_list(r['open_data'])} "
                f"+ add and draw {fmt_list(r['open_add'])}"
            )
        details.append(
            f"- {r['spots']:,} {r['path']}: open {fmt_list(r['open'])}, results "
            f"{fmt_list(r['results'])}, switch ({r['switch_how']}) {fmt_list(r['switch'])}, "
            f"screenshot after results {r['draw_after']:.2f}, painted canvas fraction "
            f"{r['painted_open']:.2f} / {r['painted_results']:.2f}"
        )
        if "switch_face_color" in r:
            details.append(
                f"  - single-layer alternative, `layer.face_color = type`: median "
                f"{med(r['switch_face_color']):.3f} of {fmt_list(r['switch_face_color'])}"
            )
    head = [
        "# GUI timings: Points versus raster (benchmarks/bench_gui_scale.py)",
        "",
        f"{datetime.datetime.now().isoformat(timespec='seconds')}; napari {napari.__version__}, "
        f"vispy {vispy.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"display {os.environ.get('DISPLAY', '?')} (Xvfb, software OpenGL); total {total_s:.0f} s.",
        "",
        f"Synthetic hex-lattice slides (pitch {PITCH:.0f} full-res px, {N_GENES} genes, "
        f"{HIRES}x{HIRES} hires image), {N_TYPES} Dirichlet cell types. open = slide_layers + "
        "add + repaint; results = show_results + repaint; switch = another type shown + "
        f"repaint, median over the types; first-draw = screenshot(canvas_only) after open. "
        f"Median of up to {REPEATS} repeats where one run < {CHEAP_S:.0f} s.",
        "",
        "",
    ]
    return "\n".join(head) + table + "\n" + "\n".join(details) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[5_000, 200_000])
    p.add_argument("--no-forced", action="store_true", help="skip the forced Points comparison")
    p.add_argument("--hd-bins", type=int, default=650_000, help="Visium HD case: bins (0 skips it)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        print("QT_QPA_PLATFORM=offscreen has no GL context; run under xvfb-run", file=sys.stderr)
        return 2

    from napari_stlnmf.gui.layers import LARGE_SLIDE_SPOTS

    t_start = time.perf_counter()
    rows = []
    for n in args.sizes:
        print(f"{n:,} spots", flush=True)
        rows.append(bench_size(n))
    if not args.no_forced:
        big = [n for n in args.sizes if n > LARGE_SLIDE_SPOTS]
        for n in big[:1]:
            print(f"{n:,} spots, Points forced", flush=True)
            rows.append(bench_size(n, force_points=True))
    if args.hd_bins:
        print(f"Visium HD, {args.hd_bins:,} bins", flush=True)
        rows.append(bench_hd(args.hd_bins))
    text = render(rows, time.perf_counter() - t_start)
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
