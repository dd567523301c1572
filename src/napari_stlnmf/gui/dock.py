"""The STL NMF dock widget: choose the slide, regions and reference, train and deconvolve off
the UI thread with progress, a live loss plot and cancel; save / load models; export.

It only wires the UI to :mod:`napari_stlnmf.pipeline` and the IO layer: the same calls with
the same seed give the same numbers from Python.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, SpinBox
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..core.estimator import DEFAULT_EPOCHS, DEFAULT_LAYERS, DEFAULT_WARM_START
from ..core.train import TrainingCancelled
from ..options import GENE_CHOICES, GENE_WEIGHTS
from ..training_report import training_outcome
from .dock_files import FileActions
from .dock_inputs import NO_REGIONS_LAYER, SlideInputs, layer_choices, regions_layer_for
from .loss_plot import LossPlot
from .meta import Kind, spots_meta
from .notify import notify
from .params_table import ParamsTable
from .results import iter_show_results
from .runner import Runner
from .scroll import ScrollableDock, WrapLabel
from .workflow import apply_result, available_devices, warm_up_torch

__all__ = ["StlnmfWidget", "WrapLabel", "regions_layer_for", "NO_REGIONS_LAYER"]


class _RunOutput(NamedTuple):
    model: object
    result: object
    seconds: float  # training wall time
    trained: bool
    deconvolved: bool


class StlnmfWidget(SlideInputs, FileActions, ScrollableDock):
    """The whole workflow in one dock widget (its rows scroll: see :class:`ScrollableDock`).

    Public state: ``model`` (the current model, with ``model_origin`` saying where it came
    from, e.g. "trained on 'mouse_brain spots'"), ``result`` (the shown result, always for
    the chosen spots layer), ``status`` and ``overlap`` (:class:`WrapLabel`), ``loss``
    (:class:`LossPlot`), ``params`` (:class:`ParamsTable`), ``table`` (region means) and
    ``last_error`` (the last error of an action the user started).
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.model = None
        self.model_origin: str | None = None
        self.result = None
        self.reference = None
        self._ref_key = None
        self._run_spots = None
        self._runner = Runner(
            on_progress=self._on_progress,
            on_returned=self._done,
            on_error=self._fail,
            on_busy=self._busy,
        )
        self.last_error: str | None = None
        warm_up_torch()

        self.spots = ComboBox(label="spots layer", choices=layer_choices(napari_viewer, Kind.SPOTS))
        self.regions = ComboBox(
            label="regions layer", choices=layer_choices(napari_viewer, Kind.REGIONS)
        )
        self.regions.tooltip = (
            "A Regions layer painted for the chosen slide is picked automatically; "
            f"{NO_REGIONS_LAYER} uses the spots' own region column."
        )
        self.ref_path = FileEdit(label="reference", mode="r", filter="*.h5ad *.csv *.tsv *.txt")
        self.label_key = ComboBox(label="label key", choices=[])
        self.epochs = SpinBox(label="epochs", value=DEFAULT_EPOCHS, min=0, max=500)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.markers = ComboBox(label="genes", choices=list(GENE_CHOICES), value="auto")
        self.markers.tooltip = (
            "auto: marker genes on deep spots, more genes (up to all) on shallow ones; "
            "markers: 100 marker genes per type; all: every shared gene"
        )
        self.show_advanced = CheckBox(label="Advanced", value=False)
        self.layers_n = SpinBox(label="layers", value=DEFAULT_LAYERS, min=1, max=500)
        self.warm = SpinBox(label="warm-start updates", value=DEFAULT_WARM_START, min=0, max=5000)
        self.gene_weights = ComboBox(
            label="gene weights", choices=list(GENE_WEIGHTS), value=GENE_WEIGHTS[0]
        )
        self.gene_weights.tooltip = (
            "auto: 1/dispersion of each gene at the slide's depth; fano: at the reference "
            "cells' depth; none: plain Poisson"
        )
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
        self.show_advanced.changed.connect(self._on_show_advanced)
        self.ref_path.changed.connect(self._on_reference_path)
        self.label_key.changed.connect(self._on_label_key)
        self.spots.changed.connect(self._on_spots_changed)

        self.overlap = WrapLabel("choose a reference")
        self.status = WrapLabel("")
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
        self.params_caption = WrapLabel("learned parameters")
        self.params = ParamsTable()
        self.table = QTableWidget()
        self.table.setMaximumHeight(160)

        lay = self.body_layout
        lay.addWidget(self.form.native)
        lay.addWidget(self.overlap)
        lay.addLayout(button_box)
        self._export_box = Container(widgets=[self.export_kind])  # shows its label
        lay.addWidget(self._export_box.native)
        lay.addWidget(self.status)
        lay.addWidget(self.loss)
        lay.addWidget(self.params_caption)
        lay.addWidget(self.params)
        lay.addWidget(QLabel("mean proportion per region"))
        lay.addWidget(self.table)
        lay.addStretch(1)  # rows stay at the top when the dock is taller than they are
        self._fit_width()
        # the slide whose results the dock shows: another one chosen clears them
        self._shown_spots = self.spots.value
        self._select_regions_layer()
        for ev in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            ev.connect(self._refresh_layers)

    def _on_show_advanced(self, visible: bool) -> None:
        self.advanced.visible = visible
        self._fit_width()

    def _fit_width(self) -> None:
        """At least as wide as the rows plus a vertical scroll bar: the bar appears when
        the rows outgrow the dock (e.g. Advanced opened), and horizontal scrolling is off,
        so without this the right edge of the form would be cut off."""
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        need = self.body.minimumSizeHint().width() + bar + 2 * self.scroll.frameWidth()
        self.setMinimumWidth(max(self.minimumWidth(), need))

    def clear_results(self) -> None:
        """Forget what the dock shows for the previous slide (result, loss curve,
        parameters, region table, status); a model stays, and the status says which slide
        it came from."""
        self._shown_spots = spots = self.spots.value
        self.result = None
        self.loss.clear()
        self.table.clearContents()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        name = getattr(spots, "name", None)
        if self.model is not None:
            origin = self.model_origin or "loaded"
            self.params.clear(
                f"the kept model was {origin}: train on this slide to see parameters "
                "for its regions"
            )
            self.status.setText(
                f"slide {name!r}: earlier results cleared. The model {origin} is kept: "
                "Deconvolve applies it here, Train makes one for this slide"
            )
        else:
            self.params.clear()
            self.status.setText(f"slide {name!r}" if name else "")

    def options(self) -> dict:
        """STL NMF settings from the form, as the estimator's keyword arguments: the same
        :class:`~napari_stlnmf.options.RunOptions` the CLI fills from its flags."""
        from ..options import RunOptions

        return RunOptions(
            epochs=self.epochs.value,
            n_layers=self.layers_n.value,
            warm_start=self.warm.value,
            gene_weights=self.gene_weights.value,
            tied=self.tied.value,
            lr=self.lr.value,
            n_train_slides=self.slides.value,
        ).estimator_options()

    # --------------------------------------------------------------------- running
    def _busy(self, busy: bool) -> None:
        for name, b in self.buttons.items():
            b.setEnabled(not busy if name != "Cancel" else busy)
        # a run's results belong to the slide it started on
        self.spots.enabled = not busy

    def run(self, train: bool = True, deconvolve: bool = True):
        """Start training and/or deconvolution in a worker thread; returns the worker."""
        from ..pipeline import deconvolve as run_deconvolve
        from ..pipeline import train as run_train

        if self._runner.running:
            notify("a run is already going: cancel it first", error=True)
            return None
        try:
            prep = self.prepared(use_model=not train)
            self._check_device()
        except Exception as e:
            self._fail(e)
            return None
        seed, device, options = self.seed.value, self.device.value, self.options()
        model = self.model
        self._run_spots = self.spots.value

        def work(report, should_stop):
            nonlocal model
            t0 = time.perf_counter()
            if train:
                model = run_train(
                    prep,
                    seed=seed,
                    device=device,
                    options=options,
                    callback=report,
                    should_stop=should_stop,
                )
            t1 = time.perf_counter()
            if should_stop():
                raise TrainingCancelled("cancelled")
            result = None
            if deconvolve:
                result = run_deconvolve(prep, model, timings={"train_seconds": t1 - t0})
            return _RunOutput(model, result, t1 - t0, train, deconvolve)

        if train:
            self.loss.clear(n_epochs=options["epochs"])
        self.status.setText("training…" if train else "deconvolving…")
        return self._runner.start(
            work,
            steps=options["epochs"] + 1 if train else None,
            description="STL NMF training",
        )

    def _check_device(self) -> None:
        from ..core.device import resolve_device

        resolve_device(self.device.value)

    def cancel(self) -> None:
        """Ask the running worker to stop (training stops between simulated slides)."""
        if self._runner.cancel():
            self.status.setText("cancelling…")

    def _on_progress(self, p) -> None:
        self.loss.add(p.epoch, p.train_rmse, p.val_rmse, p.n_epochs)
        self.status.setText(
            f"epoch {p.epoch}/{p.n_epochs}: train {p.train_rmse:.4f}, validation "
            f"{p.val_rmse:.4f} (best {p.best_val_rmse:.4f})"
        )
        # last: updating the bar can run queued events, among them the end of the run
        # (which closes the bar and writes the final status)
        self._runner.advance(f"STL NMF training, validation RMSE {p.val_rmse:.4f}")

    def _done(self, out: _RunOutput) -> None:
        model, result, seconds, trained, deconvolved = out
        spots = self._run_spots or self.spots.value
        if trained:
            self.set_model(model, f"trained on {getattr(spots, 'name', None)!r}")
        if deconvolved and result is not None:
            self.show(result, spots)
        parts = []
        if trained:
            parts.append(training_outcome(model, seconds))
        if deconvolved and result is not None:
            text = f"deconvolved {len(result.table)} spots"
            if not trained and self.model_origin:
                text += f" with the model {self.model_origin}"
            parts.append(text)
        self.status.setText("; ".join(parts))

    def set_model(self, model, origin: str | None = None) -> None:
        """Make ``model`` the current one and show its learned parameters.

        Parameters
        ----------
        model : fitted estimator
        origin : str, optional
            Where it came from, for messages: "trained on 'slide'", "loaded from m.safetensors".
        """
        self.model = model
        self.model_origin = origin
        if not hasattr(model, "learned_parameters"):
            self.params.clear("this model has no learned parameters")
            return
        types = getattr(getattr(model, "reference_", None), "cell_types", None)
        self.params.set_parameters(model.learned_parameters(), types)
        self.params_caption.setText(
            f"learned parameters ({origin})" if origin else "learned parameters"
        )

    def show(self, result, spots=None) -> None:
        """Put a result on the canvas, in the spots features and in the region table."""
        spots = spots if spots is not None else self.spots.value
        self.result = result
        self._shown_spots = spots
        apply_result(spots, result)
        m = spots_meta(spots)
        steps = iter_show_results(
            self.viewer,
            result.table,
            result.cell_types,
            slide=spots.name,
            spot_diameter=m.get("spot_diameter"),
            intervals=None if result.lower is None else (result.lower, result.upper),
        )
        # one result layer per event-loop turn: the viewer keeps answering meanwhile
        self._runner.drive(steps)
        means = result.region_means
        self.table.setRowCount(len(means))
        self.table.setColumnCount(len(means.columns))
        self.table.setHorizontalHeaderLabels([str(c) for c in means.columns])
        for i, row in enumerate(means.itertuples(index=False)):
            for j, v in enumerate(row):
                text = f"{v:.3f}" if isinstance(v, float) else str(v)
                self.table.setItem(i, j, QTableWidgetItem(text))

    @property
    def busy(self) -> bool:
        """True while a run or the drawing of its result layers is going on."""
        return self._runner.busy

    def _fail(self, error) -> None:
        """Errors of actions the user started become one-line notifications (and the
        status); the widget stays usable."""
        from ..io.errors import one_line

        if isinstance(error, TrainingCancelled):
            msg = "cancelled: the previous model and layers are unchanged"
            notify(msg)
        else:
            # InputError and other ValueErrors speak for themselves; anything else is named
            named = not isinstance(error, ValueError)
            msg = one_line(f"{type(error).__name__}: {error}" if named else error)
            # the pipeline turns every out-of-memory it can name into NotEnoughMemoryError
            # (an InputError whose message says what to reduce); a bare MemoryError is
            # one it could not
            if isinstance(error, MemoryError):
                msg = "out of memory: use fewer spots/genes, marker genes, or device cpu"
            notify(msg, error=True)
        self.last_error = one_line(msg)
        self.status.setText(self.last_error)
