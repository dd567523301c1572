"""Dock contents in a vertical scroll area, so a dock never grows past the screen, and a
label whose long message wraps instead of crushing the form (napari docks take the
widget's size hint)."""

from __future__ import annotations

import re

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

__all__ = ["ScrollableDock", "WrapLabel"]

#: A dock asks for at most this height; the rest scrolls.
MAX_HINT_HEIGHT = 700


class ScrollableDock(QWidget):
    """A widget whose content lives in ``self.body`` (a QWidget with ``self.body_layout``)
    inside a vertical scroll area; subclasses add their rows to ``self.body_layout``."""

    def __init__(self, min_width: int = 320):
        super().__init__()
        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.setMinimumWidth(min_width)

    def sizeHint(self):  # noqa: N802 (Qt API)
        hint = self.body.sizeHint()
        hint.setHeight(min(hint.height() + 4, MAX_HINT_HEIGHT))
        hint.setWidth(max(hint.width() + self.scroll.verticalScrollBar().sizeHint().width(), 320))
        return hint


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
