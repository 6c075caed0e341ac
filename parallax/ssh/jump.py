"""``ProxyJump`` values as typed hops (OpenSSH's ``parse_jump``/``parse_user_host_port``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["JumpHop", "format_jump", "parse_jump"]


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
