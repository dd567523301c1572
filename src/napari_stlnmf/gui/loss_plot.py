"""Live training-loss plot (train and validation RMSE per epoch), a small matplotlib
canvas embedded in Qt.

Before any data it shows only a placeholder sentence (empty axes would show meaningless
±0.04 ticks); the legend sits below the axes, so it never covers the curves.
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["LossPlot", "PLACEHOLDER"]

PLACEHOLDER = "training loss appears here"


class LossPlot(FigureCanvasQTAgg):
    """Two lines, updated with :meth:`add` after every epoch; :meth:`clear` for a new run."""

    def __init__(self, height: float = 2.4):
        fig = Figure(figsize=(3.6, height), dpi=90, layout="constrained")
        super().__init__(fig)
        self.ax = fig.add_subplot(111)
        self.epochs: list[int] = []
        self.train: list[float] = []
        self.val: list[float] = []
        self.n_epochs: int | None = None
        (self._train_line,) = self.ax.plot([], [], "o-", ms=3, label="train (simulated)")
        (self._val_line,) = self.ax.plot([], [], "s-", ms=3, label="validation (simulated)")
        self.ax.set_xlabel("epoch", fontsize=8)
        self.ax.set_ylabel("RMSE of fractions", fontsize=8)
        self.ax.tick_params(labelsize=7)
        # epochs are whole numbers: no 0.5 ticks
        self.ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        self._placeholder = fig.text(
            0.5, 0.5, PLACEHOLDER, ha="center", va="center", fontsize=9, color="0.5"
        )
        self.legend = None
        self.setMinimumHeight(int(height * 75))
        self._redraw()

    @property
    def is_placeholder(self) -> bool:
        """True while there is nothing to plot (the axes are hidden)."""
        return not self.epochs

    def clear(self, n_epochs: int | None = None) -> None:
        """Forget the curves; ``n_epochs``, when known, fixes the x range of the next run
        (so the plot fills from left to right instead of rescaling every epoch)."""
        self.epochs, self.train, self.val = [], [], []
        self.n_epochs = n_epochs
        self._redraw()

    def add(
        self, epoch: int, train_rmse: float, val_rmse: float, n_epochs: int | None = None
    ) -> None:
        """Append one epoch (epoch 0 is the untrained network)."""
        if n_epochs is not None:
            self.n_epochs = int(n_epochs)
        self.epochs.append(int(epoch))
        self.train.append(float(train_rmse))
        self.val.append(float(val_rmse))
        self._redraw()

    def _redraw(self) -> None:
        empty = self.is_placeholder
        self.ax.set_visible(not empty)
        self._placeholder.set_visible(empty)
        if empty:
            if self.legend is not None:  # an outside legend would keep its space
                self.legend.remove()
                self.legend = None
        else:
            self._train_line.set_data(self.epochs, self.train)
            self._val_line.set_data(self.epochs, self.val)
            last = max(self.epochs[-1], self.n_epochs or 0, 1)
            self.ax.set_xlim(-0.3, last + 0.3)
            values = self.train + self.val
            lo, hi = min(values), max(values)
            pad = 0.08 * (hi - lo) if hi > lo else 0.1 * abs(hi) or 0.01
            self.ax.set_ylim(max(lo - pad, 0.0) if lo >= 0 else lo - pad, hi + pad)
            if self.legend is None:
                # below the axes, in the figure: constrained layout makes room for it
                self.legend = self.figure.legend(
                    loc="outside lower center", ncols=2, fontsize=7, frameon=False
                )
        self.draw_idle()
