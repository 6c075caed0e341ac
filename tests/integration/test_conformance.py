"""Runs the backend conformance suite for the project's own backends.

Every backend runs against the real private sshd; the asyncssh backend also
against the embedded asyncssh host (which keeps that server honest), and the
example plugin backend (found through its entry point) against sshd.
"""

from __future__ import annotations

import importlib.metadata
import os

import pytest

from parallax.testing.conformance.fixtures import parametrize_backends
from parallax.testing.conformance.suite import *  # noqa: F403  (the tests and their fixtures)

#: (backend, host kind) pairs the project runs the suite for.
COMBINATIONS = [
    ("openssh", "sshd"),
    ("paramiko", "sshd"),
    ("asyncssh", "sshd"),
    ("asyncssh", "embedded"),
    ("libssh2", "sshd"),
]

# The example third-party backend (tests/plugin_example, installed by .ci/run) must pass
# too; in CI a missing installation fails loudly rather than dropping the row.
if os.environ.get("CI") or any(ep.name == "example" for ep in importlib.metadata.entry_points(group="parallax")):
    COMBINATIONS.append(("example", "sshd"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every suite test over COMBINATIONS (the $PARALLAX_CONFORMANCE_* selection is not used)."""
    parametrize_backends(metafunc, COMBINATIONS)
