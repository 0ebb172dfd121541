"""Replay progress: a bar with events/s and time left, and a button that cancels.

A watcher thread reads the job's progress every ``interval_s`` until the job ends or the
widget is closed; the job itself knows nothing of the widget. ``refresh()`` is what the
watcher calls, and what a test calls to read the job now.
"""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING

import ipywidgets
import traitlets

from allsource_lab.notebook.widgets.panel import Panel, reported, start_thread

if TYPE_CHECKING:
    from allsource_lab.replay import ReplayJob

__all__ = ["ReplayProgressBar"]

_ENDED = ("done", "cancelled", "failed")
_BAR_STYLES = {"done": "success", "cancelled": "warning", "failed": "danger"}


class ReplayProgressBar(Panel):
    """Watches a :class:`~allsource_lab.replay.ReplayJob`.

    Traits (read-only, as of the last ``refresh()``): ``status``, ``processed``,
    ``total``, ``percent``, ``events_per_sec``, ``eta_s`` (None when unknown) and
    ``job_error`` (the job's error, ``""`` when none). ``cancel()`` is the button.
    """

    status = traitlets.Unicode("pending", read_only=True, help="the job's status")
    processed = traitlets.Int(0, read_only=True, help="events replayed so far")
    total = traitlets.Int(0, read_only=True, help="events the replay will feed")
    percent = traitlets.Float(0.0, read_only=True, help="processed / total, in percent")
    events_per_sec = traitlets.Float(0.0, read_only=True, help="replay rate")
    eta_s = traitlets.Float(None, allow_none=True, read_only=True, help="seconds left, or None")
    job_error = traitlets.Unicode("", read_only=True, help="why the job failed ('' if not)")

    def __init__(self, job: ReplayJob, interval_s: float = 0.2) -> None:
        self._job = job
        self._interval_s = interval_s
        # One refresh at a time: the watcher and a caller must not interleave reading the
        # job and writing the traits, or an older reading could overwrite a newer one.
        self._reading = threading.Lock()
        self._closing = threading.Event()
        self._bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=100.0)
        self._numbers = ipywidgets.HTML("")
        self._cancel = ipywidgets.Button(description="cancel", button_style="warning")
        super().__init__(
            f"Replay {job.id}: {job.projection.name}",
            [ipywidgets.HBox([self._bar, self._cancel]), self._numbers],
        )
        self._cancel.on_click(lambda _: self.cancel())
        self.refresh()
        self._watcher: threading.Thread | None = None
        if job.status not in _ENDED:
            self._watcher = start_thread(self._watch, f"allsource-replay-widget-{job.id}")

    @reported
    def cancel(self) -> None:
        """Ask the replay to stop at its next batch (the projection is then rolled back)."""
        self._job.cancel()
        self._cancel.disabled = True
        self._cancel.description = "cancelling…"
        self.refresh()

    @reported
    def refresh(self) -> None:
        """Read the job's status and progress into the traits and the bar."""
        with self._reading:
            job = self._job
            status = job.status  # read before progress: a job seen ended shows its end
            progress = job.progress
            error = job.error
            self.set_trait("status", status)
            self.set_trait("processed", progress.processed)
            self.set_trait("total", progress.total)
            self.set_trait("percent", progress.percent)
            self.set_trait("events_per_sec", progress.events_per_sec)
            self.set_trait("eta_s", progress.eta_s)
            self.set_trait("job_error", "" if error is None else f"{type(error).__name__}: {error}")
            self._bar.value = progress.percent
            self._bar.bar_style = _BAR_STYLES.get(status, "")
            if status in _ENDED:
                self._cancel.disabled = True
                self._cancel.description = status
            eta = "" if progress.eta_s is None else f" · {progress.eta_s:,.1f} s left"
            why = f" · <span style='color:#b00020'>{html.escape(self.job_error)}</span>"
            self._numbers.value = (
                f"<b>{status}</b> · {progress.processed:,} of {progress.total:,} events "
                f"({progress.percent:.1f}%) · {progress.events_per_sec:,.0f} events/s{eta}"
                f"{why if self.job_error else ''}"
            )

    def close(self) -> None:
        """Stop watching the job (the replay goes on) and close the widget."""
        self._closing.set()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join()
        super().close()

    def _watch(self) -> None:
        job = self._job
        while not self._closing.is_set():
            ended = job.wait(self._interval_s)
            if self._closing.is_set():
                return
            self.refresh()
            if ended:
                return
