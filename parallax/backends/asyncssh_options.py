"""A target as the asyncssh backend connects to it: the shared resolver's
:class:`~parallax.ssh.hostconfig.HostConfig` and ``asyncssh.connect`` keyword arguments.

:class:`Confs` resolves each target once through :mod:`parallax.ssh.config`
(one resolver per ssh config file); ``known_hosts=`` and ``host_key_policy=``
go where the openssh backend puts them (after ``ssh_options``).

This is also the one place the asyncssh backend reads asyncssh's algorithm
tables (``asyncssh.kex.get_kex_algs``, ``get_default_kex_algs`` and their
siblings, which asyncssh does not document as public): OpenSSH algorithm
lists are applied to them by the shared :func:`parallax.ssh.algorithms.assemble`
(names asyncssh lacks dropped; a list that leaves nothing is a ``BadInput``
naming the option).  ``tests/integration/test_asyncssh_backend.py`` fails
loudly if these tables move.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadInput
from ..jobs import Target
from ..ssh.algorithms import ALGORITHM_OPTIONS, AlgorithmError, assemble
from ..ssh.hostconfig import HostConfig
from ..ssh.resolved import Confs as SharedConfs
from ..ssh.resolved import Resolved

__all__ = ["Conf", "Confs", "algorithms", "connect_kwargs", "recorded_host_key_algs"]

#: Signature algorithms of a recorded host key type (one per type, except RSA's).
_KEY_ALGS = {"ssh-rsa": "rsa-sha2-256,rsa-sha2-512,ssh-rsa"}


#: HostConfig algorithm field -> (asyncssh.connect argument, kind for :func:`algorithms`)
_ALG_ARGS = {"ciphers": ("encryption_algs", "enc"), "kex_algorithms": ("kex_algs", "kex"),
             "macs": ("mac_algs", "mac"), "host_key_algorithms": ("server_host_key_algs", "key")}


def algorithms(kind: str, default: bool = False) -> list[bytes]:
    """asyncssh's algorithm names of *kind* (``kex``, ``enc``, ``mac`` or ``key``): all it
    supports, or with *default* those it offers when not told otherwise."""
    if kind == "kex":
        from asyncssh.kex import get_default_kex_algs, get_kex_algs
        return [a for a in get_default_kex_algs() if not a.startswith(b"gss-")] if default else get_kex_algs()
    if kind == "enc":
        from asyncssh.encryption import get_default_encryption_algs, get_encryption_algs
        return get_default_encryption_algs() if default else get_encryption_algs()
    if kind == "mac":
        from asyncssh.mac import get_default_mac_algs, get_mac_algs
        return get_default_mac_algs() if default else get_mac_algs()
    if kind == "key":
        from asyncssh.public_key import (
            get_certificate_algs,
            get_default_certificate_algs,
            get_default_public_key_algs,
            get_public_key_algs,
        )
        if default:
            return get_default_certificate_algs() + get_default_public_key_algs()
        return get_certificate_algs() + get_public_key_algs()
    raise ValueError(f"algorithm kind {kind!r}: expected kex, enc, mac or key")


@functools.cache
def _names(kind: str, default: bool = False) -> tuple[str, ...]:
    names = tuple(a.decode() for a in algorithms(kind, default))
    if kind == "enc" and default:  # AES-GCM first: chacha20-poly1305 (asyncssh's first) costs
        first = tuple(a for a in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") if a in names)
        names = first + tuple(a for a in names if a not in first)  # several cryptography calls per packet
    return names


def _lenient(value: str, kind: str) -> str | None:
    """*value* (names, comma separated) without the names asyncssh lacks (None if nothing is left)."""
    known = set(_names(kind))
    kept = [n for n in value.split(",") if n in known]
    return ",".join(kept) if kept else None


#: The HostConfig fields :func:`connect_kwargs` reads: its result is computed once per distinct set of values.
_KWARGS_FIELDS = ("number_of_password_prompts", "compression", "password_authentication", "pubkey_authentication",
                  "kbd_interactive_authentication", *_ALG_ARGS,
                  "server_alive_interval", "server_alive_count_max", "preferred_authentications",
                  "proxy_command", "proxy_jump")


def connect_kwargs(hc: HostConfig) -> dict[str, Any]:
    """The ``asyncssh.connect`` arguments *hc* decides (not keys, host keys, tunnel, timeout or the TCP
    connect, which :func:`parallax.ssh.tcp.open_tcp` makes with AddressFamily, BindAddress, TCPKeepAlive).

    GSSAPI and X.509 are always off; ciphers default to asyncssh's with AES-GCM
    first.  ``AlgorithmError`` for an algorithm option that leaves nothing asyncssh has.
    A fresh dict each call (callers add to it); hosts with the same settings share the work.
    """
    shared = _cached_kwargs(tuple(getattr(hc, name) for name in _KWARGS_FIELDS))
    return {k: list(v) if isinstance(v, list) else v for k, v in shared.items()}


@functools.lru_cache(maxsize=1024)
def _cached_kwargs(values: tuple[Any, ...]) -> dict[str, Any]:
    return _connect_kwargs(dict(zip(_KWARGS_FIELDS, values)))


def _connect_kwargs(f: dict[str, Any]) -> dict[str, Any]:
    hc = _Fields(f)
    prompts = hc.number_of_password_prompts > 0
    kwargs: dict[str, Any] = {
        "gss_kex": False, "gss_auth": False, "x509_trusted_certs": None, "x509_trusted_cert_paths": [],
        "compression_algs": "zlib@openssh.com,zlib,none" if hc.compression else "none",
        "password_auth": hc.password_authentication and prompts, "public_key_auth": hc.pubkey_authentication,
        "kbdint_auth": hc.kbd_interactive_authentication and prompts,
    }
    for option, name in ALGORITHM_OPTIONS.items():
        arg, kind = _ALG_ARGS[name]
        algs = assemble(option, getattr(hc, name), _names(kind, default=True), _names(kind), "asyncssh")
        if algs is not None:
            kwargs[arg] = list(algs)
    kwargs.setdefault("encryption_algs", list(_names("enc", default=True)))
    if hc.server_alive_interval:
        kwargs["keepalive_interval"] = hc.server_alive_interval
        kwargs["keepalive_count_max"] = hc.server_alive_count_max
    if hc.preferred_authentications:
        kwargs["preferred_auth"] = ",".join(hc.preferred_authentications)
    if hc.proxy_command and not hc.proxy_jump:
        kwargs["proxy_command"] = hc.proxy_command
    return kwargs


class _Fields:
    """The fields of a HostConfig that :func:`connect_kwargs` reads, as attributes."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)

    def __getattr__(self, name: str) -> Any:  # only for the type checker: every field read is listed
        raise AttributeError(f"connect_kwargs reads HostConfig.{name}: add it to _KWARGS_FIELDS")


