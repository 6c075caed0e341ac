"""The first command of a persistent shell goes in the greeting's write (one round trip fewer):
the gated one-line script (parallax.framing.gated_command_script) and what the layer does with it."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from parallax.backends.persistent_shell import PersistentShellBackend
from parallax.errors import ConnectionFailed
from parallax.framing import FrameReader, gated_command_script, greeting_script, new_tag

from test_persistent_shell_layer import LocalShells, Sink, job

TRICKY = "printf '%s\\n' \"a'b\" 'two\nlines'; echo é >&2; cd /; exit 7"


def test_the_gated_script_is_one_line_with_no_shell_syntax_of_the_command():
    line = gated_command_script(TRICKY, new_tag())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    quoted = line.split(b"printf '", 1)[1].rsplit(b"')", 1)[0]
    assert not set(quoted) & set("'\";&|<>$`\n()é".encode())  # the command's syntax only as octal escapes


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_after_the_greeting_the_gated_command_runs_as_command_script_would(shell):
    g, c = new_tag(), new_tag()
    proc = subprocess.run([shell, "-s"], input=greeting_script(g) + gated_command_script(TRICKY, c),
                          capture_output=True, timeout=10)
    out, err = [], []
    for stream, sink in ((proc.stdout, out), (proc.stderr, err)):
        rest = stream.split(b"\n" + g.encode(), 1)[1].split(b"\n", 1)[1]
        reader = FrameReader(c, sink.append, with_status=stream is proc.stdout)
        reader.feed(rest)
        assert reader.done
        if stream is proc.stdout:
            assert reader.status == 7
    assert b"".join(out) == b"a'b\ntwo\nlines\n"
    assert b"".join(err) == "é\n".encode()


def test_the_first_command_is_written_with_the_greeting_and_runs_once():
    async def main():
        inner = LocalShells()
        backend = PersistentShellBackend(inner)
        sink = Sink()
        rc = await backend.run(job("echo first; exit 3"), sink)
        again = Sink()
        rc2 = await backend.run(job("echo second"), again)
        await backend.close()
        return inner, rc, sink.out, rc2, again.out

    inner, rc, out, rc2, out2 = asyncio.run(main())
    assert (rc, out, rc2, out2) == (3, b"first\n", 0, b"second\n")
    assert len(inner.streams) == 1 and inner.plain_runs == 0


def test_a_shell_that_reads_but_never_greets_is_not_asked_to_run_the_command_twice(tmp_path):
    # It swallows its input (the command may have run): an error, not a second run on a plain channel.
    swallow = tmp_path / "swallow"
    swallow.write_text("#!/bin/sh\nexec cat >/dev/null\n")
    os.chmod(swallow, 0o755)

    async def main():
        inner = LocalShells(shell=str(swallow))
        backend = PersistentShellBackend(inner, greeting_timeout=0.3)
        with pytest.raises(ConnectionFailed, match="may have started, so it is not run again"):
            await backend.run(job("true"), Sink())
        plain_before = inner.plain_runs
        rc = await backend.run(job("true"), Sink())  # the connection now uses plain channels
        await backend.close()
        return plain_before, inner.plain_runs, rc

    assert asyncio.run(main()) == (0, 1, 0)
