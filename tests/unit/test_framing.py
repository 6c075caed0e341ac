"""The persistent-shell wire format: scripts run by a real local /bin/sh, and
the frame reader fed every possible chunking."""

from __future__ import annotations

import subprocess

import pytest

from parallax.framing import (GREETING_STATUS, FrameReader, command_script, greeting_pid, greeting_script,
                              new_tag)


def read_frames(out: bytes, err: bytes, tag: str, chunk: int = 0) -> tuple[bytes, bytes, int | None, bytes]:
    got_out: list[bytes] = []
    got_err: list[bytes] = []
    r_out = FrameReader(tag, got_out.append, with_status=True)
    r_err = FrameReader(tag, got_err.append, with_status=False)
    for reader, data in ((r_out, out), (r_err, err)):
        step = chunk or max(len(data), 1)
        for i in range(0, len(data), step):
            reader.feed(data[i:i + step])
    assert r_out.done and r_err.done
    return b"".join(got_out), b"".join(got_err), r_out.status, r_out.extra


def run_sh(script: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, timeout=10)


@pytest.mark.parametrize("command, out, err, rc", [
    ("echo hi; echo err >&2", b"hi\n", b"err\n", 0),
    ("printf 'no newline'", b"no newline", b"", 0),
    ("printf '\\n\\n'", b"\n\n", b"", 0),
    ("exit 7", b"", b"", 7),
    ("echo 'it'\"'\"'s'; echo \"$((1+2))\"", b"it's\n3\n", b"", 0),
    ("for i in 1 2\ndo\n  echo $i\ndone", b"1\n2\n", b"", 0),
    ("cat", b"", b"", 0),  # stdin is /dev/null, not the rest of the script
    ("echo '; exit 9; echo'", b"; exit 9; echo\n", b"", 0),
    ("printf '\\000\\377'", b"\x00\xff", b"", 0),
])
def test_command_script_runs_the_command_quoted(command, out, err, rc):
    tag = new_tag()
    proc = run_sh(command_script(command, tag) + b"echo after-the-frame\n")
    got_out, got_err, status, extra = read_frames(proc.stdout, proc.stderr, tag)
    assert (got_out, got_err, status) == (out, err, rc)
    assert extra == b"after-the-frame\n"  # the shell survived the command


def test_commands_run_in_a_subshell():
    tag1, tag2 = new_tag(), new_tag()
    script = command_script("cd /; X=1; exit 3", tag1) + command_script('pwd; echo "${X:-unset}"', tag2)
    proc = subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, timeout=10, cwd="/tmp")
    first, _, status, rest = read_frames(proc.stdout, proc.stderr, tag1)
    assert status == 3
    r = FrameReader(tag2, (seen := []).append, with_status=True)
    r.feed(rest)
    assert r.done and b"".join(seen) == b"/tmp\nunset\n"


def test_greeting_answers_with_status_and_pid():
    tag = new_tag()
    proc = subprocess.Popen(["/bin/sh", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(b"echo login noise\n" + greeting_script(tag), timeout=10)
    text, _, status, _ = read_frames(out, err, tag)
    assert status == GREETING_STATUS
    assert greeting_pid(text) == proc.pid


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 33, 34, 35])
def test_reader_finds_markers_split_anywhere(chunk):
    tag = new_tag()
    body = b"x" + tag.encode() + b" 0 is not a marker without a newline before it\n\n" + tag.encode()[:5]
    out = body + b"\n" + tag.encode() + b" 12\n"
    err = b"e" * 40 + b"\n" + tag.encode() + b"\n"
    got_out, got_err, status, extra = read_frames(out, err, tag, chunk)
    assert got_out == body and got_err == b"e" * 40 and status == 12 and extra == b""


def test_reader_streams_without_waiting_for_the_end():
    tag = new_tag()
    seen: list[bytes] = []
    r = FrameReader(tag, seen.append, with_status=True)
    r.feed(b"partial output\n")
    # everything but the possible start of a marker ("\n") is passed on at once
    assert b"".join(seen) == b"partial output"
    r.feed(b"more")
    assert b"".join(seen) == b"partial output\nmore"
    assert not r.done


@pytest.mark.parametrize("status", [b"x1\n", b"1" * 20])
def test_malformed_status_is_an_error(status):
    tag = new_tag()
    r = FrameReader(tag, lambda d: None, with_status=True)
    with pytest.raises(ValueError, match="malformed"):
        r.feed(b"\n" + tag.encode() + b" " + status)


@pytest.mark.parametrize("tag", ["", "abc", "g" * 32, "a" * 32 + "'; rm -rf /"])
def test_tags_are_checked(tag):
    with pytest.raises(ValueError, match="invalid frame tag"):
        command_script("true", tag)


def test_nul_in_command_is_refused():
    with pytest.raises(ValueError, match="NUL"):
        command_script("echo \0", new_tag())


@pytest.mark.parametrize("text, pid", [(b"123\n", 123), (b"motd\n456\n", 456), (b"789", 789), (b"", None),
                                       (b"noise\n", None)])
def test_greeting_pid(text, pid):
    assert greeting_pid(text) == pid