def recorded_host_key_algs(key_types: Iterable[str]) -> str | None:
    """The host key algorithms to offer for the key types known_hosts records (None: asyncssh's
    defaults): only those, so a server with several keys shows the recorded one (as asyncssh
    does with its own known_hosts, and OpenSSH's ``order_hostkeyalgs`` puts them first)."""
    return _lenient(",".join(_KEY_ALGS.get(t, t) for t in key_types), "key")


@dataclass(frozen=True)
class Conf(Resolved):
    """One target resolved once (:class:`~parallax.ssh.resolved.Resolved`) and asyncssh's arguments for it."""

    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def agent_path(self) -> str | None:
        """The agent socket to offer keys from (none under IdentitiesOnly)."""
        return None if self.hc.identities_only else self.hc.agent_socket()

    @classmethod
    def of(cls, target: Target, hc: HostConfig) -> Conf:
        """*target* resolved as *hc*, with :func:`connect_kwargs` (``BadInput`` naming a bad algorithm option)."""
        try:
            kwargs = connect_kwargs(hc)
        except AlgorithmError as e:
            raise BadInput(str(e), host=target.key) from None
        base = Resolved.of(target, hc)
        return cls(base.target, hc, base.timeout, base.env, kwargs)


def Confs() -> SharedConfs[Conf]:
    """The asyncssh backend's per-target records (:class:`parallax.ssh.resolved.Confs` of :class:`Conf`)."""
    return SharedConfs(Conf.of)
