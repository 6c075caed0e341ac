"""Helpers shared by the session tests against a real sshd."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import parallax
from parallax.testing.faults import FaultLab, can_build_link


def lab_opts(lab, backend="openssh", **kw):
    """The options every call to *lab* (an SSHLab or EmbeddedSSHHost) needs; *kw* override them."""
    base = dict(ssh_key=lab.client_key, known_hosts=lab.known_hosts, default_user=lab.user, backend=backend)
    base.update(kw)
    return base


def ok(results):
    bad = {k: v for k, v in results.items() if isinstance(v, parallax.Error)}
    assert not bad, list(bad.items())[:3]
    return results


def fault_lab_or_fail(**kw) -> Iterator[FaultLab]:
    """A running :class:`FaultLab` (*kw* are its settings) for a fixture to yield; where one
    cannot be built here (not root, no TUN) the test fails and says why: never skipped."""
    ok, reason = can_build_link()
    if not ok:
        pytest.fail(f"the fault lab cannot be built here: {reason}", pytrace=False)
    with FaultLab(**kw) as lab:
        yield lab
