"""``persistent_shell=True`` against a real sshd, for every backend that can
keep a stream open: the same results as one channel per command, no new SSH
session per command (counted in sshd's log), isolation between commands,
timeouts that end the remote command, fallback, clean close (reconnection:
test_session.py)."""

from __future__ import annotations

import gc
import os
import time
import warnings

import pytest

import parallax
from parallax.testing.processes import children_of, processes_with

from helpers import lab_opts, ok

BACKENDS = ["openssh", "paramiko", "asyncssh"]

# Commands whose results must not depend on how they are run.
COMMANDS = [
    "echo hi; echo err >&2",
    "printf 'no newline'",
    "printf 'err, no newline' >&2; exit 7",
    "exit 3",
    "echo 'single '\"'\"' quote' \"double \\\" quote\" \\$HOME",
    "for i in 1 2 3\ndo echo line $i\ndone",
    "printf '\\n%s 0\\n' 0123456789abcdef0123456789abcdef",  # looks like an end marker, is not ours
    "head -c 1048576 /dev/urandom | od -An -tx1 | wc -l",
    "printf '\\000\\001\\377binary'",
    "cat",  # stdin is empty (not the shell's own stdin)
    "echo ${PWD}",
    "ls /nonexistent-parallax-dir",
]


def sessions_started(lab) -> int:
    """SSH sessions (channels running a command) sshd has started so far."""
    return lab.log_text().count("Starting session: ")


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_match_one_channel_per_command(ssh_lab, backend):
    hosts = ssh_lab.hosts[:2]
    with parallax.Session(hosts, **lab_opts(ssh_lab, backend)) as plain, \
            parallax.Session(hosts, persistent_shell=True, **lab_opts(ssh_lab, backend)) as shell:
        for command in COMMANDS:
            want = plain.run(command)
            got = shell.run(command)
            for host in hosts:
                w, g = want[host], got[host]
                assert not isinstance(g, parallax.Error), (command, g)
                assert (g.rc, g.stdout, g.stderr) == (w.rc, w.stdout, w.stderr), command


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_command_costs_no_new_ssh_session(ssh_lab, backend):
    hosts = ssh_lab.hosts[:3]
    with parallax.Session(hosts, persistent_shell=True, **lab_opts(ssh_lab, backend)) as s:
        ok(s.run("true"))
        sessions, connections = sessions_started(ssh_lab), ssh_lab.connection_count()
        for i in range(5):
            res = ok(s.run(f"echo {i}; exit {i}"))
            assert [(r.rc, r.stdout) for r in res.values()] == [(i, f"{i}\n".encode())] * 3
        err = s.call("exit 2")[hosts[0]]
        assert isinstance(err, parallax.CommandFailed) and err.rc == 2
        assert sessions_started(ssh_lab) == sessions, "a command opened a new SSH session"
        assert ssh_lab.connection_count() == connections


@pytest.mark.parametrize("backend", BACKENDS)
def test_commands_do_not_share_state(ssh_lab, backend):
    with parallax.Session(ssh_lab.hosts[:1], persistent_shell=True, **lab_opts(ssh_lab, backend)) as s:
        home = ok(s.run("pwd"))[ssh_lab.hosts[0]].stdout
        ok(s.run("cd /tmp; X=1; export Y=2; umask 077; alias ll=ls; set -e; exit 0"))
        after = ok(s.run('pwd; echo "${X:-unset} ${Y:-unset}"; umask'))[ssh_lab.hosts[0]]
        assert after.stdout.splitlines()[:2] == [home.strip(), b"unset unset"]
        assert after.stdout.splitlines()[2] != b"0077"


@pytest.mark.parametrize("backend", BACKENDS)
def test_timeout_ends_the_remote_command_and_keeps_the_shell(ssh_lab, backend):
    host = ssh_lab.hosts[0]
    # The shell is kept if it answers within CANCEL_GRACE of its TERM, else closed (by design:
    # the grace is spent inside the caller's limit).  openssh's TERM is a new ssh through the
    # master (one more session), which a loaded machine was seen to take past the grace; so
    # the command must end every time and the shell be kept in at least one of three tries.
    extra_sessions = []
    with parallax.Session([host], persistent_shell=True, **lab_opts(ssh_lab, backend)) as s:
        ok(s.run("true"))
        for attempt in range(3):
            marker = f"sleep 3{os.getpid() % 1000}.{BACKENDS.index(backend) + 1}{attempt}"  # unique here
            sessions = sessions_started(ssh_lab)
            started = time.monotonic()
            res = s.run(marker, timeout=1)[host]
            assert isinstance(res, parallax.Timeout)
            assert time.monotonic() - started < 5
            deadline = time.monotonic() + 5
            while processes_with(marker) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not processes_with(marker), "the timed-out command still runs on the host"
            again = ok(s.run("echo still here"))[host]
            assert again.stdout == b"still here\n"
            extra_sessions.append(sessions_started(ssh_lab) - sessions)
            # the same shell answered: openssh spends one extra session on its kill command
            if extra_sessions[-1] <= (1 if backend == "openssh" else 0):
                break
        else:
            pytest.fail(f"every timeout cost a new shell (sessions started per try: {extra_sessions})")


