"""How responsive the viewer stays while the dock widget trains and deconvolves.

Opens the bundled mouse_brain sample in a real napari window, starts "Train + deconvolve"
in the STL NMF widget, and meanwhile ticks a 10 ms QTimer on the UI thread: the longest
gap between ticks is the longest event-loop stall a user would feel. Run under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_widget_stall.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_stlnmf.gui.dock import StlnmfWidget
    from napari_stlnmf.io.samples import load_sample

    ref = Path(tempfile.mkdtemp()) / "reference.h5ad"
    load_sample("mouse_brain").reference.write_h5ad(ref)
    viewer = napari.Viewer()
    viewer.open_sample("napari-stlnmf", "mouse_brain")
    widget = StlnmfWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.ref_path.value = ref
    widget.epochs.value = args.epochs

    rows = []
    for rep in range(args.repeats):
        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda ticks=ticks: ticks.append(time.perf_counter()))
        timer.start()
        t0 = time.perf_counter()
        widget.run(train=True, deconvolve=True)
        while widget.busy:
            QApplication.processEvents()
            time.sleep(0.002)
        total = time.perf_counter() - t0
        timer.stop()
        gaps = [b - a for a, b in zip(ticks, ticks[1:])]
        gaps_ms = sorted(1000 * g for g in gaps)
        rows.append(
            {
                "repeat": rep,
                "run_s": total,
                "epochs_run": len(widget.loss.epochs) - 1,
                "ticks": len(ticks),
                "median_gap_ms": statistics.median(gaps_ms),
                "p99_gap_ms": gaps_ms[int(0.99 * (len(gaps_ms) - 1))],
                "max_gap_ms": gaps_ms[-1],
            }
        )
        print(rows[-1], flush=True)
    print(
        "\n| repeat | train + deconvolve s | epochs | median tick gap ms | p99 ms | "
        "longest stall ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['repeat']} | {r['run_s']:.1f} | {r['epochs_run']} | "
            f"{r['median_gap_ms']:.1f} | {r['p99_gap_ms']:.1f} | {r['max_gap_ms']:.0f} |"
        )
    viewer.close()


if __name__ == "__main__":
    main()
