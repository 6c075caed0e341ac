"""``parallax.progress.ProgressDisplay`` on a pseudo-terminal: what it draws, and that it erases it.

The tmux tests watch the whole command; these drive the display's event
hooks directly to check the parts a run cannot pin down: ``done/total`` and
the ETA when the total is known, and the failure count.
"""

from __future__ import annotations

import os
import re
import threading
import time
from types import SimpleNamespace

import parallax
from parallax.progress import ProgressDisplay

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A pty whose slave end is the display's stream; everything drawn is collected."""

    def __init__(self) -> None:
        master, slave = os.openpty()
        self.master = master
        self.stream = os.fdopen(slave, "w", buffering=1)
        self.data = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.data.extend(chunk)

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def wait_for(self, pattern: str, timeout: float = 10) -> str:
        """What was drawn (escapes removed) once it matches *pattern*."""
        deadline = time.monotonic() + timeout
        while True:
            drawn = ANSI.sub("", self.text())
            if re.search(pattern, drawn) or time.monotonic() > deadline:
                return drawn
            time.sleep(0.01)

    def finish(self) -> str:
        """Close the terminal's slave end and return everything that was drawn on it."""
        if not self.stream.closed:
            self.stream.close()
            self.reader.join(timeout=30)  # the reader sees EOF once the slave end is closed
        return self.text()

    def close(self) -> None:
        self.finish()
        os.close(self.master)


def job(key: str) -> SimpleNamespace:
    return SimpleNamespace(key=key)


def test_done_of_total_failed_and_eta_then_erased(monkeypatch):
    monkeypatch.delenv("TERM", raising=False)
    term = Terminal()
    try:
        display = ProgressDisplay(3, stream=term.stream)
        for key in ("a", "b", "c"):
            display.parallax_job_started(job(key))
        display.parallax_job_finished(job("a"), parallax.CallResult(0, b"", b"", host="a"))
        display.parallax_job_finished(job("b"), parallax.ConnectionFailed("refused", host="b"))
        assert display.active
        drawn = term.wait_for(r"2/3 done.*ETA")
        assert "parallax: 2/3 done, 1 failed, 1 running, 0:00 elapsed, " in drawn
        assert re.search(r"elapsed, [0-9.]+/s, ETA 0:00", drawn)
        display.close()
        display.close()  # idempotent
        assert not display.active
        tail = term.finish().rsplit("ETA", 1)[1]
        assert "\x1b[2K" in tail  # the line is erased ...
        assert "done" not in tail  # ... not drawn again
    finally:
        term.close()


def test_nothing_is_drawn_for_one_host_or_off_a_terminal(tmp_path):
    term = Terminal()
    try:
        single = ProgressDisplay(1, stream=term.stream)
        single.parallax_job_started(job("a"))
        single.parallax_job_finished(job("a"), parallax.CallResult(0, b"", b"", host="a"))
        single.close()
        assert term.finish() == ""
    finally:
        term.close()
    with open(tmp_path / "file", "w") as f:
        display = ProgressDisplay(5, stream=f)
        for key in "abcde":
            display.parallax_job_started(job(key))
            display.parallax_job_finished(job(key), parallax.CallResult(0, b"", b"", host=key))
        display.close()
    assert (tmp_path / "file").read_text() == ""


def test_unknown_total_counts_only_and_shows_once_two_hosts_started():
    term = Terminal()
    try:
        display = ProgressDisplay(None, stream=term.stream)
        display.parallax_job_started(job("a"))
        assert not display.active  # one host so far: nothing to show
        display.parallax_job_started(job("b"))
        display.parallax_job_finished(job("a"), parallax.CallResult(3, b"", b"", host="a"))  # rc 3 counts as failed
        display.close()
        drawn = ANSI.sub("", term.finish())
        assert "parallax: 1 done, 1 failed, 1 running" in drawn and "ETA" not in drawn
    finally:
        term.close()
