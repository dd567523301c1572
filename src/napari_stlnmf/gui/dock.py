"""The STL NMF dock widget: choose the slide, regions and reference, train and deconvolve off
the UI thread with progress, a live loss plot and cancel; save / load models; export.

It only wires the UI to :mod:`napari_stlnmf.pipeline` and the IO layer: the same calls with
the same seed give the same numbers from Python.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, SpinBox
from napari.layers import Labels
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..core.estimator import DEFAULT_EPOCHS, DEFAULT_LAYERS, DEFAULT_WARM_START
from ..core.train import TrainingCancelled
from ..io.reference import LABEL_KEY_GUESSES
from .dock_files import FileActions
from .layers import META
from .loss_plot import LossPlot
from .notify import notify
from .params_table import ParamsTable
from .results import iter_show_results
from .scroll import ScrollableDock
from .training_report import training_outcome
from .workflow import (
    apply_result,
    available_devices,
    reference_columns,
    regions_of,
    slide_of,
    warm_up_torch,
)

__all__ = ["StlnmfWidget", "WrapLabel", "regions_layer_for", "NO_REGIONS_LAYER"]

#: The regions combo's first choice: no Labels layer, the spots' own ``region`` feature.
NO_REGIONS_LAYER = "(none: spots' own regions)"


class _Relay(QObject):
    """Carries training progress from the worker thread to the UI thread (queued)."""

    progress = Signal(object)


def _is_spots(layer) -> bool:
    return layer is not None and layer.metadata.get(META, {}).get("kind") == "spots"


def regions_layer_for(viewer, spots_layer) -> Labels | None:
    """The Regions Labels layer painted for ``spots_layer`` (``gui.regions``), or None.

    The dock's one place that knows how a Regions layer names its slide (the registry of
    :func:`~napari_stlnmf.gui.regions.regions_layer_of`).
    """
    if spots_layer is None:
        return None
    from .regions import regions_layer_of

    layer = regions_layer_of(viewer, spots_layer)
    return layer if isinstance(layer, Labels) else None


def _layers_of(viewer, kind: str):
    def choices(widget=None):
        out = []
        for ly in viewer.layers:
            m = ly.metadata.get(META, {})
            if kind == "spots" and m.get("kind") == "spots":
                out.append((ly.name, ly))
            elif kind == "labels" and isinstance(ly, Labels) and m.get("kind") != "result":
                out.append((ly.name, ly))
        return ([(NO_REGIONS_LAYER, None)] if kind == "labels" else []) + out

    return choices


# a zero-width space after path separators lets Qt wrap a long path (a label wraps only
# at break opportunities, and an unbroken path would widen the whole dock)
_BREAK_AFTER = re.compile(r"([/\\_])")


class WrapLabel(QLabel):
    """A word-wrapped, plain-text label that never widens the dock: long paths break after
    ``/``, ``\\`` and ``_``. :meth:`text` returns the text as set."""

    def __init__(self, text: str = ""):
        super().__init__()
        self._raw = ""
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)  # an error with "<" is not HTML
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        policy = self.sizePolicy()
        policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
        self.setSizePolicy(policy)
        self.setMinimumWidth(50)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt API)
        self._raw = str(text)
        super().setText(_BREAK_AFTER.sub("\\1\u200b", self._raw))

    def text(self) -> str:
        return self._raw


class StlnmfWidget(FileActions, ScrollableDock):
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
        self._worker = None
        self._run_spots = None
        self._rendering = False
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        self._pbar = None
        self.last_error: str | None = None
        warm_up_torch()

        self.spots = ComboBox(label="spots layer", choices=_layers_of(napari_viewer, "spots"))
        self.regions = ComboBox(label="regions layer", choices=_layers_of(napari_viewer, "labels"))
        self.regions.tooltip = (
            "A Regions layer painted for the chosen slide is picked automatically; "
            f"{NO_REGIONS_LAYER} uses the spots' own region column."
        )
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

    # --------------------------------------------------------------------- inputs
    def _refresh_layers(self, event=None) -> None:
        """Layers came or went (a background event: problems go to labels, not toasts).

        A newly opened slide becomes the chosen one (not during a run, whose results
        belong to the slide it started on), and a newly painted Regions layer of the
        chosen slide becomes its regions layer.
        """
        added = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        self.spots.reset_choices()
        if _is_spots(added) and added is not self.spots.value and not self.busy:
            self.spots.value = added  # -> _on_spots_changed
        self.regions.reset_choices()
        if isinstance(added, Labels) and added.metadata.get(META, {}).get("kind") == "regions":
            # gui.regions links a new Regions layer to its slide right after adding it:
            # look at the link on the next event-loop turn
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, lambda: self._adopt_regions_layer(added))

    def _adopt_regions_layer(self, layer) -> None:
        """Choose a newly added Regions layer when it paints the chosen slide."""
        try:
            if layer is regions_layer_for(self.viewer, self.spots.value):
                self.regions.reset_choices()
                self.regions.value = layer
        except RuntimeError:  # the dock was closed in between (its Qt objects are gone)
            pass

    def _select_regions_layer(self) -> None:
        """Choose the Regions layer painted for the chosen slide, or the spots' own
        regions when it has none."""
        self.regions.reset_choices()
        self.regions.value = regions_layer_for(self.viewer, self.spots.value)

    def _on_spots_changed(self, value=None) -> None:
        self._select_regions_layer()
        if self.spots.value is not self._shown_spots:
            self.clear_results()
        self._update_overlap(user=False)

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

    def _on_reference_path(self, value=None) -> None:
        """The user picked a reference file: list its label columns, guess the key, read it."""
        path = self.ref_path.value
        self.reference, self._ref_key = None, None
        if not path or not Path(path).is_file():
            self.overlap.setText("choose a reference")
            return
        try:
            cols = reference_columns(path)
        except Exception as e:
            self._reference_problem(e, user=True)
            return
        with self.label_key.changed.blocked():  # one read below, not one per change
            self.label_key.choices = cols
            guess = next((c for c in LABEL_KEY_GUESSES if c in cols), cols[0] if cols else None)
            if guess is not None:
                self.label_key.value = guess
        self._load_reference(user=True)

    def _on_label_key(self, value=None) -> None:
        self._load_reference(user=True)

    def _load_reference(self, user: bool = False) -> None:
        """Read the reference (if new) and show its gene overlap with the chosen slide;
        ``user``: the user asked for it, so a problem is also a notification."""
        path = self.ref_path.value
        if not path or not Path(path).is_file():
            return
        key = (str(path), self.label_key.value)
        if key != self._ref_key:
            try:
                from ..io.reference import read_reference

                self.reference = read_reference(path, self.label_key.value)
                self._ref_key = key
            except Exception as e:
                self.reference, self._ref_key = None, None
                self._reference_problem(e, user)
                return
        self._update_overlap(user)

    def _reference_problem(self, error: Exception, user: bool) -> None:
        self.overlap.setText(f"reference not usable: {_one_line(error)}")
        if user:
            self._fail(error)

    def _update_overlap(self, user: bool = False) -> None:
        """The reference's types and its gene overlap with the chosen slide, in the
        overlap label; a too small overlap is said there (and as a notification only when
        ``user`` picked the file)."""
        if self.reference is None:
            return
        try:
            self.overlap.setText(self._overlap_text())
        except Exception as e:
            self.overlap.setText(f"{self._types_text()}; {_one_line(e)}")
            if user:
                self._fail(e)

    def _types_text(self) -> str:
        ref = self.reference
        text = f"{len(ref.cell_types)} cell types"
        if ref.dropped_types:
            text += f" ({len(ref.dropped_types)} left out: too few cells)"
        return text

    def _overlap_text(self) -> str:
        from ..io.genes import match_genes

        ref = self.reference
        text = self._types_text()
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
        # a run's results belong to the slide it started on
        self.spots.enabled = not busy

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
        self._run_spots = self.spots.value

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
            self.loss.clear(n_epochs=options["epochs"])
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
        self.loss.add(p.epoch, p.train_rmse, p.val_rmse, p.n_epochs)
        self.status.setText(
            f"epoch {p.epoch}/{p.n_epochs}: train {p.train_rmse:.4f}, validation "
            f"{p.val_rmse:.4f} (best {p.best_val_rmse:.4f})"
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
        return self._worker is not None or self._rendering

    def _fail(self, error) -> None:
        """Errors of actions the user started become one-line notifications (and the
        status); the widget stays usable."""
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


def _one_line(error: BaseException) -> str:
    """An error's message on one line (InputError and other ValueErrors speak for
    themselves; anything else is named)."""
    msg = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
    return " ".join(msg.split())
