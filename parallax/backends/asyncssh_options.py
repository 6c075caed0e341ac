"""A target as the asyncssh backend connects to it: the shared resolver's
:class:`~parallax.ssh.hostconfig.HostConfig` and ``asyncssh.connect`` keyword arguments.

:class:`Confs` resolves each target once through :mod:`parallax.ssh.config`
(one resolver per ssh config file); ``known_hosts=`` and ``host_key_policy=``
go where the openssh backend puts them (after ``ssh_options``).

This is also the one place the asyncssh backend reads asyncssh's algorithm
tables (``asyncssh.kex.get_kex_algs`` and its siblings, which asyncssh does
not document as public): OpenSSH algorithm lists from an ssh config may name
algorithms asyncssh lacks, which are dropped instead of failing the connect.
``tests/integration/test_asyncssh_backend.py`` fails loudly if these tables
move.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadInput
from ..jobs import Target
from ..ssh.config import USER_CONFIG, ConfigError, ConfigResolver
from ..ssh.hostconfig import HostConfig
from ..ssh.jump import JumpHop

__all__ = ["Conf", "Confs", "algorithms", "connect_kwargs", "hop_target", "recorded_host_key_algs"]

_FAMILIES = {"any": socket.AF_UNSPEC, "inet": socket.AF_INET, "inet6": socket.AF_INET6}
#: Signature algorithms of a recorded host key type (one per type, except RSA's).
_KEY_ALGS = {"ssh-rsa": "rsa-sha2-256,rsa-sha2-512,ssh-rsa"}


def algorithms(kind: str) -> list[bytes]:
    """asyncssh's supported algorithm names of *kind*: ``kex``, ``enc``, ``mac`` or ``key``."""
    if kind == "kex":
        from asyncssh.kex import get_kex_algs
        return get_kex_algs()
    if kind == "enc":
        from asyncssh.encryption import get_encryption_algs
        return get_encryption_algs()
    if kind == "mac":
        from asyncssh.mac import get_mac_algs
        return get_mac_algs()
    if kind == "key":
        from asyncssh.public_key import get_certificate_algs, get_public_key_algs
        return get_certificate_algs() + get_public_key_algs()
    raise ValueError(f"algorithm kind {kind!r}: expected kex, enc, mac or key")


