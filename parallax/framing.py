"""The wire format of persistent shells: one long-lived POSIX shell per host
reads commands from its stdin, and each command's end is marked on stdout
(with the exit status) and on stderr by a random tag.

Pure logic, no I/O: :func:`command_script` builds what is written to the
shell, :class:`FrameReader` splits a stream into the command's own bytes and
the end marker.  The command text is passed through :func:`shlex.quote`, never
pasted into the script unquoted.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Callable

#: What the login shell runs once per persistent shell: the user's own shell
#: (so commands mean what they mean under ``ssh host cmd``), reading stdin.
#: A non-POSIX login shell (csh, fish) cannot parse this or the greeting, so
#: the greeting never arrives and the caller falls back to one channel per command.
LOOP_COMMAND = 'exec "${SHELL:-/bin/sh}" -s'

#: The greeting's arithmetic proves the shell evaluates POSIX syntax.
GREETING_STATUS = 42

_TAG = re.compile(r"^[0-9a-f]{16,64}$")


def new_tag() -> str:
    """A fresh end-marker tag: no command can guess it, so output never ends early."""
    return secrets.token_hex(16)


def _check_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise ValueError(f"invalid frame tag {tag!r}")
    return tag


def _trailer(tag: str, status: str) -> str:
    # One newline before each marker, always: the reader strips exactly that one,
    # so output that does not end in a newline comes back unchanged.
    return f"printf '\\n%s %s\\n' {tag} {status}; printf '\\n%s\\n' {tag} >&2\n"


def greeting_script(tag: str) -> bytes:
    """Written once after the shell starts: install the TERM trap, then answer
    with the shell's process id (the last line before the marker).

    The trap makes a TERM sent to the shell end the running command (the
    background job) instead of the shell, which then reports the command's
    status and stays usable.
    """
    tag = _check_tag(tag)
    return ("trap 'kill -TERM $! 2>/dev/null' TERM\n"
            "printf '%s\\n' \"$$\"\n"
            + _trailer(tag, f"$(({GREETING_STATUS - 1}+1))")).encode()


def greeting_pid(output: bytes) -> int | None:
    """The shell's process id from its greeting output (anything a login
    script printed comes first)."""
    lines = output.split(b"\n")
    last = lines[-1] or (lines[-2] if len(lines) > 1 else b"")
    return int(last) if last.isdigit() else None


def command_script(command: str, tag: str) -> bytes:
    """Run *command* in a subshell (so ``cd``, variables and ``exit`` stay inside
    it) with stdin from /dev/null, then write the end markers with its status.

    The command runs as a background job the shell waits for, because POSIX
    shells run traps only between foreground commands or during ``wait``.
    """
    tag = _check_tag(tag)
    if "\0" in command:
        raise ValueError("command contains a NUL byte")
    return (f"( eval {shlex.quote(command)} ) </dev/null &\n"
            "wait $! 2>/dev/null; __parallax_rc=$?; wait $! 2>/dev/null\n"
            + _trailer(tag, '"$__parallax_rc"')).encode()


#: Bytes a gated script leaves as they are; every other byte becomes a ``printf`` octal escape.
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _,.:/=+-")


def gated_command_script(command: str, tag: str) -> bytes:
    """:func:`command_script` as ONE line that only a shell that evaluates POSIX
    arithmetic runs, for sending together with the greeting (one round trip fewer).

    The script travels as ``printf`` octal escapes inside single quotes, so a
    shell that cannot parse the line (csh, fish) sees one syntax error and no
    line of the command, and the gate is the greeting's own test: a shell whose
    greeting fails never runs it, so falling back to a plain channel is safe.
    """
    script = command_script(command, tag)
    escaped = "".join(chr(b) if b in _PLAIN else f"\\{b:03o}" for b in script)
    return (f"if [ \"$(({GREETING_STATUS - 1}+1))\" = {GREETING_STATUS} ]; "
            f"then eval \"$(printf '{escaped}')\"; fi\n").encode()


class FrameReader:
    """Passes one stream's bytes to *emit* until the end marker, holding back
    only a possible partial marker at the end of a chunk.

    On stdout the marker is ``\\n<tag> <status>\\n``; on stderr ``\\n<tag>\\n``.
    """

    def __init__(self, tag: str, emit: Callable[[bytes], None], *, with_status: bool) -> None:
        self._marker = b"\n" + _check_tag(tag).encode() + (b" " if with_status else b"\n")
        self._emit = emit
        self._with_status = with_status
        self._held = b""
        self._status_text: bytes | None = None
        self.done = False
        self.status: int | None = None
        self.extra = b""  # bytes after the marker (output of something left running)

    def feed(self, data: bytes) -> None:
        """Take the next chunk of the stream."""
        if self.done:
            self.extra += data
            return
        if self._status_text is not None:
            self._read_status(data)
            return
        buf = self._held + data if self._held else data  # no copy in the common case
        at = buf.find(self._marker)
        if at >= 0:
            if at:
                self._emit(buf[:at])
            self._held = b""
            rest = buf[at + len(self._marker):]
            if self._with_status:
                self._status_text = b""
                self._read_status(rest)
            else:
                self.done = True
                self.extra = rest
            return
        keep = _partial_suffix(buf, self._marker)
        if not keep:
            self._held = b""
            self._emit(buf)
            return
        if len(buf) > keep:
            self._emit(buf[:-keep])
        self._held = buf[-keep:]

    def _read_status(self, data: bytes) -> None:
        assert self._status_text is not None
        text = self._status_text + data
        end = text.find(b"\n")
        if end < 0:
            if len(text) > 16:
                raise ValueError(f"malformed end marker status {text[:32]!r}")
            self._status_text = text
            return
        raw = text[:end]
        if not raw.isdigit():
            raise ValueError(f"malformed end marker status {raw[:32]!r}")
        self.status = int(raw)
        self.done = True
        self.extra = text[end + 1:]


def _partial_suffix(buf: bytes, marker: bytes) -> int:
    """Length of the longest end of *buf* that is a proper prefix of *marker*."""
    at = buf.find(b"\n", max(0, len(buf) - len(marker) + 1))
    while at >= 0:
        if marker.startswith(buf[at:]):
            return len(buf) - at
        at = buf.find(b"\n", at + 1)
    return 0


__all__ = ["GREETING_STATUS", "LOOP_COMMAND", "FrameReader", "command_script", "gated_command_script", "greeting_pid",
           "greeting_script", "new_tag"]
