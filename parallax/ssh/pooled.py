"""The lifecycle every in-process backend with a :class:`~parallax.ssh.pool.ConnectionPool` shares.

A backend class lists :class:`PooledLifecycle` before
:class:`~parallax.backends.base.Backend` and keeps its pool in ``_pool``:
``disconnect`` forgets one target's connection, ``close`` all of them (both
idempotent, as the backend contract asks).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ..jobs import Target
from .pool import ConnectionPool

__all__ = ["PooledLifecycle"]

C = TypeVar("C")


class PooledLifecycle(Generic[C]):
    """``disconnect`` and ``close`` over the backend's ``_pool``."""

    _pool: ConnectionPool[C]

    async def disconnect(self, target: Target) -> None:
        """Close and forget *target*'s pooled connection."""
        await self._pool.discard(target)

    async def close(self) -> None:
        """Close every pooled connection (idempotent)."""
        await self._pool.close()
