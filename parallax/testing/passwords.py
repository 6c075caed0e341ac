"""A lab sshd whose test account logs in with a real password, for tests of password authentication.

Setting the account's password needs root (``chpasswd``), which is what CI
runs as: elsewhere the tests that need it are skipped, and in CI
(``$CI`` set) they fail instead.  The password is removed again
(``usermod -p '*'``) when the lab stops, so no other test sees it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

import pytest

from .sshd import TEST_ACCOUNT, SSHLab

__all__ = ["password_lab", "require_root", "set_password"]


def require_root(why: str = "setting the test account's password needs root") -> None:
    """Skip the calling test unless this process is root (fail instead in CI, where it must run)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def set_password(user: str, password: str) -> None:
    """Give *user* the login password *password* (through chpasswd's stdin, never its argv)."""
    subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True)


@contextlib.contextmanager
def password_lab(password: str, *, hosts: int = 2, pubkey: bool = True) -> Iterator[SSHLab]:
    """A started :class:`SSHLab` with ``PasswordAuthentication yes`` whose account has *password*;
    with ``pubkey=False`` the server refuses keys (``PubkeyAuthentication no``)."""
    require_root()
    extra = "PasswordAuthentication yes\n" + ("" if pubkey else "PubkeyAuthentication no\n")
    lab = SSHLab(hosts=hosts, extra_config=extra).start()
    try:
        assert lab.user == TEST_ACCOUNT, lab.user
        set_password(lab.user, password)
        yield lab
    finally:
        subprocess.run(["usermod", "-p", "*", lab.user], check=False)
        lab.stop()
