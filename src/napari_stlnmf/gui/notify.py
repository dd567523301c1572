"""One-line napari notifications (never a traceback dialog)."""

from __future__ import annotations

__all__ = ["notify"]


def notify(message: str, error: bool = False) -> None:
    """Show ``message`` (whitespace collapsed to one line) as an info or error toast."""
    from napari.utils.notifications import show_error, show_info

    from ..io.errors import one_line

    (show_error if error else show_info)(one_line(message))
