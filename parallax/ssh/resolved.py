"""A target as an in-process backend connects to it, resolved once: the same record for every backend.

:class:`Resolved` holds the shared resolver's :class:`~parallax.ssh.hostconfig.HostConfig`
and what every backend derives from it the same way (the connect timeout,
the variables to send); a backend that needs more (its library's arguments)
subclasses it and overrides :meth:`Resolved.of`.  :class:`Confs` caches one
per target (connection and environment) over one
:class:`~parallax.ssh.targets.TargetConfigs`, and gives a target's ProxyJump
hops as :func:`parallax.ssh.jump.jump_targets` decides them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from collections.abc import Callable
from typing import Generic, TypeVar

from ..errors import BadInput
from ..jobs import Target
from .config import ConfigError
from .hostconfig import HostConfig
from .jump import jump_targets
from .targets import TargetConfigs, connect_timeout, environment

__all__ = ["Confs", "Resolved"]


@dataclass(frozen=True)
class Resolved:
    """One target resolved once: its :class:`HostConfig`, connect timeout and environment."""

    target: Target
    hc: HostConfig
    timeout: float | None  # ConnectTimeout, else the call's connect_timeout
    env: tuple[tuple[str, str], ...]  # SendEnv matches, SetEnv, then the call's env

    @classmethod
    def of(cls, target: Target, hc: HostConfig) -> Resolved:
        """*target* resolved as *hc* (a subclass adds its library's arguments; ``BadInput`` if they are bad)."""
        return Resolved(target, hc, connect_timeout(hc, target), tuple(environment(hc, target).items()))


R = TypeVar("R", bound=Resolved)


class Confs(Generic[R]):
    """Targets through the shared :class:`TargetConfigs`, each (connection and env) made a record
    by *make* (e.g. :meth:`Resolved.of`) once."""

    def __init__(self, make: Callable[[Target, HostConfig], R]) -> None:
        self.targets = TargetConfigs()
        self._make = make
        self._confs: dict[tuple[Target, tuple[tuple[str, str], ...]], R] = {}
        self._lock = threading.Lock()

    def get(self, target: Target) -> R:
        """*target*'s record; ``BadInput`` naming the bad option, line or file."""
        key = (target.connection, target.env)
        conf = self._confs.get(key)
        if conf is None:
            conf = self._make(target, self.targets.resolve(target))
            with self._lock:
                conf = self._confs.setdefault(key, conf)
        return conf

    def hops(self, target: Target) -> list[R]:
        """The records of *target*'s ProxyJump hops, first hop first (``BadInput`` for a loop)."""
        try:
            hops = jump_targets(target, self.targets.resolve(target), self.targets.resolver(target))
        except ConfigError as e:
            raise BadInput(str(e), host=target.key) from None
        return [self.get(hop) for hop in hops]
