"""The one exception type for problems with a user's files or arguments, and the one rule
for turning an error into the single line a user sees."""

from __future__ import annotations

__all__ = ["InputError", "one_line"]


class InputError(ValueError):
    """A user's input (file, column, gene list, argument) is unusable.

    The message is one line that names the file and the problem; the CLI prints it and
    exits with code 2, the GUI shows it as a notification.
    """


def one_line(error_or_text: BaseException | str, limit: int | None = None) -> str:
    """An error's message (or any text) as one line, as the CLI, the GUI and the readers
    show it: runs of whitespace, newlines included, become one space; text longer than
    ``limit`` characters is cut to ``limit`` with a trailing ``...``; an exception with an
    empty message gives its type name."""
    text = " ".join(str(error_or_text).split())
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    if not text and isinstance(error_or_text, BaseException):
        return type(error_or_text).__name__
    return text
