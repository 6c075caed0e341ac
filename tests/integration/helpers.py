"""Helpers shared by the session tests against a real sshd."""

from __future__ import annotations

import parallax


def lab_opts(lab, backend="openssh", **kw):
    """The options every call to *lab* (an SSHLab or EmbeddedSSHHost) needs; *kw* override them."""
    base = dict(ssh_key=lab.client_key, known_hosts=lab.known_hosts, default_user=lab.user, backend=backend)
    base.update(kw)
    return base


def ok(results):
    bad = {k: v for k, v in results.items() if isinstance(v, parallax.Error)}
    assert not bad, list(bad.items())[:3]
    return results
