"""Save / load models and export results from the dock widget (a mixin of
:class:`~napari_stlnmf.gui.dock.StlnmfWidget`), through the IO layer's safe, atomic writers."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QFileDialog

from ..training_report import training_outcome
from .notify import notify
from .workflow import slide_of

__all__ = ["FileActions"]


class FileActions:
    """Needs ``self.model``, ``self.result``, ``self.reference``, ``self.spots``,
    ``self.status``, ``self.export_kind``, ``self.set_model`` and ``self._fail``."""

    def save_model(self, path: str | None = None):
        from ..io.model_file import save_model

        if self.model is None or not hasattr(self.model, "net_"):
            notify("no trained STL NMF model to save", error=True)
            return None
        path = (
            path
            or QFileDialog.getSaveFileName(
                self, "Save model", "model.safetensors", "Model (*.safetensors)"
            )[0]
        )
        if not path:
            return None
        try:
            out = save_model(self.model, path)
        except Exception as e:
            self._fail(e)
            return None
        notify(f"saved model to {out}")
        return out

    def load_model(self, path: str | None = None):
        """Load a model; it must fit the current slide (genes) and reference (types)."""
        from ..io.model_file import load_model

        path = (
            path or QFileDialog.getOpenFileName(self, "Load model", "", "Model (*.safetensors)")[0]
        )
        if not path:
            return None
        try:
            model = load_model(path)
            if self.spots.value is not None:
                from ..pipeline import prepare

                prepare(
                    slide_of(self.spots.value),
                    self.reference,
                    model=model,
                    spatial_name=self.spots.value.name,
                )
        except Exception as e:
            self._fail(e)
            return None
        name = Path(path).name
        self.set_model(model, f"loaded from {name}")
        # the file keeps the training history: say whether that run improved on the start
        self.status.setText(f"loaded model {name}: {training_outcome(model)}")
        return model

    def export(self, kind: str | None = None, path: str | None = None):
        """Write the current result: ``proportions CSV``, ``result h5ad`` or ``region means
        CSV`` (atomically)."""
        from ..io import export as ex

        kind = kind or self.export_kind.value
        if self.result is None:
            notify("nothing to export yet: deconvolve first", error=True)
            return None
        suffix = ".h5ad" if kind == "result h5ad" else ".csv"
        default = {
            "proportions CSV": "proportions.csv",
            "result h5ad": "result.h5ad",
            "region means CSV": "region_means.csv",
        }[kind]
        path = path or QFileDialog.getSaveFileName(self, f"Export {kind}", default, f"*{suffix}")[0]
        if not path:
            return None
        try:
            if kind == "proportions CSV":
                out = ex.write_proportions_csv(path, self.result.table)
            elif kind == "region means CSV":
                out = ex.write_region_means_csv(path, self.result.region_means)
            else:
                out = ex.write_result_h5ad(
                    path,
                    slide_of(self.spots.value),
                    self.result.table,
                    self.result.cell_types,
                    self.result.metadata,
                )
        except Exception as e:
            self._fail(e)
            return None
        notify(f"exported {kind} to {out}")
        return out
