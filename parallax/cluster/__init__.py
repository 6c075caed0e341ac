"""A call sharded across a Dask cluster (``cluster=``; the ``parallax[dask]`` extra).

The caller plans hosts and options as for a local call; :mod:`.sharding`
splits the jobs into shards (pure logic), :mod:`.client` submits one Dask
task per shard and replays each host's events on the caller as they arrive,
and :mod:`.runner` is what runs inside the task on a worker: parallax's own
scheduler and backend, plus a start record on the Dask scheduler so that a
shard re-run after its worker died never runs a host a second time.
A sharded Session keeps one long-lived holder per shard (:mod:`.holders`
on the caller; :mod:`.holder`, a Dask actor, on a worker), so its
connections stay open between calls.

``distributed`` is imported only when a sharded call is made, so
``import parallax`` never needs it.
"""

from __future__ import annotations

from typing import Any


def execute_sharded(*args: Any, **kwargs: Any) -> Any:
    """Lazy alias of :func:`parallax.cluster.client.execute_sharded`."""
    from .client import execute_sharded as impl

    return impl(*args, **kwargs)


def session_shards(*args: Any, **kwargs: Any) -> Any:
    """Lazy alias of :class:`parallax.cluster.holders.SessionShards` (a sharded Session's holders)."""
    from .holders import SessionShards

    return SessionShards(*args, **kwargs)


__all__ = ["execute_sharded", "session_shards"]
