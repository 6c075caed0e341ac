"""A lab sshd whose test account logs in with a real password, for tests of password authentication.

Setting the account's password needs root (``chpasswd``), which is what CI
runs as: elsewhere the tests that need it are skipped, and in CI
(``$CI`` set) they fail instead.  The password is removed again
(``usermod -p '*'``) when the lab stops, so no other test sees it, and one
password lab runs at a time on the machine (a ``flock``: test runs in
parallel processes would otherwise reset each other's password).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from .sshd import TEST_ACCOUNT, SSHLab

__all__ = ["password_lab", "require_root", "set_password"]

LOCK_WAIT = 600.0  # seconds to wait for another process's password lab to end


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
def _machine_lock() -> Iterator[None]:
    """Hold the machine-wide password-lab lock (``BlockingIOError`` after LOCK_WAIT seconds)."""
    with open(os.path.join(tempfile.gettempdir(), "parallax-password-lab.lock"), "a") as f:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def password_lab(password: str, *, hosts: int = 2, pubkey: bool = True) -> Iterator[SSHLab]:
    """A started :class:`SSHLab` with ``PasswordAuthentication yes`` whose account has *password*;
    with ``pubkey=False`` the server refuses keys (``PubkeyAuthentication no``)."""
    require_root()
    extra = "PasswordAuthentication yes\n" + ("" if pubkey else "PubkeyAuthentication no\n")
    with _machine_lock():
        lab = SSHLab(hosts=hosts, extra_config=extra).start()
        try:
            assert lab.user == TEST_ACCOUNT, lab.user
            set_password(lab.user, password)
            yield lab
        finally:
            subprocess.run(["usermod", "-p", "*", lab.user], check=False)
            lab.stop()
