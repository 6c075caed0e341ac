"""Test helpers for code using parallax: throwaway SSH hosts.

``from parallax.testing import SSHLab, can_start_sshd`` (a real OpenSSH sshd)
or ``EmbeddedSSHHost`` (an asyncssh server in a thread, for machines where
sshd cannot run; imported lazily because asyncssh is optional).  Pytest
fixtures (``ssh_lab``, ``make_ssh_lab``, ``embedded_ssh_host``) live in
:mod:`parallax.testing.pytest_plugin`; enable them with
``pytest_plugins = ["parallax.testing.pytest_plugin"]`` in a root
``conftest.py``.  Importing this package does not import pytest.
"""

from typing import Any

from .sshd import SSHLab, can_start_sshd

__all__ = ["EmbeddedSSHHost", "SSHLab", "can_start_sshd"]


def __getattr__(name: str) -> Any:
    if name == "EmbeddedSSHHost":
        from .embedded import EmbeddedSSHHost

        return EmbeddedSSHHost
    raise AttributeError(f"module 'parallax.testing' has no attribute {name!r}")