def _fast_ciphers() -> list[str]:
    """asyncssh's ciphers with AES-GCM first: chacha20-poly1305 (asyncssh's first) costs several
    calls into ``cryptography`` per packet, AES-GCM one.  Every default cipher stays offered."""
    algs = [a.decode() for a in algorithms("enc")]
    first = [a for a in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") if a in algs]
    return first + [a for a in algs if a not in first]


def _lenient(value: str | None, possible: Callable[[], list[bytes]]) -> str | None:
    """*value* (an OpenSSH algorithm list, maybe ``+``/``-``/``^`` prefixed) without the names asyncssh lacks."""
    if not value:
        return None
    prefix = value[0] if value[0] in "+-^" else ""
    names = [n for n in value[len(prefix):].split(",") if n]
    try:
        known = {a.decode() for a in possible()}
    except Exception:  # pragma: no cover - the tables moved (the backend test says so): pass through
        return value
    kept = [n for n in names if n in known or any(c in n for c in "*?!")]
    return prefix + ",".join(kept) if kept else None


def connect_kwargs(hc: HostConfig) -> dict[str, Any]:
    """The ``asyncssh.connect`` arguments *hc* decides (not keys, host keys, tunnel or timeout).

    GSSAPI and X.509 are always off; ciphers default to :func:`_fast_ciphers`.
    """
    kwargs: dict[str, Any] = {
        "gss_kex": False, "gss_auth": False, "x509_trusted_certs": None, "x509_trusted_cert_paths": [],
        "compression_algs": "zlib@openssh.com,zlib,none" if hc.compression else "none",
        "password_auth": hc.password_authentication, "public_key_auth": hc.pubkey_authentication,
        "kbdint_auth": hc.kbd_interactive_authentication, "family": _FAMILIES[hc.address_family],
        "tcp_keepalive": hc.tcp_keep_alive,
    }
    for value, arg, kind in ((hc.kex_algorithms, "kex_algs", "kex"), (hc.ciphers, "encryption_algs", "enc"),
                             (hc.macs, "mac_algs", "mac"), (hc.host_key_algorithms, "server_host_key_algs", "key")):
        algs = _lenient(value, functools.partial(algorithms, kind))
        if algs:
            kwargs[arg] = algs
    kwargs.setdefault("encryption_algs", _fast_ciphers())
    if hc.server_alive_interval:
        kwargs["keepalive_interval"] = hc.server_alive_interval
        kwargs["keepalive_count_max"] = hc.server_alive_count_max
    if hc.preferred_authentications:
        kwargs["preferred_auth"] = ",".join(hc.preferred_authentications)
    if hc.bind_address:
        kwargs["local_addr"] = (hc.bind_address, 0)
    if hc.proxy_command and not hc.proxy_jump:
        kwargs["proxy_command"] = hc.proxy_command
    return kwargs


def recorded_host_key_algs(key_types: Iterable[str]) -> str | None:
    """The host key algorithms to offer for the key types known_hosts records (None: asyncssh's
    defaults): only those, so a server with several keys shows the recorded one (as asyncssh
    does with its own known_hosts, and OpenSSH's ``order_hostkeyalgs`` puts them first)."""
    return _lenient(",".join(_KEY_ALGS.get(t, t) for t in key_types), lambda: algorithms("key"))


@dataclass(frozen=True)
class Conf:
    """One target resolved once: its :class:`HostConfig` and asyncssh's arguments for it."""

    target: Target
    hc: HostConfig
    known_files: tuple[str, ...]  # user then global, without /dev/null
    record_file: str | None  # where accept-new records
    agent_path: str | None
    timeout: float | None
    env: tuple[tuple[str, str], ...]  # SendEnv matches, SetEnv, then the call's env
    kwargs: dict[str, Any] = field(default_factory=dict)


class Confs:
    """One shared resolver per ssh config file; each target (connection and env) resolved once."""

    def __init__(self) -> None:
        self._resolvers: dict[str | None, ConfigResolver] = {}
        self._confs: dict[tuple[Target, tuple[tuple[str, str], ...]], Conf] = {}

    def get(self, target: Target) -> Conf:
        """*target*'s :class:`Conf`; ``BadInput`` naming the bad option, line or file."""
        key = (target.connection, target.env)
        conf = self._confs.get(key)
        if conf is None:
            try:
                conf = self._confs[key] = self._build(target)
            except ConfigError as e:
                raise BadInput(str(e), host=target.key) from None
        return conf

    def _build(self, target: Target) -> Conf:
        path = target.ssh_config
        resolver = self._resolvers.get(path)
        if resolver is None:
            try:
                resolver = self._resolvers[path] = ConfigResolver(path if path is not None else USER_CONFIG)
            except ConfigError as e:
                raise BadInput(f"ssh_config: {e}", host=target.key) from None
        options: list[tuple[str, str]] = list(target.ssh_options)
        if target.known_hosts is not None and target.host_key_policy != "off":
            options.append(("UserKnownHostsFile", target.known_hosts))  # after ssh_options, as on ssh's argv
        hc = resolver.resolve(target.host, user=target.user, port=target.port,
                              identity_files=[target.ssh_key] if target.ssh_key else [],
                              ssh_options=options, host_key_policy=target.host_key_policy)
        user_files = [p for p in hc.user_known_hosts_files if p != "/dev/null"]
        env = hc.environment()
        env.update(dict(target.env))
        return Conf(
            target=target, hc=hc,
            known_files=tuple(user_files + [p for p in hc.global_known_hosts_files if p != "/dev/null"]),
            record_file=user_files[0] if user_files else None,
            agent_path=None if hc.identities_only else hc.agent_socket(),
            # as the openssh backend: ssh_options and the ssh config win over connect_timeout=
            timeout=float(hc.connect_timeout) if hc.connect_timeout else target.connect_timeout,
            env=tuple(env.items()), kwargs=connect_kwargs(hc))


def hop_target(hop: JumpHop, target: Target) -> Target:
    """A ProxyJump hop as a target: *target*'s keys, known_hosts and policy, the hop's address
    (*target*'s user, port, host key alias and environment are its own)."""
    keep = tuple((k, v) for k, v in target.ssh_options
                 if k.lower() not in ("user", "port", "hostname", "proxyjump", "hostkeyalias", "setenv", "sendenv"))
    return dataclasses.replace(target, key=f"{target.key} via {hop}", host=hop.host, port=hop.port,
                               user=hop.user, ssh_options=keep, ssh_extra=(), env=())
