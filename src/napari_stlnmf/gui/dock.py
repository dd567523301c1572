"""The STL NMF dock widget: choose the slide, regions and reference, train and deconvolve off
the UI thread with progress, a live loss plot and cancel; save / load models; export.

It only wires the UI to :mod:`napari_stlnmf.pipeline` and the IO layer: the same calls with
the same seed give the same numbers from Python.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, SpinBox
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.estimator import DEFAULT_EPOCHS, DEFAULT_LAYERS, DEFAULT_WARM_START
from ..core.train import TrainingCancelled
from ..pipeline import rounded
from .dock_files import FileActions
from .layers import META
from .loss_plot import LossPlot
from .notify import notify
from .results import iter_show_results
from .workflow import (
    apply_result,
    available_devices,
    reference_columns,
    regions_of,
    slide_of,
    warm_up_torch,
)

__all__ = ["StlnmfWidget"]


class _Relay(QObject):
    """Carries training progress from the worker thread to the UI thread (queued)."""

    progress = Signal(object)


def _layers_of(viewer, kind: str):
    def choices(widget=None):
        out = []
        for ly in viewer.layers:
            m = ly.metadata.get(META, {})
            if kind == "spots" and m.get("kind") == "spots":
                out.append((ly.name, ly))
            elif kind == "labels" and ly._type_string == "labels" and m.get("kind") != "result":
                out.append((ly.name, ly))
        return ([("(none)", None)] if kind == "labels" else []) + out

    return choices


class StlnmfWidget(FileActions, QWidget):
    """The whole workflow in one dock widget."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.model = None
        self.result = None
        self.reference = None
        self._ref_key = None
        self._worker = None
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        self._pbar = None
        self.last_error: str | None = None
        warm_up_torch()

        self.spots = ComboBox(label="spots layer", choices=_layers_of(napari_viewer, "spots"))
        self.regions = ComboBox(label="regions layer", choices=_layers_of(napari_viewer, "labels"))
        self.ref_path = FileEdit(label="reference", mode="r", filter="*.h5ad *.csv *.tsv *.txt")
        self.label_key = ComboBox(label="label key", choices=[])
        self.epochs = SpinBox(label="epochs", value=DEFAULT_EPOCHS, min=0, max=500)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.markers = CheckBox(label="marker genes only", value=True)
        self.show_advanced = CheckBox(label="Advanced", value=False)
        self.layers_n = SpinBox(label="layers", value=DEFAULT_LAYERS, min=1, max=500)
        self.warm = SpinBox(label="warm-start updates", value=DEFAULT_WARM_START, min=0, max=5000)
        self.gene_weights = CheckBox(label="weight genes by dispersion", value=True)
        self.tied = CheckBox(label="tied layers", value=True)
        self.lr = FloatSpinBox(label="learning rate", value=0.1, min=1e-4, max=1.0, step=0.01)
        self.slides = SpinBox(label="simulated slides / epoch", value=3, min=1, max=50)
        self.device = ComboBox(label="device", choices=available_devices(), value="auto")
        self.advanced = Container(
            widgets=[
                self.layers_n,
                self.warm,
                self.gene_weights,
                self.tied,
                self.lr,
                self.slides,
                self.device,
            ],
            visible=False,
        )
        self.form = Container(
            widgets=[
                self.spots,
                self.regions,
                self.ref_path,
                self.label_key,
                self.epochs,
                self.seed,
                self.markers,
                self.show_advanced,
                self.advanced,
            ]
        )
        self.show_advanced.changed.connect(lambda v: setattr(self.advanced, "visible", v))
        self.ref_path.changed.connect(self._on_reference_path)
        self.label_key.changed.connect(lambda v: self._load_reference())
        self.spots.changed.connect(lambda v: self._load_reference())

        self.overlap = QLabel("choose a reference")
        self.overlap.setWordWrap(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.buttons = {}
        rows = [
            ("Train", "Deconvolve", "Train + deconvolve"),
            ("Cancel", "Save model", "Load model"),
            ("Export…",),
        ]
        button_box = QVBoxLayout()
        for row in rows:
            line = QHBoxLayout()
            for name in row:
                b = QPushButton(name)
                self.buttons[name] = b
                line.addWidget(b)
            button_box.addLayout(line)
        self.buttons["Train"].clicked.connect(lambda: self.run(train=True, deconvolve=False))
        self.buttons["Deconvolve"].clicked.connect(lambda: self.run(train=False, deconvolve=True))
        self.buttons["Train + deconvolve"].clicked.connect(lambda: self.run(True, True))
        self.buttons["Cancel"].clicked.connect(self.cancel)
        self.buttons["Save model"].clicked.connect(lambda: self.save_model())
        self.buttons["Load model"].clicked.connect(lambda: self.load_model())
        self.buttons["Export…"].clicked.connect(lambda: self.export())
        self.buttons["Cancel"].setEnabled(False)
        self.export_kind = ComboBox(
            label="export",
            value="proportions CSV",
            choices=["proportions CSV", "result h5ad", "region means CSV"],
        )
        self.loss = LossPlot()
        self.params = QPlainTextEdit()
        self.params.setReadOnly(True)
        self.params.setMaximumHeight(90)
        self.params.setPlaceholderText("learned parameters appear after training")
        self.table = QTableWidget()
        self.table.setMaximumHeight(160)

        lay = QVBoxLayout(self)
        lay.addWidget(self.form.native)
        lay.addWidget(self.overlap)
        lay.addLayout(button_box)
        self._export_box = Container(widgets=[self.export_kind])  # shows its label
        lay.addWidget(self._export_box.native)
        lay.addWidget(self.status)
        lay.addWidget(self.loss)
        lay.addWidget(QLabel("learned parameters"))
        lay.addWidget(self.params)
        lay.addWidget(QLabel("mean proportion per region"))
        lay.addWidget(self.table)
        for ev in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            ev.connect(self._refresh_layers)

    # --------------------------------------------------------------------- inputs
    def _refresh_layers(self, event=None) -> None:
        self.spots.reset_choices()
        self.regions.reset_choices()

    def _on_reference_path(self, value=None) -> None:
        path = self.ref_path.value
        self.reference, self._ref_key = None, None
        try:
            cols = reference_columns(path) if path and Path(path).is_file() else []
        except Exception as e:
            self.overlap.setText(f"reference not usable: {e}")
            self._fail(e)
            return
        self.label_key.changed.disconnect()
        self.label_key.choices = cols
        guess = next(
            (c for c in ("cell_type", "celltype", "cell_types", "annotation") if c in cols),
            cols[0] if cols else None,
        )
        if guess is not None:
            self.label_key.value = guess
        self.label_key.changed.connect(lambda v: self._load_reference())
        self._load_reference()

    def _load_reference(self) -> None:
        """Read the reference (if new) and show its gene overlap with the chosen slide."""
        path = self.ref_path.value
        if not path or not Path(path).is_file():
            return
        key = (str(path), self.label_key.value)
        try:
            if key != self._ref_key:
                from ..io.reference import read_reference

                self.reference = read_reference(path, self.label_key.value)
                self._ref_key = key
            self.overlap.setText(self._overlap_text())
        except Exception as e:
            self.reference, self._ref_key = None, None
            self.overlap.setText(f"reference not usable: {e}")
            self._fail(e)

    def _overlap_text(self) -> str:
        from ..io.genes import match_genes

        ref = self.reference
        text = f"{len(ref.cell_types)} cell types"
        if ref.dropped_types:
            text += f" ({len(ref.dropped_types)} left out: too few cells)"
        if self.spots.value is not None:
            m = match_genes(
                slide_of(self.spots.value).var,
                ref.var,
                spatial_name=self.spots.value.name,
                reference_name=str(ref.path),
            )
            text += "; " + m.summary()
        return text

    def options(self) -> dict:
        """STL NMF settings from the form."""
        return {
            "epochs": self.epochs.value,
            "n_layers": self.layers_n.value,
            "warm_start": self.warm.value,
            "gene_weights": "fano" if self.gene_weights.value else "none",
            "tied": self.tied.value,
            "lr": self.lr.value,
            "n_train_slides": self.slides.value,
        }

    def prepared(self, use_model: bool = False):
        """Pipeline inputs from the chosen layers and reference (raises InputError); with
        ``use_model``, on the current model's genes (for deconvolving with it)."""
        from ..io.errors import InputError
        from ..pipeline import prepare

        spots = self.spots.value
        adata = slide_of(spots)
        regions = regions_of(spots, self.regions.value)
        if use_model and self.model is None:
            raise InputError("no model yet: train one or load one first")
        if self.reference is None and not use_model:
            raise InputError("choose a reference file first")
        return prepare(
            adata,
            self.reference,
            regions=regions,
            model=self.model if use_model else None,
            markers=self.markers.value,
            spatial_name=spots.name,
        )

    # --------------------------------------------------------------------- running
    def _busy(self, busy: bool) -> None:
        for name, b in self.buttons.items():
            b.setEnabled(not busy if name != "Cancel" else busy)

    def run(self, train: bool = True, deconvolve: bool = True):
        """Start training and/or deconvolution in a worker thread; returns the worker."""
        from napari.qt.threading import create_worker
        from napari.utils import progress

        from ..pipeline import deconvolve as run_deconvolve
        from ..pipeline import train as run_train

        if self._worker is not None:
            notify("a run is already going: cancel it first", error=True)
            return None
        try:
            prep = self.prepared(use_model=not train)
            self._check_device()
        except Exception as e:
            self._fail(e)
            return None
        self._cancel.clear()
        seed, device, options = self.seed.value, self.device.value, self.options()
        model = self.model

        def work():
            nonlocal model
            t0 = time.perf_counter()
            if train:
                model = run_train(
                    prep,
                    seed=seed,
                    device=device,
                    options=options,
                    callback=self._relay.progress.emit,
                    should_stop=self._cancel.is_set,
                )
            t1 = time.perf_counter()
            if self._cancel.is_set():
                raise TrainingCancelled("cancelled")
            result = None
            if deconvolve:
                result = run_deconvolve(prep, model, timings={"train_seconds": t1 - t0})
            return model, result, t1 - t0

        if train:
            self.loss.clear()
            self._pbar = progress(total=options["epochs"] + 1, desc="STL NMF training")
        self.status.setText("training…" if train else "deconvolving…")
        # connecting `errored` here keeps superqt from re-raising into the event loop
        worker = create_worker(
            work,
            _start_thread=False,
            _connect={
                "returned": lambda out: self._done(out, train, deconvolve),
                "errored": self._fail,
                "finished": self._finished,
            },
        )
        self._worker = worker
        self._busy(True)
        worker.start()
        return worker

    def _check_device(self) -> None:
        from ..core.device import resolve_device

        resolve_device(self.device.value)

    def cancel(self) -> None:
        """Ask the running worker to stop (training stops between simulated slides)."""
        if self._worker is not None:
            self._cancel.set()
            self.status.setText("cancelling…")

    def _on_progress(self, p) -> None:
        if self._worker is None:  # a report queued before the run ended: the end wins
            return
        self.loss.add(p.epoch, p.train_rmse, p.val_rmse)
        self.status.setText(
            f"epoch {p.epoch}/{p.n_epochs}: train {p.train_rmse:.4f}, validation {p.val_rmse:.4f}"
        )
        # last, and through a local: updating the bar can run queued events, among them
        # the end of the run (which closes the bar and writes the final status)
        pbar = self._pbar
        if pbar is not None:
            pbar.update(1)
            pbar.set_description(f"STL NMF training, validation RMSE {p.val_rmse:.4f}")

    def _finished(self) -> None:
        self._worker = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self._busy(False)

    def _done(self, out, trained: bool, deconvolved: bool) -> None:
        model, result, seconds = out
        if trained:
            self.model = model
            self.params.setPlainText(json.dumps(rounded(model.learned_parameters())))
        if deconvolved and result is not None:
            self.show(result)
        parts = []
        if trained:
            parts.append(f"trained in {seconds:.1f} s")
        if deconvolved and result is not None:
            parts.append(f"deconvolved {len(result.table)} spots")
        self.status.setText("; ".join(parts))

    def show(self, result) -> None:
        """Put a result on the canvas, in the spots features and in the region table."""
        spots = self.spots.value
        self.result = result
        apply_result(spots, result)
        m = spots.metadata[META]
        steps = iter_show_results(
            self.viewer,
            result.table,
            result.cell_types,
            slide=spots.name,
            spot_diameter=m.get("spot_diameter"),
        )
        self._drive(steps)
        means = result.region_means
        self.table.setRowCount(len(means))
        self.table.setColumnCount(len(means.columns))
        self.table.setHorizontalHeaderLabels([str(c) for c in means.columns])
        for i, row in enumerate(means.itertuples(index=False)):
            for j, v in enumerate(row):
                text = f"{v:.3f}" if isinstance(v, float) else str(v)
                self.table.setItem(i, j, QTableWidgetItem(text))

    def _drive(self, steps) -> None:
        """Add result layers one per event-loop turn (each costs ~0.15 s in napari), so the
        viewer keeps answering while 20 layers appear."""
        from qtpy.QtCore import QTimer

        self._rendering = True

        def step():
            try:
                next(steps)
            except StopIteration:
                self._rendering = False
                return
            except Exception as e:
                self._rendering = False
                self._fail(e)
                return
            QTimer.singleShot(0, step)

        step()

    @property
    def busy(self) -> bool:
        """True while a run or the drawing of its result layers is going on."""
        return self._worker is not None or getattr(self, "_rendering", False)

    def _fail(self, error) -> None:
        """Errors become one-line notifications; the widget stays usable."""
        if isinstance(error, TrainingCancelled):
            msg = "cancelled: the previous model and layers are unchanged"
            notify(msg)
        else:
            msg = (
                f"{type(error).__name__}: {error}"
                if not isinstance(error, ValueError)
                else str(error)
            )
            if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
                msg = "out of memory: use fewer spots/genes, marker genes, or device cpu"
            notify(msg, error=True)
        self.last_error = " ".join(msg.split())
        self.status.setText(self.last_error)
