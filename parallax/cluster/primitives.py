"""The few ``distributed`` primitives a sharded call uses, behind typed functions.

``distributed`` ships without complete type hints; keeping every call into it
here keeps the rest of :mod:`parallax.cluster` type-checked strictly.  Each
name is a ``distributed`` public API object, created on the given client.
"""

from __future__ import annotations

from typing import Any


async def connect(address: str, security: Any, name: str, timeout: float = 30) -> Any:
    """An asynchronous ``distributed.Client`` to the scheduler at *address* (never the default client)."""
    from distributed import Client

    return await Client(address, asynchronous=True, security=security,  # type: ignore[no-untyped-call]
                        set_as_default=False, name=name, timeout=timeout)


def variable(name: str, client: Any) -> Any:
    """``distributed.Variable`` *name*: a value kept on the scheduler (a shard's start record)."""
    from distributed import Variable

    return Variable(name, client=client)  # type: ignore[no-untyped-call]


async def queue(name: str, client: Any) -> Any:
    """``distributed.Queue`` *name*: the call's event stream, through the scheduler."""
    from distributed import Queue

    return await Queue(name, client=client)  # type: ignore[no-untyped-call]


def event(name: str, client: Any) -> Any:
    """``distributed.Event`` *name*: set when the caller cancels the call."""
    from distributed import Event

    return Event(name, client=client)  # type: ignore[no-untyped-call]


__all__ = ["connect", "event", "queue", "variable"]
