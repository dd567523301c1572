"""The learned STL NMF parameters as two small tables instead of a JSON dump.

One row per scalar parameter (λ1..λ3, σ1, σ2: symbol, value, what it does), and the
per-region group weights ω as a cell type × region table: type names are long and there
are many of them (17 in the sample), regions are few, so types go down the rows and the
table fits a narrow dock. The row builders are plain functions (tested without a display).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = ["PARAMETER_INFO", "format_value", "parameter_rows", "omega_rows", "ParamsTable"]

#: Readable symbol, a meaning short enough for a narrow dock, and a longer one (tooltip)
#: for each key of ``STLNMF.learned_parameters()`` (docs/method.md has the objective).
PARAMETER_INFO: dict[str, tuple[str, str, str]] = {
    "lambda1": (
        "λ1",
        "smoothing between neighbours",
        "graph smoothing: pulls neighbouring spots toward similar fractions",
    ),
    "lambda2": (
        "λ2",
        "pull toward a sum of 1",
        "sum-to-one: holds each spot's fractions near a total of 1",
    ),
    "lambda3": (
        "λ3",
        "strength of the region term",
        "region term: overall strength of the per-region weights ω",
    ),
    "sigma1": (
        "σ1",
        "neighbour reach (spot spacings)",
        "neighbour reach, in spot spacings: larger lets farther spots count",
    ),
    "sigma2": (
        "σ2",
        "smoothing across region borders",
        "smoothing across region borders: small cuts it at the borders, large ignores them",
    ),
}
PLACEHOLDER = "learned parameters appear after training"
OMEGA_MEANING = (
    "ω (rows: cell types, columns: regions): a large ω pushes that type toward 0 in that region"
)

#: the ω table shows at most this many rows before it scrolls (the dock scrolls too)
MAX_OMEGA_ROWS = 18


def format_value(v: float) -> str:
    """A parameter value with 3 significant digits (0.0213, 1.05, 12.3); tiny and huge
    values in scientific notation."""
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
        return f"{v:.2e}"
    return f"{v:.3g}"


def _scalar_text(values) -> str:
    vals = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if vals.size == 1:
        return format_value(vals[0])
    # untied layers: one value per layer; their mean and spread say more than a list
    return (
        f"{format_value(vals.mean())} ({format_value(vals.min())}–{format_value(vals.max())}"
        f" over {vals.size} layers)"
    )


def parameter_rows(params: dict) -> list[tuple[str, str, str]]:
    """``(symbol, value, short meaning)`` per scalar parameter of ``learned_parameters()``.

    Parameters
    ----------
    params : dict
        ``lambda1``..``lambda3``, ``sigma1``, ``sigma2`` (lists: one value, or one per
        layer for untied layers) and ``omega``; unknown keys are shown by their name.

    Returns
    -------
    list of tuple of str
    """
    rows = []
    for key, values in params.items():
        if key == "omega":
            continue
        symbol, meaning, _ = PARAMETER_INFO.get(key, (key, "", ""))
        rows.append((symbol, _scalar_text(values), meaning))
    return rows


def omega_rows(
    params: dict, cell_types: Sequence[str] | None = None
) -> tuple[list[str], list[str], list[list[str]]]:
    """The ω table: ``(row names = cell types, column names = regions, cells)``.

    Parameters
    ----------
    params : dict
        With ``omega``: ``{region: [one weight per cell type]}``.
    cell_types : sequence of str, optional
        Type names in the order of the weights; default ``type 1``, ``type 2``, …

    Returns
    -------
    types, regions, cells : list of str, list of str, list of list of str
        ``cells[i][j]`` is the weight of type ``i`` in region ``j``, formatted.
    """
    omega = params.get("omega") or {}
    regions = [str(r) for r in omega]
    columns = [np.asarray(v, dtype=np.float64) for v in omega.values()]
    k = max((c.size for c in columns), default=0)
    types = [str(t) for t in cell_types] if cell_types is not None else []
    if len(types) != k:
        types = [f"type {i + 1}" for i in range(k)]
    cells = [[format_value(c[i]) if i < c.size else "" for c in columns] for i in range(k)]
    return types, regions, cells


def _item(text: str, tip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tip:
        item.setToolTip(tip)
    return item


def _fit_height(table: QTableWidget, max_rows: int) -> None:
    """Make a table exactly as tall as its rows (up to ``max_rows``): inside a scrolling
    dock a second, nested scroll area only gets in the way."""
    rows = min(table.rowCount(), max_rows)
    height = table.horizontalHeader().height() if table.horizontalHeader().isVisible() else 0
    height += sum(table.rowHeight(i) for i in range(rows)) + 2 * table.frameWidth() + 2
    if table.horizontalScrollBarPolicy() != Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
        # room for a horizontal scroll bar (many regions), so it never hides the last row
        height += table.horizontalScrollBar().sizeHint().height()
    table.setFixedHeight(max(height, 24))


class ParamsTable(QWidget):
    """Learned parameters of a model: ``scalars`` (one row per λ/σ) and ``omega``
    (cell type × region). :meth:`set_parameters` fills them, :meth:`clear` empties them,
    :meth:`toPlainText` gives the same numbers as text (for copying and tests)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._text = ""
        self.placeholder = QLabel(PLACEHOLDER)
        self.placeholder.setWordWrap(True)
        self.placeholder.setEnabled(False)  # greyed: a hint, not a value

        self.scalars = QTableWidget(0, 2)
        self.scalars.setHorizontalHeaderLabels(["value", "what it does"])
        self.omega_caption = QLabel(OMEGA_MEANING)
        self.omega_caption.setWordWrap(True)
        self.omega = QTableWidget(0, 0)
        self.omega.setToolTip(OMEGA_MEANING)
        for table in (self.scalars, self.omega):
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            table.setWordWrap(False)
            table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = self.scalars.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        # short meanings fit the stretched column (the long ones are tooltips)
        self.scalars.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.omega.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.placeholder, self.scalars, self.omega_caption, self.omega):
            lay.addWidget(w)
        self.clear()

    @property
    def is_empty(self) -> bool:
        """True before any parameters were set (or after :meth:`clear`)."""
        return not self._text

    def clear(self, message: str | None = None) -> None:
        """Back to the placeholder (no model, or the model is for another slide).

        Parameters
        ----------
        message : str, optional
            The placeholder's text; default "learned parameters appear after training".
        """
        self._text = ""
        self.placeholder.setText(message or PLACEHOLDER)
        for table in (self.scalars, self.omega):
            table.clearContents()
            table.setRowCount(0)
        self.omega.setColumnCount(0)
        self.placeholder.setVisible(True)
        for w in (self.scalars, self.omega_caption, self.omega):
            w.setVisible(False)

    def set_parameters(self, params: dict, cell_types: Sequence[str] | None = None) -> None:
        """Show ``learned_parameters()`` of a model.

        Parameters
        ----------
        params : dict
            As returned by :meth:`STLNMF.learned_parameters`.
        cell_types : sequence of str, optional
            Names of the ω columns (the model's ``reference_.cell_types``).
        """
        rows = parameter_rows(params)
        self.scalars.setRowCount(len(rows))
        self.scalars.setVerticalHeaderLabels([r[0] for r in rows])
        keys = [k for k in params if k != "omega"]
        for i, (key, (symbol, value, meaning)) in enumerate(zip(keys, rows, strict=True)):
            tip = PARAMETER_INFO.get(key, ("", "", meaning))[2]
            self.scalars.setItem(i, 0, _item(value, f"{symbol} = {value}"))
            self.scalars.setItem(i, 1, _item(meaning, tip))
        types, regions, cells = omega_rows(params, cell_types)
        self.omega.setRowCount(len(types))
        self.omega.setColumnCount(len(regions))
        self.omega.setVerticalHeaderLabels(types)
        self.omega.setHorizontalHeaderLabels(regions)
        for i, row in enumerate(cells):
            for j, text in enumerate(row):
                tip = f"ω of {types[i]} in region {regions[j]}"
                item = _item(text, tip)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.omega.setItem(i, j, item)
        self.placeholder.setVisible(False)
        self.scalars.setVisible(bool(rows))
        self.omega_caption.setVisible(bool(types))
        self.omega.setVisible(bool(types))
        _fit_height(self.scalars, len(rows))
        _fit_height(self.omega, MAX_OMEGA_ROWS)

        lines = [f"{s} = {v}" for s, v, _ in rows]
        if types:
            lines.append("ω\t" + "\t".join(f"region {r}" for r in regions))
            lines += [f"{t}\t" + "\t".join(row) for t, row in zip(types, cells, strict=True)]
        self._text = "\n".join(lines)

    def toPlainText(self) -> str:  # noqa: N802 (the QPlainTextEdit name it replaces)
        """The shown parameters as text: ``λ1 = 0.0213`` lines, then the ω table
        tab-separated; empty when nothing is shown."""
        return self._text
