"""Fixtures for the tests of the installed ``parallax`` command against the test sshd."""

from __future__ import annotations

from collections.abc import Sequence

import pytest


@pytest.fixture(scope="module")
def lab(ssh_lab):
    """The session's 4-host lab."""
    return ssh_lab


@pytest.fixture
def hosts_arg(lab) -> Sequence[str]:
    """``-H "h1 h2 h3 h4"`` for the lab."""
    return ["-H", " ".join(lab.hosts)]
