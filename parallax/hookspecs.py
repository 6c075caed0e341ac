"""The pluggy hook specifications of parallax (project name ``"parallax"``).

Backends register through :func:`parallax_backends`; the event hooks let
plugins watch jobs start, stream output and finish.  Built-in backends use
the same hooks as third-party ones found in the ``parallax`` entry-point group.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("parallax")
hookimpl = pluggy.HookimplMarker("parallax")


@hookspec
def parallax_backends() -> dict[str, Any]:  # type: ignore[empty-body]
    """Return ``{name: factory}``; ``factory(setup)`` builds a :class:`~parallax.backends.base.Backend`
    from a :class:`~parallax.backends.base.BackendSetup` (a factory taking no argument is called
    with none; a backend class is a factory)."""


@hookspec
def parallax_job_started(job: Any) -> None:
    """A job got a slot and is about to connect."""


@hookspec
def parallax_output(job: Any, stream: str, data: bytes) -> None:
    """A chunk of ``"stdout"`` or ``"stderr"`` arrived from *job*'s host."""


@hookspec
def parallax_job_finished(job: Any, result: Any) -> None:
    """*job* ended with *result* (a result object or a :class:`parallax.Error`)."""
