"""The typed backend contract: frozen ``BackendInfo`` metadata, factories called with a
``BackendSetup`` (never the caller's Settings), and the old class-attribute way still working."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import pytest

import parallax
from parallax import plugins
from parallax.backends.base import Backend, BackendInfo, BackendSetup, build
from parallax.backends.mock import MockBackend, MockHosts
from parallax.backends.openssh import OpenSSHBackend
from parallax.backends.persistent_shell import PersistentShellBackend
from parallax.options import Settings, resolve


class Answering(Backend):
    """Runs nothing: every command exits 0."""

    info = BackendInfo("answering", frozenset({"port"}), frozenset({"check"}))

    async def run(self, job: Any, sink: Any) -> int:
        return 0

    async def put(self, job: Any, sink: Any) -> None:
        return None

    async def get(self, job: Any, sink: Any) -> None:
        return None


class Legacy(Answering):
    """A subclass written before BackendInfo: metadata as class attributes."""

    name = "legacy"
    capabilities = frozenset({"stream"})


class LegacyChild(Legacy):
    supported_options = None


def test_info_is_frozen():
    info = Answering.info
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        OpenSSHBackend.info.capabilities = frozenset()  # type: ignore[misc]
    assert Answering.info.name == "answering"


def test_old_attribute_names_read_the_info_and_cannot_be_set():
    backend = Answering()
    assert (backend.name, backend.supported_options, backend.capabilities, backend.allows_local_shortcut) == (
        "answering", frozenset({"port"}), frozenset({"check"}), True)
    assert Answering.name == "answering"  # on the class too
    with pytest.raises(AttributeError, match=r"Answering\.name is read-only.*BackendInfo"):
        backend.name = "x"  # type: ignore[misc]
    assert backend.info.name == "answering"


def test_legacy_class_attributes_become_the_info():
    assert Legacy.info == BackendInfo("legacy", frozenset({"port"}), frozenset({"stream"}))
    assert LegacyChild.info == BackendInfo("legacy", None, frozenset({"stream"}))
    child = LegacyChild()
    assert (child.name, child.capabilities, child.supported_options) == ("legacy", frozenset({"stream"}), None)
    assert "name" not in Legacy.__dict__  # folded away: the read-only view answers
    with pytest.raises(AttributeError):
        child.capabilities = frozenset()  # type: ignore[misc]


def test_legacy_attributes_and_info_together_are_refused():
    with pytest.raises(TypeError, match=r"Both: set info = BackendInfo\(...\) or the old class attributes \['name'\]"):
        class Both(Answering):
            info = BackendInfo("both")
            name = "both"


def test_info_refuses_a_string_where_a_set_of_names_goes():
    with pytest.raises(TypeError, match=r"BackendInfo.capabilities of backend 'x' must be a set of names, "
                                        r"not 'stream'"):
        BackendInfo("x", None, "stream")  # type: ignore[arg-type]
    assert BackendInfo("x", {"Port"}).supported_options == frozenset({"port"})  # type: ignore[arg-type]


def test_persistent_shell_layer_shows_the_wrapped_info():
    assert PersistentShellBackend(Legacy()).info is Legacy.info
    with pytest.raises(ValueError, match="the answering backend cannot keep a remote shell open"):
        PersistentShellBackend(Answering())


class _Recorder:
    """A plugin whose factory records what the core hands it."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def factory(self, setup: Any) -> Backend:
        self.args.append(setup)
        return Answering()

    @parallax.hookimpl
    def parallax_backends(self) -> dict[str, Any]:
        return {"recorder": self.factory}


@pytest.fixture
def recorder():
    rec = _Recorder()
    plugins.register(rec)
    try:
        yield rec
    finally:
        plugins.unregister(rec)


def test_the_core_hands_factories_a_backend_setup_not_settings(recorder):
    res = parallax.run(["a", "b"], "true", backend="recorder", limit=7, local_shortcut=False)
    assert [r.rc for r in res.values()] == [0, 0]
    with parallax.Session(["a"], backend="recorder", limit=3, local_shortcut=False) as s:
        assert s.run("true")["a"].rc == 0
    from parallax.cluster.runner import make_backend

    make_backend(resolve(None, environ={}, backend="recorder", limit=5))
    assert recorder.args == [BackendSetup(limit=7), BackendSetup(limit=3), BackendSetup(limit=5)]
    assert not any(isinstance(a, Settings) for a in recorder.args)


def test_factories_without_an_argument_and_wrong_results():
    assert isinstance(build(Answering, BackendSetup()), Answering)  # a class with no __init__ argument
    with pytest.raises(TypeError, match=r"returned 'nope', not a parallax Backend"):
        build(lambda setup: "nope", BackendSetup())


def test_the_mock_option_still_works_and_warns():
    hosts = MockHosts()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = parallax.run(["a"], "true", backend="mock", mock=hosts, local_shortcut=False)
    assert res["a"].rc == 0 and hosts.calls == [("a", "run", "true")]
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert [str(w.message) for w in deprecations] == [
        "the mock= option is deprecated: pass backend=MockBackend(MockHosts(...))"]
    with pytest.raises(parallax.errors.BadInput, match=r'backend="mock" needs mock=MockHosts'):
        MockBackend(BackendSetup())  # the registered factory, without the option
