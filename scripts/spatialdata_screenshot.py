#!/usr/bin/env python
"""napari-spatialdata showing the proportions table that ``stlnmf deconvolve`` writes into
a SpatialData store: docs/images/napari_spatialdata_table.png.

Needs the ``spatialdata`` extra and napari-spatialdata (``pip install napari-spatialdata``;
not a dependency of this project), and a display (``xvfb-run -a python ...``). The store is
the bundled mouse_brain sample as spatialdata-io would write a Visium slide
(``tests/io/test_spatialdata_zarr.make_store``); the shapes are coloured by the CA1 column
of the ``stlnmf_proportions`` table through napari-spatialdata's own View widget.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import imageio.v3 as iio
    import spatialdata as sd
    from napari_spatialdata import Interactive
    from qtpy.QtWidgets import QApplication

    from napari_stlnmf.cli import main as stlnmf
    from tests.io.test_spatialdata_zarr import make_store

    d = Path(tempfile.mkdtemp())
    store = d / "mouse_brain.zarr"
    sample, _ = make_store(store)
    sample.reference.write_h5ad(d / "ref.h5ad")
    sample.regions.rename("region").rename_axis("barcode").to_csv(d / "regions.csv")
    argv = ["deconvolve", "--spatial", store, "--reference", d / "ref.h5ad", "--label-key"]
    argv += ["cell_type", "--regions", d / "regions.csv", "--out", d / "out", "-q"]
    assert stlnmf([str(a) for a in argv]) == 0

    inter = Interactive(sd.read_zarr(store), headless=True)
    viewer = inter._viewer

    def settle(n_layers: int) -> None:  # napari-spatialdata adds layers asynchronously
        end = time.time() + 60
        while len(viewer.layers) < n_layers and time.time() < end:
            QApplication.processEvents()
            time.sleep(0.05)
        for _ in range(20):
            QApplication.processEvents()
            time.sleep(0.05)

    inter.add_element("sample_hires_image", "global")
    settle(1)
    inter.add_element("spots", "global")
    settle(2)
    # napari-spatialdata's View widget (dock_widgets maps names to the widgets)
    view = next(w for w in viewer.window.dock_widgets.values() if hasattr(w, "var_widget"))
    viewer.layers.selection.active = viewer.layers["spots"]
    QApplication.processEvents()
    view.table_name_widget.setCurrentText("stlnmf_proportions")
    QApplication.processEvents()
    view.var_widget._onAction(["CA1"])
    viewer.window._qt_window.resize(1500, 950)
    settle(2)
    out = ROOT / "docs" / "images" / "napari_spatialdata_table.png"
    iio.imwrite(out, viewer.screenshot(canvas_only=False, flash=False))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
