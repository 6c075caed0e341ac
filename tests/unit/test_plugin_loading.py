"""A plugin whose import fails does not break discovery (parallax.plugins loads entry points one by one).

Real entry points: a temporary ``*.dist-info`` directory on ``sys.path`` declares
two plugins in the ``parallax`` group, one importable and one whose module
raises ``ImportError``; the plugin manager is rebuilt from scratch around them.
"""

from __future__ import annotations

import importlib
import sys

import pytest

import parallax
from parallax import plugins
from parallax.backends.mock import MockBackend

GOOD = """
import parallax
from parallax.backends.mock import MockBackend

@parallax.hookimpl
def parallax_backends():
    return {"goodone": MockBackend}
"""
BROKEN = """
raise ImportError("No module named 'nosuchlib' (what the broken plugin needs)")
"""


@pytest.fixture
def fresh_plugins(tmp_path, monkeypatch):
    """An entry-point distribution with a good and a broken plugin; a plugin manager built anew."""
    (tmp_path / "px_good_plugin.py").write_text(GOOD)
    (tmp_path / "px_broken_plugin.py").write_text(BROKEN)
    info = tmp_path / "px_test_plugins-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: px-test-plugins\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text("[parallax]\ngoodone = px_good_plugin\nbrokenone = px_broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(plugins, "_pm", None)
    monkeypatch.setattr(plugins, "_backends", None)
    monkeypatch.setattr(plugins, "_broken", {})
    yield
    for name in ("px_good_plugin", "px_broken_plugin"):
        sys.modules.pop(name, None)


def test_other_backends_are_still_discovered(fresh_plugins):
    known = plugins.backends()
    assert {"openssh", "mock", "goodone"} <= set(known)
    assert plugins.backend_factory("goodone") is MockBackend
    broken = plugins.broken_plugins()
    assert list(broken) == ["brokenone"]
    assert broken["brokenone"].distribution == "px-test-plugins 1.2"
    assert "nosuchlib" in broken["brokenone"].error


def test_choosing_the_broken_plugins_backend_names_the_plugin_and_its_error(fresh_plugins):
    with pytest.raises(ValueError) as info:
        parallax.call(["h"], "true", backend="brokenone")
    text = str(info.value)
    assert "plugin 'brokenone'" in text and "px_broken_plugin" in text and "px-test-plugins 1.2" in text
    assert "ImportError: No module named 'nosuchlib'" in text


def test_an_unknown_backend_also_mentions_plugins_that_failed(fresh_plugins):
    with pytest.raises(ValueError, match=r"unknown backend 'nosuch'.*known backends: .*goodone.*brokenone"):
        plugins.backend_factory("nosuch")
