"""Helpers shared by the session tests against a real sshd."""

from __future__ import annotations

import os
import signal

import parallax
from parallax.testing.processes import command_line


def lab_opts(lab, backend="openssh", **kw):
    """The options every call to *lab* (an SSHLab or EmbeddedSSHHost) needs; *kw* override them."""
    base = dict(ssh_key=lab.client_key, known_hosts=lab.known_hosts, default_user=lab.user, backend=backend)
    base.update(kw)
    return base


def ok(results):
    bad = {k: v for k, v in results.items() if isinstance(v, parallax.Error)}
    assert not bad, list(bad.items())[:3]
    return results


def kill_server_sessions(lab) -> int:
    """Kill the per-connection sshd processes of *lab*: every open connection drops."""
    killed = 0
    for pid in lab.pids():
        cmd = command_line(pid)
        if cmd.startswith("sshd: ") and "[listener]" not in cmd and ("[priv]" in cmd or "@notty" in cmd):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed
