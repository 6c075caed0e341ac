"""Password authentication against a real sshd, for every built-in backend.

The lab's account gets a real password for the duration of the module (root
only: that is what CI runs as); ``password=`` feeds it to paramiko/asyncssh
directly and to ssh through parallax's SSH_ASKPASS helper.
"""

from __future__ import annotations

import pytest

import parallax
from parallax.testing.passwords import password_lab as password_lab_of

PASSWORD = "pa ss-w0rd'\"$x"
BACKENDS = ["openssh", "paramiko", "asyncssh"]


@pytest.fixture(scope="module")
def password_lab():
    with password_lab_of(PASSWORD, pubkey=False) as lab:
        yield lab


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_password_authentication(password_lab, backend):
    lab = password_lab
    res = parallax.run(lab.hosts, "id -un", backend=backend, password=PASSWORD, default_user=lab.user,
                       known_hosts=lab.known_hosts, timeout=30)
    for r in res.values():
        assert not isinstance(r, parallax.Error), r
        assert r.stdout == f"{lab.user}\n".encode()


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_password_is_an_authentication_failure(password_lab, backend):
    lab = password_lab
    res = parallax.run(lab.hosts[:1], "true", backend=backend, password="wrong", default_user=lab.user,
                       known_hosts=lab.known_hosts, timeout=30)
    assert isinstance(res[lab.hosts[0]], parallax.AuthenticationFailed), res
