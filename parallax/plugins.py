"""The plugin manager: backend discovery and the global event plugins."""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs

if TYPE_CHECKING:
    from .backends.base import Backend
    from .options import Settings

_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
_backends: dict[str, Callable[..., Any]] | None = None


def _builtin_plugins() -> list[Any]:
    from .backends import builtin

    return [builtin]


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, with built-ins and ``parallax`` entry points loaded."""
    global _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager("parallax")
            pm.add_hookspecs(hookspecs)
            for plugin in _builtin_plugins():
                pm.register(plugin)
            pm.load_setuptools_entrypoints("parallax")
            _pm = pm
        return _pm


def register(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object (backends and/or event hooks) for this process."""
    global _backends
    plugin_manager().register(plugin, name=name)
    with _lock:
        _backends = None


def unregister(plugin: Any) -> None:
    """Undo :func:`register`."""
    global _backends
    plugin_manager().unregister(plugin)
    with _lock:
        _backends = None


def backends() -> dict[str, Callable[..., Any]]:
    """All known backend factories by name (a later registration of a name wins)."""
    global _backends
    pm = plugin_manager()
    with _lock:
        if _backends is None:
            found: dict[str, Callable[..., Any]] = {}
            # pluggy calls the most recently registered plugin first.
            for mapping in reversed(pm.hook.parallax_backends()):
                found.update(mapping or {})
            _backends = found
        return dict(_backends)


def backend_factory(name: str) -> Callable[..., Any]:
    """The factory for backend *name*, or a ``ValueError`` listing the known ones."""
    known = backends()
    try:
        return known[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown backend {name!r}{hint}; known backends: {', '.join(sorted(known))}") from None


def create_backend(settings: Settings) -> Backend:
    """The backend a call's *settings* select, as the core builds it: the caller's instance
    (``backend=MockBackend(...)``) as is; ``backend="mock"`` from the deprecated ``mock=``
    option; any other name from its factory, called with a
    :class:`~parallax.backends.base.BackendSetup` (never *settings* themselves)."""
    from .backends.base import Backend, BackendSetup, build

    chosen = settings.backend
    if isinstance(chosen, Backend):
        return chosen
    if chosen == "mock" and backends().get("mock") is _builtin_mock():
        from .backends.mock import MockBackend

        return MockBackend.from_option(settings.mock)
    return build(backend_factory(chosen), BackendSetup(limit=settings.limit))


def _builtin_mock() -> Callable[..., Any]:
    from .backends import builtin

    return builtin._mock
