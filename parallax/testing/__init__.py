"""Test helpers for code using parallax: a throwaway real OpenSSH server.

``from parallax.testing import SSHLab, can_start_sshd``.  Pytest fixtures
(``ssh_lab``, ``make_ssh_lab``) live in :mod:`parallax.testing.pytest_plugin`;
enable them with ``pytest_plugins = ["parallax.testing.pytest_plugin"]`` in a
root ``conftest.py``.  Importing this package does not import pytest.
"""

from .sshd import SSHLab, can_start_sshd

__all__ = ["SSHLab", "can_start_sshd"]
