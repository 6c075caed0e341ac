"""What the command prints: pssh's status lines, JSON Lines, gathered groups.

Status lines are pssh's, word for word::

    [1] 12:34:56 [SUCCESS] web1
    [2] 12:34:57 [FAILURE] web2 Exited with error code 3

With ``-i`` the host's stdout follows its line, then its stderr after
``Stderr: `` (pssh writes both exactly as received).  On a terminal the
markers are coloured as pssh colours them (drawn with rich, which also
honours ``NO_COLOR`` and ``TERM=dumb``).  The printers are the library's
``on_finish`` callback, so each line appears as its host ends.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Iterable
from typing import Any, BinaryIO

from ..errors import Error
from ..gather import Group

__all__ = ["JsonPrinter", "StatusPrinter", "failure_text", "json_record", "print_groups"]

RULE = "-" * 15  # clubak's separator


def _out() -> BinaryIO:
    sys.stdout.flush()
    return sys.stdout.buffer


def failure_text(outcome: Any) -> str | None:
    """pssh's failure words for *outcome* (``Exited with error code 3``), or ``None`` on success."""
    if isinstance(outcome, Error):
        return " ".join(str(outcome.msg).split()) or type(outcome).__name__
    if outcome[0] != 0:
        return f"Exited with error code {outcome[0]}"
    return None


class StatusPrinter:
    """``on_finish``: one numbered status line per host, as pssh prints it.

    ``inline`` adds the host's stdout and then ``Stderr: `` and its stderr
    (``-i``); ``inline_stdout`` adds the stdout alone (``--inline-stdout``).
    """

    def __init__(self, *, inline: bool = False, inline_stdout: bool = False) -> None:
        self.inline = inline
        self.inline_stdout = inline_stdout
        self.count = 0
        self.console = _terminal_console()

    def _line(self, *parts: tuple[str, str]) -> None:
        """One status line from ``(text, style)`` parts; styled only on a terminal."""
        if self.console is not None:
            from rich.text import Text

            sys.stdout.flush()
            self.console.print(Text.assemble(*parts))
            self.console.file.flush()
        else:
            _out().write(("".join(text for text, _ in parts) + "\n").encode("utf-8", "replace"))

    def __call__(self, host: str, outcome: Any) -> None:
        self.count += 1
        stamp = time.strftime("%H:%M:%S")
        failure = failure_text(outcome)
        head = ((f"[{self.count}]", "bold cyan"), (f" {stamp} ", ""))
        if failure is None:
            self._line(*head, ("[SUCCESS]", "bold green"), (f" {host}{_check_detail(outcome)}", ""))
        else:
            self._line(*head, ("[FAILURE]", "bold red"), (f" {host} ", ""), (failure, "bold red"))
        out = _out()
        stdout, stderr = _streams(outcome)
        if (self.inline or self.inline_stdout) and stdout:
            out.write(stdout)
            out.flush()
        if self.inline and stderr:
            if self.console is not None:
                from rich.text import Text

                self.console.print(Text("Stderr: ", style="red"), end="")
                self.console.file.flush()
                out.write(stderr)
            else:
                out.write(b"Stderr: " + stderr)
        out.flush()


def _terminal_console() -> Any:
    """A rich console on stdout when it is a terminal (pssh colours only there), else ``None``."""
    try:
        if not sys.stdout.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, markup=False, emoji=False, soft_wrap=True)


def _check_detail(outcome: Any) -> str:
    """After a successful pre-flight's host: how it authenticated and how long connecting took."""
    auth = getattr(outcome, "auth", None)
    if auth is None:
        return ""
    return f" {auth} in {float(getattr(outcome, 'connect_time', 0.0)):.3f} s"


def _streams(outcome: Any) -> tuple[bytes, bytes]:
    if isinstance(outcome, Error):
        return outcome.stdout or b"", outcome.stderr or b""
    return outcome[1] or b"", outcome[2] or b""


def _text_field(record: dict[str, Any], name: str, data: bytes) -> None:
    """``name``: the bytes as text; not UTF-8: ``None`` and ``name_base64`` instead."""
    try:
        record[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        record[name] = None
        record[f"{name}_base64"] = base64.b64encode(data).decode("ascii")


def json_record(host: str, outcome: Any) -> dict[str, Any]:
    """One host's outcome as the JSON object ``--json`` prints."""
    record: dict[str, Any] = {"host": host}
    stdout, stderr = _streams(outcome)
    if isinstance(outcome, Error):
        record["rc"] = outcome.rc
        record["error"] = type(outcome).__name__
        record["message"] = outcome.msg
    else:
        record["rc"] = outcome[0]
        record["error"] = None
        record["message"] = None
    _text_field(record, "stdout", stdout)
    _text_field(record, "stderr", stderr)
    record["duration"] = round(float(getattr(outcome, "duration", 0.0) or 0.0), 6)
    if not isinstance(outcome, Error):
        for name in ("path", "auth", "connect_time"):  # slurp's local path; check's method and time
            value = getattr(outcome, name, None)
            if value is not None:
                record[name] = round(value, 6) if isinstance(value, float) else value
    return record


class JsonPrinter:
    """``on_finish`` for ``--json``: one JSON object per host per line, as each host ends."""

    def __call__(self, host: str, outcome: Any) -> None:
        out = _out()
        out.write(json.dumps(json_record(host, outcome), ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()


def print_groups(groups: Iterable[Group]) -> None:
    """``-b``: each group of hosts that ended alike once, clubak-style.

    A header with the folded node set (and the count when more than one),
    the shared stdout, the shared stderr after ``Stderr: ``, and for failed
    groups ``[FAILURE]`` with pssh's failure words.
    """
    out = _out()
    for g in groups:
        header = g.nodes if g.count == 1 else f"{g.nodes} ({g.count})"
        out.write(f"{RULE}\n{header}\n{RULE}\n".encode("utf-8", "replace"))
        if g.stdout:
            out.write(g.stdout if g.stdout.endswith(b"\n") else g.stdout + b"\n")
        if g.stderr:
            out.write(b"Stderr: " + (g.stderr if g.stderr.endswith(b"\n") else g.stderr + b"\n"))
        if g.error is not None:
            message = " ".join((g.message or "").split()) or g.error
            out.write(f"[FAILURE] {message}\n".encode("utf-8", "replace"))
        elif g.rc != 0:
            out.write(f"[FAILURE] Exited with error code {g.rc}\n".encode())
    out.flush()
