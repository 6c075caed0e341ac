"""Registers the built-in backends through the same hook third-party plugins use.

Factories import their module on first use, so ``import parallax`` never
pays for paramiko or asyncssh.
"""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from .base import Backend, BackendSetup


def _need(module: str, extra: str) -> None:
    """Say which extra to install when a backend's library is missing (not a bare ModuleNotFoundError)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"the {extra} backend needs the {module} package: pip install 'parallax[{extra}]' "
                         f"({exc})") from None


def _openssh(setup: BackendSetup) -> Backend:
    from .openssh import OpenSSHBackend

    return OpenSSHBackend(setup)


def _paramiko(setup: BackendSetup) -> Backend:
    _need("paramiko", "paramiko")
    from .paramiko import ParamikoBackend

    return ParamikoBackend(setup)


def _asyncssh(setup: BackendSetup) -> Backend:
    _need("asyncssh", "asyncssh")
    from .asyncssh import AsyncSSHBackend

    return AsyncSSHBackend(setup)


def _libssh2(setup: BackendSetup) -> Backend:
    _need("ssh2", "libssh2")
    from .libssh2 import Libssh2Backend

    return Libssh2Backend(setup)


def _mock(setup: BackendSetup) -> Backend:
    from .mock import MockBackend

    return MockBackend(setup)


@hookimpl
def parallax_backends() -> dict[str, Callable[[BackendSetup], Backend]]:
    return {"openssh": _openssh, "paramiko": _paramiko, "asyncssh": _asyncssh, "libssh2": _libssh2,
            "mock": _mock}
