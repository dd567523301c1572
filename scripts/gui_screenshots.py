"""Screenshots for docs/gui.md, taken in a real napari window through napari's own menus
(the first-day flow of ``tests/gui/first_day.py``), under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/gui_screenshots.py

Writes small PNGs to docs/images/: the sample with the regions dock, a painted region, the
deconvolution dock during and after training, a cell type over the H&E with its legend,
the dominant type, and the grid view.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "images"))
    ap.add_argument("--epochs", type=int, default=10, help="training epochs in the dock")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import napari

    sys.path.insert(0, str(REPO))
    from tests.gui.first_day import first_day

    viewer = napari.Viewer(title="napari-stlnmf")
    with tempfile.TemporaryDirectory() as tmp:
        obs = first_day(viewer, Path(tmp), shots=out, epochs=args.epochs, cli=False)
    print(obs["status"])
    print(obs["region_text"])
    viewer.close()


if __name__ == "__main__":
    main()
