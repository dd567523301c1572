"""The dock's inputs (a mixin of :class:`~napari_stlnmf.gui.dock.StlnmfWidget`): which slide
and Regions layer are chosen as layers come and go, the reference file with its label key
and gene overlap, and the pipeline inputs they make (:meth:`SlideInputs.prepared`)."""

from __future__ import annotations

from pathlib import Path

from napari.layers import Labels

from ..io.errors import InputError, one_line
from ..io.reference import LABEL_KEY_GUESSES
from ..options import GENE_SELECTIONS
from .meta import Kind, is_spots, kind_of
from .workflow import reference_columns, regions_of, slide_of

__all__ = ["NO_REGIONS_LAYER", "SlideInputs", "layer_choices", "regions_layer_for"]

#: The regions combo's first choice: no Labels layer, the spots' own ``region`` feature.
NO_REGIONS_LAYER = "(none: spots' own regions)"


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


def layer_choices(viewer, kind: Kind):
    """A magicgui ``choices`` callable: the viewer's spots layers (``Kind.SPOTS``), or its
    Labels layers that are not results, after :data:`NO_REGIONS_LAYER` (``Kind.REGIONS``)."""

    def choices(widget=None):
        if kind is Kind.SPOTS:
            return [(ly.name, ly) for ly in viewer.layers if is_spots(ly)]
        labels = [
            (ly.name, ly)
            for ly in viewer.layers
            if isinstance(ly, Labels) and kind_of(ly) is not Kind.RESULT
        ]
        return [(NO_REGIONS_LAYER, None), *labels]

    return choices


def _one_line(error: BaseException) -> str:
    """An error's message on one line (InputError and other ValueErrors speak for
    themselves; anything else is named)."""
    return one_line(error if isinstance(error, ValueError) else f"{type(error).__name__}: {error}")


class SlideInputs:
    """Needs ``self.viewer``, the form's ``spots``, ``regions``, ``ref_path``,
    ``label_key`` and ``markers``, ``self.overlap`` (a label), ``self.model``,
    ``self.busy``, ``self.clear_results``, ``self._shown_spots`` and ``self._fail``; sets
    ``self.reference`` and ``self._ref_key``."""

    # ------------------------------------------------------------------ slide, regions
    def _refresh_layers(self, event=None) -> None:
        """Layers came or went (a background event: problems go to labels, not toasts).

        A newly opened slide becomes the chosen one (not during a run, whose results
        belong to the slide it started on), and a newly painted Regions layer of the
        chosen slide becomes its regions layer.
        """
        added = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        self.spots.reset_choices()
        if is_spots(added) and added is not self.spots.value and not self.busy:
            self.spots.value = added  # -> _on_spots_changed
        self.regions.reset_choices()
        if isinstance(added, Labels) and kind_of(added) is Kind.REGIONS:
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

    # ---------------------------------------------------------------------- reference
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

    # ------------------------------------------------------------------------ prepared
    def prepared(self, use_model: bool = False):
        """Pipeline inputs from the chosen layers and reference (raises InputError); with
        ``use_model``, on the current model's genes (for deconvolving with it)."""
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
            markers=GENE_SELECTIONS[self.markers.value],
            spatial_name=spots.name,
        )
