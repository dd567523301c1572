"""Screenshots for docs/gui.md, taken in a real napari window (run under Xvfb):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/gui_screenshots.py

Writes small PNGs to docs/images/: the mouse_brain sample with spots over the H&E, a
painted region, per-type result layers in grid view, and the legend.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def settle(seconds: float = 1.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def save(viewer, path: Path, width: int = 1100, canvas_only: bool = False) -> None:
    from PIL import Image

    settle(1.0)
    img = viewer.screenshot(canvas_only=canvas_only, flash=False)
    im = Image.fromarray(img).convert("RGB")
    if im.width > width:
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im = im.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    im.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/images")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import napari

    from napari_stlnmf.gui.legend import LegendWidget
    from napari_stlnmf.gui.regions import add_regions_layer
    from napari_stlnmf.gui.regions_widget import RegionsWidget
    from napari_stlnmf.gui.results import set_grid, show_results
    from napari_stlnmf.io.reference import reference_from_anndata
    from napari_stlnmf.io.samples import load_sample
    from napari_stlnmf.pipeline import deconvolve, prepare, train

    viewer = napari.Viewer(title="napari-stlnmf")
    viewer.window._qt_window.resize(1500, 950)
    viewer.open_sample("napari-stlnmf", "mouse_brain")
    image, spots = viewer.layers[0], viewer.layers[1]
    regions_widget = RegionsWidget(viewer)
    viewer.window.add_dock_widget(regions_widget, name="Tissue regions", area="right")
    save(viewer, out / "sample_spots.png")

    # paint one region as a user would: a disk of label 3 over the hippocampus area
    regions = add_regions_layer(viewer, spots, image)
    h, w = regions.data.shape
    rr, cc = np.mgrid[0:h, 0:w]
    disk = (rr - 0.52 * h) ** 2 + (cc - 0.45 * w) ** 2 < (0.12 * h) ** 2
    regions.data_setitem(np.nonzero(disk), 3)
    settle(0.5)
    regions_widget._report(regions, spots)
    spots.face_colormap = "turbo"
    spots.face_contrast_limits = (0, 5)
    spots.face_color = "region"
    save(viewer, out / "painted_region.png")

    sample = load_sample("mouse_brain")
    ref = reference_from_anndata(sample.reference, "cell_type")
    prep = prepare(sample.spatial, ref, regions=sample.regions)
    model = train(prep, seed=0, options={"epochs": 5})
    result = deconvolve(prep, model)
    regions.visible = False
    show_results(
        viewer,
        result.table,
        result.cell_types,
        slide="mouse_brain",
        spot_diameter=spots.metadata["stlnmf"]["spot_diameter"],
    )
    legend = LegendWidget(viewer)
    viewer.window.add_dock_widget(legend, name="Cell-type legend", area="right")
    viewer.layers.selection.active = viewer.layers["CA1"]
    viewer.layers["CA1"].visible = True
    save(viewer, out / "result_layer_legend.png")
    viewer.layers["CA1"].visible = False
    viewer.layers["dominant type"].visible = True
    viewer.layers.selection.active = viewer.layers["dominant type"]
    save(viewer, out / "dominant_type.png")
    viewer.layers["dominant type"].visible = False
    set_grid(viewer, True, "mouse_brain")
    save(viewer, out / "grid_view.png", width=1300)
    set_grid(viewer, False, "mouse_brain")
    viewer.close()
    widget_screenshots(out)


def widget_screenshots(out: Path) -> None:
    """The dock widget during training (loss plot) and after deconvolution."""
    import tempfile

    import napari

    from napari_stlnmf.gui.dock import StlnmfWidget
    from napari_stlnmf.io.samples import load_sample

    ref = Path(tempfile.mkdtemp()) / "mouse_brain_reference.h5ad"
    load_sample("mouse_brain").reference.write_h5ad(ref)
    viewer = napari.Viewer(title="napari-stlnmf")
    viewer.window._qt_window.resize(1500, 1000)
    viewer.open_sample("napari-stlnmf", "mouse_brain")
    widget = StlnmfWidget(viewer)
    viewer.window.add_dock_widget(widget, name="STL NMF deconvolution", area="right")
    widget.ref_path.value = ref
    widget.epochs.value = 12
    widget.run(train=True, deconvolve=True)
    while len(widget.loss.epochs) < 5 and widget.busy:
        settle(0.2)
    save(viewer, out / "widget_training.png", width=1300)
    while widget.busy:
        settle(0.2)
    viewer.layers["mouse_brain hires"].visible = True
    save(viewer, out / "widget_result.png", width=1300)
    viewer.close()


if __name__ == "__main__":
    main()
