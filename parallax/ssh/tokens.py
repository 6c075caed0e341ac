"""OpenSSH's ``~``, ``%`` token and ``${VAR}`` expansion (``misc.c``), written once.

Which keyword expands which tokens is OpenSSH's (``man ssh_config``,
TOKENS): ``HostName`` only ``%h``; ``IdentityFile``, ``CertificateFile``,
``UserKnownHostsFile``, ``ControlPath`` and ``IdentityAgent`` the full
client set ``%C %d %h %i %k %L %l %n %p %r %u`` plus ``${VAR}``;
``ProxyCommand`` ``%h %n %p %r``.  ``%%`` is a literal ``%``; an unknown
token, a ``%`` at the end or an unset ``${VAR}`` is an error, as in OpenSSH.
"""

from __future__ import annotations

import hashlib
import pwd
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CLIENT_TOKENS", "PROXY_TOKENS", "TokenError", "Tokens", "connection_hash", "expand", "expand_tilde"]

#: The token letters of OpenSSH 9.2's ``DEFAULT_CLIENT_PERCENT_EXPAND_ARGS``.
CLIENT_TOKENS = "CLiklnpdhru"
#: The tokens ``ProxyCommand`` accepts.
PROXY_TOKENS = "hnpr"


class TokenError(ValueError):
    """A ``%`` token or ``${VAR}`` that cannot be expanded."""


def connection_hash(local_host: str, host: str, port: int, user: str) -> str:
    """``%C``: SHA-1 hex of ``%l%h%p%r`` (OpenSSH 9.2's ``ssh_connection_hash``)."""
    return hashlib.sha1(f"{local_host}{host}{port}{user}".encode()).hexdigest()


@dataclass(frozen=True)
class Tokens:
    """The values of every client token for one connection."""

    local_host: str  # %l: gethostname()
    host: str  # %h: the real host name
    port: int  # %p
    remote_user: str  # %r
    original_host: str  # %n: the name given on the command line
    local_user: str  # %u
    home: str  # %d
    uid: int  # %i
    key_alias: str  # %k: HostKeyAlias, else the original host

    def mapping(self) -> dict[str, str]:
        """Token letter -> value."""
        return {
            "C": connection_hash(self.local_host, self.host, self.port, self.remote_user),
            "L": self.local_host.split(".", 1)[0],
            "i": str(self.uid),
            "k": self.key_alias,
            "l": self.local_host,
            "n": self.original_host,
            "p": str(self.port),
            "d": self.home,
            "h": self.host,
            "r": self.remote_user,
            "u": self.local_user,
        }


_PERCENT = re.compile(r"%(.?)", re.DOTALL)
_PERCENT_DOLLAR = re.compile(r"%(.?)|\$\{([^}]*)(\}?)", re.DOTALL)


def expand(text: str, values: Mapping[str, str], *, allowed: str, env: Mapping[str, str] | None = None) -> str:
    """Expand ``%x`` tokens in *allowed* (and ``${VAR}`` from *env* when given)."""
    if "%" not in text and (env is None or "${" not in text):
        return text

    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key is None:  # ${VAR}
            name = m.group(2)
            if not m.group(3):
                raise TokenError(f"environment variable in {text!r} is missing its closing '}}'")
            if not name:
                raise TokenError(f"zero-length environment variable in {text!r}")
            assert env is not None
            if name not in env:
                raise TokenError(f"environment variable ${{{name}}} in {text!r} has no value")
            return env[name]
        if key == "%":
            return "%"
        if key and key in allowed:
            return values[key]
        if not key:
            raise TokenError(f"{text!r} ends with a lone '%' (write %% for a literal percent)")
        raise TokenError(f"unknown token %{key} in {text!r} (allowed here: "
                         f"{' '.join('%' + k for k in allowed)} %%)")

    return (_PERCENT if env is None else _PERCENT_DOLLAR).sub(one, text)


def expand_tilde(path: str, home: str) -> str:
    """``~`` and ``~/x`` -> *home*; ``~user/x`` -> that user's passwd home (``tilde_expand_filename``)."""
    if not path.startswith("~"):
        return path
    name, sep, rest = path[1:].partition("/")
    if not name:
        base = home
    else:
        try:
            base = pwd.getpwnam(name).pw_dir
        except KeyError:
            raise TokenError(f"{path!r}: no such user {name!r}") from None
    if not sep:
        return base
    return base + ("" if base.endswith("/") else "/") + rest
