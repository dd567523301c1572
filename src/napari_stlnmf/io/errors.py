"""The one exception type for problems with a user's files or arguments."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """A user's input (file, column, gene list, argument) is unusable.

    The message is one line that names the file and the problem; the CLI prints it and
    exits with code 2, the GUI shows it as a notification.
    """
