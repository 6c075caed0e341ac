"""Registers the built-in backends through the same hook third-party plugins use.

Factories import their module on first use, so ``import parallax`` never
pays for paramiko or asyncssh.
"""

from __future__ import annotations

from typing import Any

from ..hookspecs import hookimpl


def _need(module: str, extra: str) -> None:
    """Say which extra to install when a backend's library is missing (not a bare ModuleNotFoundError)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"the {extra} backend needs the {module} package: pip install 'parallax[{extra}]' "
                         f"({exc})") from None


def _openssh(settings: Any) -> Any:
    from .openssh import OpenSSHBackend

    return OpenSSHBackend(settings)


def _paramiko(settings: Any) -> Any:
    _need("paramiko", "paramiko")
    from .paramiko import ParamikoBackend

    return ParamikoBackend(settings)


def _asyncssh(settings: Any) -> Any:
    _need("asyncssh", "asyncssh")
    from .asyncssh import AsyncSSHBackend

    return AsyncSSHBackend(settings)


def _mock(settings: Any) -> Any:
    from .mock import MockBackend

    return MockBackend(settings)


@hookimpl
def parallax_backends() -> dict[str, Any]:
    return {"openssh": _openssh, "paramiko": _paramiko, "asyncssh": _asyncssh, "mock": _mock}
