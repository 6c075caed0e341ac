"""Fixtures for the crmsh compatibility tests: the lab reached the way a crmsh node is.

crmsh names nodes by bare host name and relies on the user's ssh setup, so
the lab's key, known_hosts, user and port come from ``PARALLAX_OPTIONS`` (as
an operator's environment would provide them) and the backend from
``PARALLAX_BACKEND``; crmsh's own calls stay exactly as crmsh makes them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from typing import Any
from collections.abc import Iterator

import pytest

from parallax.testing.conformance.fixtures import give_to_lab_user

BACKENDS = ["openssh", "paramiko", "asyncssh"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def nodes(ssh_lab: Any, backend: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two lab hosts as crmsh names nodes, with the environment that reaches them."""
    monkeypatch.setenv("PARALLAX_OPTIONS", " ".join([
        f"IdentityFile={ssh_lab.client_key}", f"UserKnownHostsFile={ssh_lab.known_hosts}",
        f"User={ssh_lab.user}", f"Port={ssh_lab.port}", "IdentitiesOnly=yes"]))
    monkeypatch.setenv("PARALLAX_BACKEND", backend)
    return list(ssh_lab.addresses[:2])


@pytest.fixture
def shared_dir(ssh_lab: Any) -> Iterator[str]:
    """A directory the lab's login user can write (every lab host is this machine)."""
    path = os.path.join(tempfile.gettempdir(), f"crmsh-compat-{uuid.uuid4().hex[:10]}")
    os.mkdir(path, 0o755)
    give_to_lab_user(ssh_lab, path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
