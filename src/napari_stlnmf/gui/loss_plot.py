"""Live training-loss plot (train and validation RMSE per epoch), a small matplotlib
canvas embedded in Qt."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

__all__ = ["LossPlot"]


class LossPlot(FigureCanvasQTAgg):
    """Two lines, updated with :meth:`add` after every epoch; :meth:`clear` for a new run."""

    def __init__(self, height: float = 2.2):
        fig = Figure(figsize=(3.6, height), dpi=90, layout="constrained")
        super().__init__(fig)
        self.ax = fig.add_subplot(111)
        self.epochs: list[int] = []
        self.train: list[float] = []
        self.val: list[float] = []
        (self._train_line,) = self.ax.plot([], [], "o-", ms=3, label="train (simulated)")
        (self._val_line,) = self.ax.plot([], [], "s-", ms=3, label="validation (simulated)")
        self.ax.set_xlabel("epoch", fontsize=8)
        self.ax.set_ylabel("RMSE of fractions", fontsize=8)
        self.ax.tick_params(labelsize=7)
        self.ax.legend(fontsize=7, loc="upper right")
        self.setMinimumHeight(int(height * 70))

    def clear(self) -> None:
        self.epochs, self.train, self.val = [], [], []
        self._redraw()

    def add(self, epoch: int, train_rmse: float, val_rmse: float) -> None:
        self.epochs.append(int(epoch))
        self.train.append(float(train_rmse))
        self.val.append(float(val_rmse))
        self._redraw()

    def _redraw(self) -> None:
        self._train_line.set_data(self.epochs, self.train)
        self._val_line.set_data(self.epochs, self.val)
        self.ax.relim()
        self.ax.autoscale_view()
        self.draw_idle()
