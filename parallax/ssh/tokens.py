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


def expand(text: str, values: Mapping[str, str], *, allowed: str, env: Mapping[str, str] | None = None) -> str:
    """Expand ``%x`` tokens in *allowed* (and ``${VAR}`` from *env* when given)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if env is not None and ch == "$" and text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                raise TokenError(f"environment variable in {text!r} is missing its closing '}}'")
            name = text[i + 2:end]
            if not name:
                raise TokenError(f"zero-length environment variable in {text!r}")
            if name not in env:
                raise TokenError(f"environment variable ${{{name}}} in {text!r} has no value")
            out.append(env[name])
            i = end + 1
            continue
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            raise TokenError(f"{text!r} ends with a lone '%' (write %% for a literal percent)")
        key = text[i + 1]
        if key == "%":
            out.append("%")
        elif key in allowed:
            out.append(values[key])
        else:
            raise TokenError(f"unknown token %{key} in {text!r} (allowed here: "
                             f"{' '.join('%' + k for k in allowed)} %%)")
        i += 2
    return "".join(out)


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
