"""The openssh backend tells a remote exit 255 from an SSH failure whatever LogLevel the caller sets.

ssh exits 255 both when the remote command did and when ssh itself failed;
the backend reads which from its private ``-E`` log, at a verbosity it
forces (``-v``), so a caller's ``LogLevel`` (crmsh always passes
``LogLevel=error``), a ``LogLevel`` in their ssh config or a ``-q`` in
``ssh_extra`` cannot hide it.  Against the real sshd of the test lab.
"""

from __future__ import annotations

import socket

import pytest

import parallax

from helpers import lab_opts

LEVELS = ["QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG3"]


def only(results):
    (r,) = results.values()
    return r


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("level", LEVELS)
def test_remote_exit_255_is_a_result_under_every_loglevel(ssh_lab, level):
    r = only(parallax.run(ssh_lab.hosts[:1], "echo x; echo y >&2; exit 255",
                          **lab_opts(ssh_lab, ssh_options=[f"LogLevel={level}"])))
    assert not isinstance(r, parallax.Error), r
    assert (r.rc, r.stdout, r.stderr) == (255, b"x\n", b"y\n")


@pytest.mark.parametrize("level", LEVELS)
def test_connection_refused_is_connection_failed_under_every_loglevel(ssh_lab, level):
    r = only(parallax.run([f"127.0.0.1:{closed_port()}"], "true",
                          **lab_opts(ssh_lab, ssh_options=[f"LogLevel={level}"])))
    assert isinstance(r, parallax.ConnectionFailed) and not isinstance(r, parallax.ConnectionLost), repr(r)
    assert "Connection refused" in r.msg


@pytest.mark.parametrize("level", ["QUIET", "ERROR"])
def test_wrong_key_is_authentication_failed_under_quiet_levels(ssh_lab, level):
    r = only(parallax.run(ssh_lab.hosts[:1], "true",
                          **lab_opts(ssh_lab, ssh_key=ssh_lab.wrong_key, ssh_options=[f"LogLevel={level}",
                                                                                     "IdentitiesOnly=yes"])))
    assert isinstance(r, parallax.AuthenticationFailed), repr(r)


def test_loglevel_from_the_users_ssh_config_and_q_in_ssh_extra(ssh_lab, tmp_path):
    cfg = tmp_path / "config"
    cfg.write_text("Host *\n  LogLevel QUIET\n")
    r = only(parallax.run(ssh_lab.hosts[:1], "echo x; exit 255",
                          **lab_opts(ssh_lab, ssh_config=str(cfg), ssh_extra=["-q"])))
    assert not isinstance(r, parallax.Error), r
    assert (r.rc, r.stdout) == (255, b"x\n")


@pytest.mark.parametrize("level", ["ERROR", "QUIET"])
def test_remote_exit_255_in_a_persistent_session(ssh_lab, level):
    with parallax.Session(ssh_lab.hosts[:1], **lab_opts(ssh_lab, ssh_options=[f"LogLevel={level}"])) as s:
        for _ in range(2):  # the second goes through the ControlMaster
            r = only(s.run("echo x; exit 255"))
            assert not isinstance(r, parallax.Error), r
            assert (r.rc, r.stdout) == (255, b"x\n")
        # a command killed by a signal leaves the master up: a result, as ssh reports it
        r = only(s.run("kill -9 $$"))
        assert not isinstance(r, parallax.Error), r
        assert r.rc == 255


def test_ssh_refusing_a_name_says_why(ssh_lab):
    # parallax refuses such host entries itself; a user name in ssh_options reaches ssh,
    # which prints its refusal on stderr (not in its log) before connecting anywhere
    r = only(parallax.run(ssh_lab.hosts[:1], "true", **lab_opts(ssh_lab, default_user=None, ssh_options=["User=a;b"])))
    assert isinstance(r, parallax.BadInput) and isinstance(r, ValueError), repr(r)
    assert "without a diagnostic" not in str(r)
    assert "remote username contains invalid characters" in str(r)
