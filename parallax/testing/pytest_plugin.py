"""Pytest fixtures backed by a real OpenSSH server (:class:`parallax.testing.SSHLab`).

Enable in a root ``conftest.py``::

    pytest_plugins = ["parallax.testing.pytest_plugin"]

Fixtures:

``ssh_lab``       session-scoped ``SSHLab(hosts=4)``, started once.
``make_ssh_lab``  function-scoped factory ``make_ssh_lab(hosts=3, **SSHLab kwargs)``
                  returning a started lab; every lab it made is stopped at teardown.

When sshd cannot run here, tests using these fixtures are skipped with the
reason - unless the environment variable ``CI`` is non-empty, in which case
they fail loudly (a CI machine is expected to run them).
"""

from __future__ import annotations

import os
from typing import Any, NoReturn
from collections.abc import Callable, Iterator

import pytest

from parallax.testing.sshd import SSHLab, can_start_sshd

__all__ = ["make_ssh_lab", "ssh_lab"]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"SSH test lab unavailable and CI is set: {reason}", pytrace=False)
    pytest.skip(f"SSH test lab unavailable: {reason}")


def _check_available() -> None:
    ok, reason = can_start_sshd()
    if not ok:
        _unavailable(reason)


@pytest.fixture(scope="session")
def ssh_lab() -> Iterator[SSHLab]:
    """A running 4-host :class:`SSHLab` shared by the whole test session."""
    _check_available()
    lab = SSHLab(hosts=4)
    try:
        lab.start()
    except (RuntimeError, OSError) as exc:
        lab.stop()
        _unavailable(f"sshd failed to start: {exc}")
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def make_ssh_lab() -> Iterator[Callable[..., SSHLab]]:
    """Factory for private labs: ``lab = make_ssh_lab(hosts=2, extra_config="MaxSessions 1")``.

    Errors while starting a lab (e.g. an invalid ``extra_config``) propagate
    as test errors; only a machine that cannot run sshd at all skips.
    """
    labs: list[SSHLab] = []

    def factory(hosts: int = 3, **kwargs: Any) -> SSHLab:
        _check_available()
        lab = SSHLab(hosts, **kwargs)
        labs.append(lab)
        return lab.start()

    try:
        yield factory
    finally:
        for lab in labs:
            lab.stop()


@pytest.fixture(scope="session")
def embedded_ssh_host() -> Iterator[Any]:
    """One session-wide :class:`~parallax.testing.embedded.EmbeddedSSHHost` (needs asyncssh)."""
    from parallax.testing.embedded import EmbeddedSSHHost

    with EmbeddedSSHHost(hosts=4) as host:
        yield host
