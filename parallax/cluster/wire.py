"""What travels between the caller and a shard's Dask task.

A :class:`ShardSpec` goes to the worker (it holds the jobs, whose targets may
carry a password: its ``repr()`` shows none of it, since Dask logs task
arguments when a task fails).  Events come back as pickled batches through a
Dask ``Queue``: ``("start", i)``, ``("out", i, stream, data)``,
``("end", i, result)`` and a final ``("done", shard, attempt)``; ``i`` is the
job's index in the caller's job list.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from ..errors import Error
from ..jobs import Job
from ..options import Settings


@dataclass(frozen=True, repr=False)
class ShardSpec:
    """Everything a shard's task needs; only names and settings, never a backend object."""

    call_id: str
    number: int
    jobs: tuple[Job, ...]
    indices: tuple[int, ...]  # the caller's index of each job
    settings: Settings  # for the worker: this shard's limit, no callbacks, no output files
    deadline_at: float | None  # time.time() at which the call's overall deadline ends
    forward_output: bool  # the caller consumes output events (print_out, outdir, on_output ...)
    idempotent: bool
    limit_per_worker: int | None
    caller_host: str  # the 1.0 local shortcut applies only on the caller's own machine

    @property
    def queue_name(self) -> str:
        return f"parallax-events-{self.call_id}"

    @property
    def record_name(self) -> str:
        return f"parallax-started-{self.call_id}-{self.number}"

    @property
    def cancel_name(self) -> str:
        return f"parallax-cancel-{self.call_id}"

    def __repr__(self) -> str:
        return f"<parallax shard {self.number} of call {self.call_id}: {len(self.jobs)} hosts>"


def portable(result: Any) -> Any:
    """*result* ready to pickle back to the caller: an Error without its job
    (the caller restores its own), or a plain :class:`Error` when its class
    cannot make the round trip (a plugin's error with another constructor)."""
    if not isinstance(result, Error):
        return result
    result.task = None
    if type(result).__module__ == Error.__module__:
        return result
    try:
        pickle.loads(pickle.dumps(result))
        return result
    except (pickle.PicklingError, TypeError, AttributeError, ValueError):
        plain = Error(result.msg, host=result.host, stdout=result.stdout, stderr=result.stderr,
                      rc=result.rc, duration=result.duration)
        return plain


def encode(events: list[tuple[Any, ...]]) -> bytes:
    """One batch of events as bytes (what a Dask queue carries through msgpack)."""
    return pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> list[tuple[Any, ...]]:
    """The inverse of :func:`encode` (only ever fed what this call's own shards sent)."""
    events: list[tuple[Any, ...]] = pickle.loads(data)
    return events


__all__ = ["ShardSpec", "decode", "encode", "portable"]
