"""Split a call's jobs into shards and the call's ``limit`` across them (pure logic).

One shard is one Dask task running parallax's scheduler on a worker with its
own share of ``limit``.  The shares add up to at most ``limit``, so the whole
call never has more than ``limit`` hosts in flight however the shards are
placed, queued or re-run, and however many workers join during the call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Fewer hosts than this are not worth a Dask task of their own.
MIN_SHARD = 8


@dataclass(frozen=True)
class WorkerInfo:
    """What sharding needs to know about one Dask worker."""

    address: str
    name: str
    nthreads: int
    resources: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    """Where a shard may run: Dask ``resources`` or worker ``workers`` restrictions."""

    resources: Mapping[str, float] | None = None
    workers: tuple[str, ...] | None = None

    def submit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Client.submit``."""
        if self.resources:
            return {"resources": dict(self.resources)}
        if self.workers:
            # Loose: Dask pins a name to the worker's address when the task is submitted,
            # so a strict restriction would wait forever once that worker restarts.
            return {"workers": list(self.workers), "allow_other_workers": True}
        return {}


@dataclass(frozen=True)
class ShardPlan:
    """One shard: the indices of its jobs in the call's job list, its share of ``limit``."""

    number: int
    group: str | None
    indices: tuple[int, ...]
    limit: int
    placement: Placement = Placement()


def workers_from_info(info: Mapping[str, Any]) -> list[WorkerInfo]:
    """``WorkerInfo`` for each worker of ``Client.scheduler_info()["workers"]``."""
    out = []
    for address, w in info.items():
        out.append(WorkerInfo(address=address, name=str(w.get("name", address)),
                              nthreads=max(int(w.get("nthreads", 1) or 1), 1),
                              resources=dict(w.get("resources") or {})))
    return out


def split_evenly(count: int, parts: int) -> list[tuple[int, ...]]:
    """``range(count)`` in *parts* contiguous runs whose sizes differ by at most one."""
    if parts < 1:
        raise ValueError(f"parts={parts!r}: expected an integer >= 1")
    size, extra = divmod(count, parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(tuple(range(start, end)))
        start = end
    return [run for run in out if run]


def split_limit(limit: int, sizes: Sequence[int]) -> list[int]:
    """Shares of *limit* proportional to *sizes*: each at least 1, all adding up to at most *limit*.

    A ``ValueError`` when there are more shards than ``limit`` (they could
    not all run at once without exceeding it).
    """
    if len(sizes) > limit:
        raise ValueError(f"limit={limit} is smaller than the number of shards ({len(sizes)}); "
                         f"raise limit or use fewer shard_by groups")
    total = sum(sizes)
    if not sizes:
        return []
    rest = limit - len(sizes)
    exact = [rest * s / total if total else 0.0 for s in sizes]
    shares = [1 + int(x) for x in exact]
    leftover = limit - sum(shares)
    for i in sorted(range(len(sizes)), key=lambda i: exact[i] - int(exact[i]), reverse=True)[:leftover]:
        shares[i] += 1
    return [min(share, max(size, 1)) for share, size in zip(shares, sizes, strict=True)]


def group_keys(keys: Sequence[str], shard_by: Callable[[str], str]) -> dict[str, list[int]]:
    """``{group: [indices]}`` in order of first appearance; *shard_by* maps a host key to a group."""
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        group = shard_by(key)
        if not isinstance(group, str) or not group:
            raise TypeError(f"shard_by({key!r}) returned {group!r}: expected a non-empty string")
        groups.setdefault(group, []).append(i)
    return groups


def place_group(group: str, workers: Sequence[WorkerInfo]) -> tuple[Placement, int]:
    """Where *group*'s shards run and how many of them can run at once there.

    A worker resource named *group* wins (``dask worker --resources site-a=4``):
    a strict placement.  Then workers whose name or address is *group*: a
    preference (if those workers are gone, say restarted with a new address,
    the shard runs elsewhere).  Anything else is a ``ValueError`` listing what
    the cluster offers.
    """
    holders = [w for w in workers if w.resources.get(group, 0) > 0]
    if holders:
        slots = sum(max(min(w.nthreads, int(w.resources[group])), 1) for w in holders)
        return Placement(resources={group: 1}), slots
    named = [w for w in workers if group in (w.name, w.address)]
    if named:
        return Placement(workers=tuple(w.address for w in named)), sum(w.nthreads for w in named)
    offered = sorted({r for w in workers for r in w.resources} | {w.name for w in workers})
    raise ValueError(f"shard_by group {group!r}: no Dask worker has a resource or a name {group!r} "
                     f"(the cluster offers: {', '.join(offered) or 'nothing'})")


def plan_shards(
    keys: Sequence[str],
    *,
    limit: int,
    workers: Sequence[WorkerInfo],
    shard_by: Callable[[str], str] | None = None,
    min_shard: int = MIN_SHARD,
) -> list[ShardPlan]:
    """Shards for jobs with result keys *keys* on a cluster of *workers*.

    By count: one shard per worker thread at most (a task holds its thread
    while it runs), none smaller than *min_shard* hosts.  With *shard_by*:
    each group's hosts go to the workers placed for that group, split the
    same way among them.
    """
    if not keys:
        return []
    if not workers:
        raise ValueError("the Dask cluster has no workers")
    runs: list[tuple[str | None, Placement, tuple[int, ...]]] = []
    if shard_by is None:
        slots = sum(w.nthreads for w in workers)
        parts = max(1, min(slots, limit, math.ceil(len(keys) / min_shard)))
        runs = [(None, Placement(), run) for run in split_evenly(len(keys), parts)]
    else:
        groups = group_keys(keys, shard_by)
        wanted: dict[str, int] = {}
        placed: dict[str, Placement] = {}
        for group, indices in groups.items():
            placed[group], slots = place_group(group, workers)
            wanted[group] = max(1, min(slots, math.ceil(len(indices) / min_shard)))
        if len(groups) > limit:
            raise ValueError(f"limit={limit} is smaller than the number of shard_by groups ({len(groups)})")
        while sum(wanted.values()) > limit:  # fewer shards for the groups that have most
            wanted[max(wanted, key=lambda g: wanted[g])] -= 1
        for group, indices in groups.items():
            for run in split_evenly(len(indices), wanted[group]):
                runs.append((group, placed[group], tuple(indices[i] for i in run)))
    shares = split_limit(limit, [len(r[2]) for r in runs])
    return [ShardPlan(number=n, group=group, indices=indices, limit=share, placement=placement)
            for n, ((group, placement, indices), share) in enumerate(zip(runs, shares, strict=True))]


def encode_ranges(values: set[int] | Sequence[int]) -> list[list[int]]:
    """Sorted integers as ``[[first, last], ...]`` runs: a compact start record."""
    out: list[list[int]] = []
    for v in sorted(values):
        if out and out[-1][1] == v - 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


def decode_ranges(runs: Sequence[Sequence[int]]) -> set[int]:
    """The inverse of :func:`encode_ranges`."""
    return {v for first, last in runs for v in range(int(first), int(last) + 1)}


__all__ = [
    "MIN_SHARD",
    "Placement",
    "ShardPlan",
    "WorkerInfo",
    "decode_ranges",
    "encode_ranges",
    "group_keys",
    "place_group",
    "plan_shards",
    "split_evenly",
    "split_limit",
    "workers_from_info",
]
