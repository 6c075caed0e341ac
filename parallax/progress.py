"""``progress=True``: a live one-line status of a call on the terminal, drawn with rich.

An event consumer of the call's :class:`~parallax.events.EventBus`: it counts
jobs as they start and finish and keeps one line on stderr up to date -- done
(of the total when known), failed, running, elapsed, rate and ETA.  The line
is only drawn when stderr is a terminal and more than one host runs, and it
is erased when the call ends, so nothing of it reaches a file or a pipe.

Other consumers print to the same terminal (``print_out``, the ``parallax``
command's status lines, user callbacks).  So that a printed line never lands
on top of the status line, :class:`ProgressDisplay` registers a companion
that runs *first* for every event and clears the line, and redraws it
itself *last*, after everyone else has printed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

from .errors import Error
from .hookspecs import hookimpl

__all__ = ["ProgressDisplay"]

REFRESH = 0.25  # seconds between redraws while nothing happens (elapsed keeps ticking)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def failed(result: Any) -> bool:
    """Whether a host's outcome counts as failed: an Error or a non-zero exit status."""
    if isinstance(result, Error):
        return True
    return isinstance(result, tuple) and bool(result) and result[0] != 0


class _Clearer:
    """Runs before every other consumer: takes the status line off the screen."""

    def __init__(self, display: ProgressDisplay, on_output: bool) -> None:
        self.display = display
        self.on_output = on_output

    @hookimpl(tryfirst=True)
    def parallax_job_started(self, job: Any) -> None:
        self.display.hide()

    @hookimpl(tryfirst=True)
    def parallax_output(self, job: Any, stream: str, data: bytes) -> None:
        if self.on_output:
            self.display.hide()

    @hookimpl(tryfirst=True)
    def parallax_job_finished(self, job: Any, result: Any) -> None:
        self.display.hide()


class ProgressDisplay:
    """The live status line of one call (see the module docstring).

    ``total`` is the number of jobs when the caller knows it (then the line
    shows ``done/total`` and an ETA); ``None`` shows counts only.
    ``clear_on_output`` makes the line step aside for output chunks too
    (needed when something prints output as it arrives).
    """

    def __init__(self, total: int | None = None, *, stream: TextIO | None = None,
                 clear_on_output: bool = False) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.started = 0
        self.done = 0
        self.failures = 0
        self.start_time = time.monotonic()
        self.clearer = _Clearer(self, clear_on_output)
        self._lock = threading.Lock()
        self._hidden = False
        self._live: Any = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    @property
    def active(self) -> bool:
        """Whether the line is on the terminal (started, not yet closed)."""
        return self._live is not None

    # -- what the line says ------------------------------------------------

    def text(self) -> str:
        """The status line as plain text."""
        elapsed = time.monotonic() - self.start_time
        running = self.started - self.done
        done = f"{self.done}/{self.total} done" if self.total else f"{self.done} done"
        parts = [done, f"{self.failures} failed", f"{running} running", f"{_clock(elapsed)} elapsed"]
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            parts.append(f"{rate:.1f}/s")
            if self.total and self.done < self.total:
                parts.append(f"ETA {_clock((self.total - self.done) / rate)}")
        return "parallax: " + ", ".join(parts)

    def _renderable(self) -> Any:
        from rich.text import Text

        line = Text(self.text(), no_wrap=True, overflow="ellipsis")
        line.highlight_regex(r"\d+ failed", "bold red" if self.failures else "dim")
        line.highlight_regex(r"\d+(/\d+)? done", "bold green")
        return line

    # -- drawing -----------------------------------------------------------

    def _wanted(self) -> bool:
        if self._closed:
            return False
        many = self.total > 1 if self.total is not None else self.started > 1
        return many and _is_terminal(self.stream)

    def _ensure_started(self) -> None:
        if self._live is not None or not self._wanted():
            return
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        self._live = Live(console=console, auto_refresh=False, transient=True,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()
        self._ticker = threading.Thread(target=self._tick, name="parallax-progress", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        """Redraw now and then, so that elapsed time moves while no host finishes."""
        while not self._stop.wait(REFRESH):
            with self._lock:
                if not self._hidden:  # hidden: another consumer is printing right now
                    self._draw(self._renderable())

    def _draw(self, renderable: Any) -> None:
        """Put *renderable* on the line (lock held); a terminal that went away ends the display."""
        if self._live is None or self._closed:
            return
        try:
            self._live.update(renderable, refresh=True)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: the run goes on without the line
            self._closed = True
            self._stop.set()

    def hide(self) -> None:
        """Take the line off the screen until the next :meth:`show`."""
        from rich.text import Text

        with self._lock:
            if not self._hidden:
                self._draw(Text(""))
            self._hidden = True

    def show(self) -> None:
        """Draw the line with the current counts."""
        with self._lock:
            self._hidden = False
            self._draw(self._renderable())

    def close(self) -> None:
        """Erase the line for good and stop redrawing (idempotent)."""
        from rich.text import Text

        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
        with self._lock:
            live, self._live = self._live, None
            closed, self._closed = self._closed, True
            if live is None:
                return
            try:
                if not closed:
                    live.update(Text(""))  # stop() draws once more: draw nothing
                live.stop()
                self.stream.flush()
            except (OSError, ValueError):
                pass

    # -- events (trylast: after every other consumer has printed) ----------

    @hookimpl(trylast=True)
    def parallax_job_started(self, job: Any) -> None:
        self.started += 1
        self._ensure_started()
        self.show()

    @hookimpl(trylast=True)
    def parallax_output(self, job: Any, stream: str, data: bytes) -> None:
        if self._hidden:
            self.show()

    @hookimpl(trylast=True)
    def parallax_job_finished(self, job: Any, result: Any) -> None:
        self.done += 1
        if failed(result):
            self.failures += 1
        self.show()


def _is_terminal(stream: Any) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False