def open_with_shells(lab, backend, n):
    """A persistent-shell session on *n* hosts after one call, and the remote shells' pids."""
    before = set(processes_with(" -s"))
    s = parallax.Session(lab.hosts[:n], persistent_shell=True, **lab_opts(lab, backend))
    ok(s.run("true"))
    shells = (set(processes_with(" -s")) - before) & set(lab.pids())  # not the local ssh clients
    assert len(shells) == n, "expected one persistent shell per host"
    return s, shells


def assert_all_gone(shells, children_before):
    """Within 5 s: no remote shell left, no child process of ours left."""
    def leftovers():
        return [p for p in shells if os.path.exists(f"/proc/{p}")], children_of() - children_before

    deadline = time.monotonic() + 5
    while any(leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive, children = leftovers()
    assert not alive, "a persistent shell outlived its session"
    assert not children


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_leaves_no_remote_shell(ssh_lab, backend):
    children_before = children_of()
    s, shells = open_with_shells(ssh_lab, backend, 3)
    s.close()
    assert_all_gone(shells, children_before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stdin_env_and_repeated_hosts_still_work(ssh_lab, backend):
    host = ssh_lab.hosts[0]
    same = f"{ssh_lab.user}@{host}"  # another result key, the same connection
    with parallax.Session([host, same], persistent_shell=True, **lab_opts(ssh_lab, backend)) as s:
        res = ok(s.run("cat; echo", input_stream=b"from stdin"))
        assert [r.stdout for r in res.values()] == [b"from stdin\n"] * 2
        res = ok(s.run("sleep 0.3; echo $$"))  # the same host twice at once: two shells
        pids = {r.stdout for r in res.values()}
        assert len(pids) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_shell_that_cannot_loop_falls_back_to_channels(make_ssh_lab, backend):
    # sshd runs commands with the login shell but hands the loop a $SHELL that
    # cannot read commands: the greeting never comes, every command still runs.
    lab = make_ssh_lab(hosts=1, extra_config="SetEnv SHELL=/bin/false")
    with parallax.Session(lab.hosts, persistent_shell=True, **lab_opts(lab, backend)) as s:
        for i in range(3):
            res = ok(s.run(f"echo {i}"))
            assert [r.stdout for r in res.values()] == [f"{i}\n".encode()]
        sessions = sessions_started(lab)
        ok(s.run("true"))
        assert sessions_started(lab) == sessions + 1  # one channel per command again


def test_backend_without_streams_is_refused():
    from parallax.backends.mock import MockBackend, MockHosts

    with pytest.raises(ValueError, match="persistent_shell: the mock backend"):
        parallax.Session(["h1"], backend=MockBackend(MockHosts()), persistent_shell=True)


def test_persistent_shell_cannot_change_per_call(ssh_lab):
    with parallax.Session(ssh_lab.hosts[:1], persistent_shell=True, **lab_opts(ssh_lab, "asyncssh")) as s:
        with pytest.raises(ValueError, match="persistent_shell is fixed"):
            s.run("true", persistent_shell=False)
        ok(s.run("true", timeout=5))


@pytest.mark.parametrize("backend", BACKENDS)
def test_module_level_call_with_persistent_shell(ssh_lab, backend):
    children_before = children_of()
    res = ok(parallax.run(ssh_lab.hosts[:2], "echo $((6*7))", persistent_shell=True,
                          **lab_opts(ssh_lab, backend)))
    assert [r.stdout for r in res.values()] == [b"42\n"] * 2
    assert not children_of() - children_before


@pytest.mark.parametrize("backend", BACKENDS)
def test_unclosed_session_with_shells_is_cleaned_up(ssh_lab, backend):
    children_before = children_of()
    s, shells = open_with_shells(ssh_lab, backend, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del s
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    assert_all_gone(shells, children_before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bash_as_the_users_shell(make_ssh_lab, backend):
    # sshd hands the loop SHELL=/bin/bash: the persistent shell is bash, with
    # its own job and signal handling (no "Terminated" notices in the output).
    lab = make_ssh_lab(hosts=1, extra_config="SetEnv SHELL=/bin/bash")
    host = lab.hosts[0]
    with parallax.Session([host], persistent_shell=True, **lab_opts(lab, backend)) as s:
        first = s.run("echo $0; echo err >&2; exit 3")[host]
        assert (first.rc, first.stdout, first.stderr) == (3, b"/bin/bash\n", b"err\n")
        sessions = sessions_started(lab)
        assert isinstance(s.run("sleep 30", timeout=1)[host], parallax.Timeout)
        again = ok(s.run("echo after"))[host]
        assert (again.stdout, again.stderr) == (b"after\n", b"")
        assert sessions_started(lab) - sessions <= (1 if backend == "openssh" else 0)
