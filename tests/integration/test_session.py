"""Sessions against a real sshd, for every built-in backend: connection reuse
(checked on the server side), transparent reconnection, clean close, and one
call on 1,000 hosts."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import warnings

import pytest

import parallax
from parallax.testing.faults import kill_sessions
from parallax.testing.processes import children_of, processes_with

from helpers import lab_opts, ok

BACKENDS = ["openssh", "paramiko", "asyncssh"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_call_opens_no_new_connection(ssh_lab, backend):
    hosts = ssh_lab.hosts[:3]
    with parallax.Session(hosts, **lab_opts(ssh_lab, backend)) as s:
        before = ssh_lab.connection_count()
        first = ok(s.call("echo one"))
        opened = ssh_lab.connection_count() - before
        assert opened == 3
        for i in range(3):
            again = ok(s.run(f"echo {i}; exit 4"))
            assert [r.rc for r in again.values()] == [4, 4, 4]
            assert [r.stdout for r in again.values()] == [f"{i}\n".encode()] * 3
        assert ssh_lab.connection_count() - before == 3, "a later call opened a new TCP connection"
        assert [r.stdout for r in first.values()] == [b"one\n"] * 3
        # same result shapes as the module-level functions
        err = s.call("exit 3")[hosts[0]]
        assert isinstance(err, parallax.CommandFailed) and "Exited with error code 3" in str(err)


@pytest.mark.parametrize("backend", BACKENDS)
def test_copy_and_slurp_through_a_session(ssh_lab, backend, tmp_path):
    src = tmp_path / "f.txt"
    src.write_bytes(b"session copy\n")
    remote = f"{ssh_lab.scratch_dir}/session-{backend}.txt"
    with parallax.Session(ssh_lab.hosts[:2], **lab_opts(ssh_lab, backend)) as s:
        s.call("true")
        before = ssh_lab.connection_count()
        ok(s.copy(str(src), remote))
        res = ok(s.slurp(remote, "back.txt", localdir=str(tmp_path / "in")))
        assert ssh_lab.connection_count() == before
    for r in res.values():
        rc, out, err, path = r
        with open(path, "rb") as f:
            assert f.read() == b"session copy\n"


@pytest.mark.parametrize("shell", [False, True], ids=["channels", "persistent_shell"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_dead_connection_is_reestablished_once(ssh_lab, backend, shell):
    hosts = ssh_lab.hosts[:2]
    with parallax.Session(hosts, persistent_shell=shell, **lab_opts(ssh_lab, backend)) as s:
        ok(s.call("true"))
        assert kill_sessions(ssh_lab) >= 2
        time.sleep(0.3)
        before = ssh_lab.connection_count()
        res = ok(s.call("echo back"))
        assert [r.stdout for r in res.values()] == [b"back\n"] * 2
        assert ssh_lab.connection_count() - before == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_leaves_no_process_thread_or_file(ssh_lab, backend):
    threads_before = set(threading.enumerate())
    children_before = children_of()
    s = parallax.Session(ssh_lab.hosts[:3], **lab_opts(ssh_lab, backend))
    ok(s.call("true"))
    workdir = getattr(s.backend, "_dir", None)
    s.close()
    s.close()  # idempotent
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra_threads = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
        extra_children = children_of() - children_before
        if not extra_threads and not extra_children:
            break
        time.sleep(0.05)
    assert not extra_threads, extra_threads
    assert not extra_children, extra_children
    if workdir:
        assert not os.path.exists(workdir)
    with pytest.raises(RuntimeError, match="closed"):
        s.call("true")


@pytest.mark.parametrize("backend", BACKENDS)
def test_unclosed_session_warns_and_is_cleaned_up(ssh_lab, backend):
    children_before = children_of()
    s = parallax.Session(ssh_lab.hosts[:1], **lab_opts(ssh_lab, backend))
    ok(s.call("true"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del s
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    deadline = time.monotonic() + 5
    while children_of() - children_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not children_of() - children_before


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_session(ssh_lab, backend):
    async def main():
        async with parallax.aio.Session(ssh_lab.hosts[:2], **lab_opts(ssh_lab, backend)) as s:
            before = ssh_lab.connection_count()
            a = await s.call("echo a")
            b = await s.run("echo b")
            return a, b, before

    a, b, before = asyncio.run(main())
    ok(a)
    ok(b)
    assert [r.stdout for r in b.values()] == [b"b\n"] * 2


# The backends that hold an OS resource per host in flight (an ssh process, a thread); the event-loop
# backends are taken to 2,000 hosts by the W10 benchmark.
@pytest.mark.parametrize("backend", ["openssh", "paramiko"])
def test_thousand_hosts_limit_200(make_ssh_lab, backend):
    lab = make_ssh_lab(hosts=1000)
    t0 = time.monotonic()
    res = parallax.run(lab.hosts, "echo ok", **lab_opts(lab, backend, limit=200, timeout=120))
    assert len(res) == 1000
    ok(res)
    assert all(r.stdout == b"ok\n" for r in res.values())
    print(f"{backend}: 1000 hosts in {time.monotonic() - t0:.1f} s")


@pytest.mark.parametrize("backend", BACKENDS)
def test_session_left_open_at_interpreter_exit_is_cleaned_up(ssh_lab, backend, tmp_path):
    import subprocess
    import sys

    marker = tmp_path / "workdir.txt"
    script = tmp_path / "leaky.py"
    script.write_text(
        "import parallax, sys\n"
        f"s = parallax.Session({ssh_lab.hosts[:2]!r}, backend={backend!r}, ssh_key={ssh_lab.client_key!r},\n"
        f"                     known_hosts={ssh_lab.known_hosts!r}, default_user={ssh_lab.user!r})\n"
        "r = s.call('echo up')\n"
        "assert all(v.stdout == b'up\\n' for v in r.values()), r\n"
        f"open({str(marker)!r}, 'w').write(getattr(s.backend, '_dir', None) or '')\n"
        "print('exiting without close', flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-W", "always::ResourceWarning", str(script)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "exiting without close" in proc.stdout
    workdir = marker.read_text()
    if workdir:  # openssh: its ControlMasters (their argv names the directory) and the directory are gone
        assert not os.path.exists(workdir)
        assert not processes_with(workdir)
