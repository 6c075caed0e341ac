"""The example plugin's entry point: registers ``backend="example"`` and imports nothing heavy.

pluggy imports every plugin's entry-point module whenever parallax looks up
ANY backend, so this module stays light (as ``parallax/backends/builtin.py``
does for the built-ins): the factory imports the backend module, and with it
asyncssh, only when ``backend="example"`` is chosen.  Without asyncssh,
choosing it says what to install; other backends are not affected at all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import parallax
from parallax.backends.base import Backend, BackendSetup


def example(setup: BackendSetup) -> Backend:
    """Build the example backend (importing it, and asyncssh, on first use)."""
    try:
        importlib.import_module("asyncssh")
    except ImportError as e:
        raise ValueError(f"the example backend needs asyncssh: pip install asyncssh ({e})") from None
    from parallax_example_backend import ExampleBackend

    return ExampleBackend(setup)


@parallax.hookimpl
def parallax_backends() -> dict[str, Callable[[BackendSetup], Backend]]:
    return {"example": example}
