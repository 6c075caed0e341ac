"""The local account as OpenSSH sees it: name and home come from passwd, not ``$HOME``.

Every backend resolves ``~``, ``~/.ssh/config`` and the default user the same
way through these, so that they all agree with the ``ssh`` binary.
"""

from __future__ import annotations

import os
import pwd


def local_account() -> tuple[str, str]:
    """``(user name, home directory)`` of the current uid from passwd."""
    try:
        pw = pwd.getpwuid(os.getuid())
        return pw.pw_name, pw.pw_dir
    except KeyError:
        return os.environ.get("USER") or os.environ.get("LOGNAME") or "root", os.path.expanduser("~")


def local_user() -> str:
    """The current user's login name."""
    return local_account()[0]


def passwd_home() -> str:
    """The passwd home directory (what OpenSSH means by ``~``)."""
    return local_account()[1]


def expand_home(path: str) -> str:
    """Expand a leading ``~`` to the passwd home, as ssh does."""
    if path == "~" or path.startswith("~/"):
        return passwd_home() + path[1:]
    return os.path.expanduser(path)


def default_ssh_config() -> str | None:
    """The passwd home's ``~/.ssh/config`` if it exists."""
    path = os.path.join(passwd_home(), ".ssh", "config")
    return path if os.path.exists(path) else None


__all__ = ["default_ssh_config", "expand_home", "local_account", "local_user", "passwd_home"]
