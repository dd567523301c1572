"""Running work off the UI thread for a dock, without knowing what the work is or what the
form holds: one run at a time in a napari worker thread, a cancel flag the work polls,
progress reports carried to the UI thread, a napari progress bar, and the drawing of
results spread over event-loop turns.

The dock (:class:`~napari_stlnmf.gui.dock.StlnmfWidget`) says what to run and what to do
with its reports, result and errors; this module says how.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from qtpy.QtCore import QObject, Signal

__all__ = ["Runner"]


class _Relay(QObject):
    """Carries progress reports from the worker thread to the UI thread (queued)."""

    progress = Signal(object)


class Runner:
    """One background run at a time.

    Parameters
    ----------
    on_progress : callable(report)
        Called on the UI thread for each report of the running work (reports queued
        before the run ended are dropped: the end wins).
    on_returned : callable(output)
        The work's return value, on the UI thread.
    on_error : callable(exception)
        An exception of the work (connecting it keeps superqt from re-raising it into
        the event loop), or of a step of :meth:`drive`.
    on_busy : callable(bool)
        True just before a run starts, False when it has finished (either way).
    """

    def __init__(
        self,
        on_progress: Callable[[object], None],
        on_returned: Callable[[object], None],
        on_error: Callable[[BaseException], None],
        on_busy: Callable[[bool], None],
    ):
        self._on_progress = on_progress
        self._on_returned = on_returned
        self._on_error = on_error
        self._on_busy = on_busy
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progress.connect(self._progress)
        self._worker = None
        self._pbar = None
        self.rendering = False

    @property
    def running(self) -> bool:
        """True from :meth:`start` until the run has finished."""
        return self._worker is not None

    @property
    def busy(self) -> bool:
        """True while a run or a :meth:`drive` is going on."""
        return self.running or self.rendering

    def cancel_requested(self) -> bool:
        """True once :meth:`cancel` was called during the current run (thread-safe)."""
        return self._cancel.is_set()

    def start(
        self,
        work: Callable[[Callable[[object], None], Callable[[], bool]], object],
        *,
        steps: int | None = None,
        description: str = "",
    ):
        """Run ``work(report, should_stop)`` in a worker thread; returns the worker.

        ``report(p)`` may be called from the thread: ``on_progress(p)`` follows on the UI
        thread. ``should_stop()`` turns True after :meth:`cancel`. With ``steps``, a
        napari progress bar (``description``) counts the :meth:`advance` calls.
        """
        from napari.qt.threading import create_worker

        if self.running:
            raise RuntimeError("a run is already going")
        self._cancel.clear()
        if steps is not None:
            from napari.utils import progress

            self._pbar = progress(total=steps, desc=description)
        worker = create_worker(
            lambda: work(self._relay.progress.emit, self._cancel.is_set),
            _start_thread=False,
            _connect={
                "returned": self._on_returned,
                "errored": self._on_error,
                "finished": self._finished,
            },
        )
        self._worker = worker
        self._on_busy(True)
        worker.start()
        return worker

    def cancel(self) -> bool:
        """Ask the running work to stop (it polls ``should_stop``); False if none runs."""
        if self._worker is None:
            return False
        self._cancel.set()
        return True

    def advance(self, description: str | None = None) -> None:
        """One step of the progress bar (call it last in ``on_progress``)."""
        # through a local: updating the bar can run queued events, among them the end of
        # the run (which closes the bar)
        pbar = self._pbar
        if pbar is not None:
            pbar.update(1)
            if description is not None:
                pbar.set_description(description)

    def _progress(self, report) -> None:
        if self._worker is None:  # a report queued before the run ended: the end wins
            return
        self._on_progress(report)

    def _finished(self) -> None:
        self._worker = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self._on_busy(False)

    def drive(self, steps: Iterator) -> None:
        """Advance ``steps`` one item per event-loop turn, so the viewer keeps answering
        while e.g. 20 result layers appear (each costs ~0.15 s in napari). :attr:`busy`
        stays True until it is exhausted; an exception goes to ``on_error``."""
        from qtpy.QtCore import QTimer

        self.rendering = True

        def step():
            try:
                next(steps)
            except StopIteration:
                self.rendering = False
                return
            except Exception as e:
                self.rendering = False
                self._on_error(e)
                return
            QTimer.singleShot(0, step)

        step()
