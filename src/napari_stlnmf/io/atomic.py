"""Atomic file writes: a crash leaves either the old file or the new one, never half.

:func:`atomic_batch` groups several writes so that they appear together: a failure in
any of them (a full disk, an interrupt) leaves every target as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

__all__ = ["atomic_write", "atomic_batch"]

#: (temporary file, target) pairs waiting for the end of the current batch, or None
_PENDING: ContextVar[list[tuple[str, Path]] | None] = ContextVar("atomic_batch", default=None)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _publish(tmp: str, path: Path) -> None:
    # mkstemp makes the file private (0600); give it the mode a plain open() would,
    # or keep the mode of the file it replaces
    os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else _default_mode())
    os.replace(tmp, path)


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over
    ``path``. On any error the temporary file is removed and ``path`` is untouched.

    Inside :func:`atomic_batch` the rename waits for the end of the batch."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    pending = _PENDING.get()
    try:
        write(tmp)
        if pending is None:
            _publish(tmp, path)
        else:
            pending.append((tmp, path))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_batch() -> Iterator[None]:
    """Make every :func:`atomic_write` of the block appear only when the whole block
    succeeds: each file is written to its temporary file as usual, and all are renamed
    over their targets at the end. On any error (or interrupt) inside the block, none of
    the targets changes and no temporary file is left. A nested batch joins the outer.

    Only the renames themselves (fast, and not subject to a full disk) happen after the
    block; an error there leaves the files renamed so far new and the others old.
    """
    if _PENDING.get() is not None:
        yield
        return
    pending: list[tuple[str, Path]] = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        _PENDING.reset(token)
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)
        raise
    _PENDING.reset(token)
    done = 0
    try:
        for tmp, path in pending:
            _publish(tmp, path)
            done += 1
    finally:
        for tmp, _ in pending[done:]:
            Path(tmp).unlink(missing_ok=True)
