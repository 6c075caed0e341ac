"""``ProxyJump`` values as typed hops (OpenSSH's ``parse_jump``/``parse_user_host_port``), and what a
hop inherits from the target it leads to: the one rule of every in-process backend.

That rule is ``ssh -J``'s (``man ssh``: "configuration directives supplied
on the command-line generally apply to the destination host and not any
specified jump hosts").  OpenSSH reaches the last hop as ``ssh -l USER -p
PORT -J <earlier hops> -F <config> HOP``, so a hop gets its own
``Host``/``Match`` settings from the same config file, and of the caller's
settings only what the openssh backend hands every ``ssh`` it starts: the
config file, the connect timeout (in its generated config) and the password
or passphrase (through ``SSH_ASKPASS``).  The caller's ``ssh_key``,
``ssh_options``, ``host_key_policy``, ``known_hosts``, ``env``, user and port
are the target's alone: set a jump host's identity and known_hosts in the ssh
config, as for ``ssh``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..jobs import Target

if TYPE_CHECKING:
    from .config import ConfigResolver
    from .hostconfig import HostConfig

__all__ = ["JumpHop", "format_jump", "hop_target", "jump_targets", "parse_jump"]


@dataclass(frozen=True)
class JumpHop:
    """One ``[user@]host[:port]`` hop; ``None`` means "as configured for that host"."""

    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{host}{port}"


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"bad port {text!r} in {spec!r}")
    return int(text)


def _host_port(text: str, spec: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] not in ("", ":", "/"):
            raise ValueError(f"unbalanced brackets in {spec!r}")
        host, rest = text[1:end], text[end + 2:]
    else:
        cut = min((i for i in (text.find(":"), text.find("/")) if i >= 0), default=-1)
        host, rest = (text, "") if cut < 0 else (text[:cut], text[cut + 1:])
    if not host:
        raise ValueError(f"missing host name in {spec!r}")
    return host, (_port(rest, spec) if rest else None)


def _hop(text: str) -> JumpHop:
    if text[:6].lower() == "ssh://":
        rest = text[6:]
        if "/" in rest.lstrip("[").split("]")[-1]:
            raise ValueError(f"a path is not allowed in {text!r}")
        user, at, hostport = rest.rpartition("@")
        user = user.split(";", 1)[0]
        host, port = _host_port(hostport, text)
        return JumpHop(host, user if at else None, port)
    user, at, hostport = text.rpartition("@")
    if at and not user:
        raise ValueError(f"empty user name in {text!r}")
    host, port = _host_port(hostport, text)
    return JumpHop(host, user if at else None, port)


def parse_jump(spec: str) -> tuple[JumpHop, ...]:
    """The hops of a ProxyJump value, first hop first; ``()`` for ``none``.

    Raises ``ValueError`` naming the hop that is not ``[user@]host[:port]``
    or ``ssh://[user@]host[:port]``.
    """
    text = spec.strip()
    if text.lower() == "none":
        return ()
    if not text:
        raise ValueError("empty ProxyJump")
    hops = []
    for part in text.split(","):
        if not part or part != part.strip():
            raise ValueError(f"empty or padded hop in {spec!r}")
        hops.append(_hop(part))
    return tuple(hops)


def format_jump(hops: tuple[JumpHop, ...]) -> str:
    """A ProxyJump value for *hops* (``none`` if there are none)."""
    return ",".join(str(h) for h in hops) if hops else "none"


def hop_target(target: Target, hops: tuple[JumpHop, ...]) -> Target:
    """The target that ``ssh -J`` reaches the last of *hops* as, on the way to *target*: that hop's
    address, the earlier hops as its ``ProxyJump``, and of *target* only its ssh config file, connect
    timeout and secrets (see the module's text)."""
    hop, earlier = hops[-1], hops[:-1]
    return Target(key=f"{target.key} via {hop}", host=hop.host, port=hop.port, user=hop.user,
                  ssh_options=(("ProxyJump", format_jump(earlier)),) if earlier else (),
                  connect_timeout=target.connect_timeout, password=target.password,
                  passphrase=target.passphrase, askpass=target.askpass, ssh_config=target.ssh_config)


def jump_targets(target: Target, hc: HostConfig, resolver: ConfigResolver) -> tuple[Target, ...]:
    """The hops to open one through the other before *target* (resolved as *hc*), first hop first,
    each as :func:`hop_target`; a ProxyJump loop is the resolver's ``ConfigError``.  A hop's own
    ProxyJump is followed only for the first hop (as ``ssh -J``: the later ones are given ``-J``)."""
    chain = resolver.jump_chain(hc)
    return tuple(hop_target(target, nxt.proxy_jump) for _, nxt in zip(chain, (*chain[1:], hc)))
