"""The plugin manager: backend discovery and the global event plugins.

Entry points of the ``parallax`` group are loaded one by one (each through
pluggy's public ``load_setuptools_entrypoints(group, name)``), so a plugin
whose import fails does not take discovery down with it: the other backends
are found as usual, and choosing the broken plugin's backend is an error
naming the plugin, its distribution and its import error.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs

if TYPE_CHECKING:
    from .backends.base import Backend
    from .options import Settings

GROUP = "parallax"
_log = logging.getLogger(__name__)
_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
_backends: dict[str, Callable[..., Any]] | None = None


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point of the ``parallax`` group that could not be loaded, and why."""

    name: str  # the entry point's name (by convention, the backend's)
    value: str  # what it names: "module" or "module:object"
    distribution: str  # the installed distribution that declares it
    error: str  # "ExceptionClass: message"

    def describe(self) -> str:
        return (f"plugin {self.name!r} ({self.value}, from the distribution {self.distribution}) failed to load: "
                f"{self.error}")


_broken: dict[str, BrokenPlugin] = {}


def broken_plugins() -> dict[str, BrokenPlugin]:
    """The entry points that failed to load, by name (after backends were first looked up)."""
    plugin_manager()
    with _lock:
        return dict(_broken)


def _load_entry_points(pm: pluggy.PluginManager) -> dict[str, BrokenPlugin]:
    """Register every ``parallax`` entry point that loads; the others are returned, not raised."""
    broken: dict[str, BrokenPlugin] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name) or ep.name in broken:
            continue
        try:
            pm.load_setuptools_entrypoints(GROUP, name=ep.name)
        except Exception as e:  # an import error, a bad hook implementation...: that plugin only
            dist = getattr(ep, "dist", None)
            where = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "unknown"
            broken[ep.name] = BrokenPlugin(ep.name, ep.value, where, f"{type(e).__name__}: {e}")
            _log.debug("parallax plugin %r failed to load", ep.name, exc_info=True)
    return broken


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
            _broken.clear()
            _broken.update(_load_entry_points(pm))
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
        pass
    broken = broken_plugins()
    if name in broken:
        raise ValueError(f"backend {name!r} is not available: {broken[name].describe()}")
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    failed = "".join(f"; {b.describe()}" for b in broken.values())
    raise ValueError(f"unknown backend {name!r}{hint}; known backends: {', '.join(sorted(known))}{failed}")


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
