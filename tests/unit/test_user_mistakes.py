"""What a new user gets wrong, and the clear answer they get (issue #10, "Fix on the way")."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import traceback
import warnings

import pytest

import parallax
from parallax.backends.mock import MockBackend, MockHosts, MockResponse


def test_sync_api_errors_are_not_chained_to_a_spurious_runtime_error():
    with pytest.raises(ValueError) as info:
        parallax.call(["-oProxyCommand=x"], "true", backend=MockBackend(MockHosts()))
    chain = "".join(traceback.format_exception(info.value))
    assert "no running event loop" not in chain
    assert info.value.__context__ is None


def test_misspelt_option_attribute_warns_with_a_suggestion():
    opts = parallax.Options()
    with pytest.warns(UserWarning, match=r"no option 'timout' \(did you mean 'timeout'\?\)"):
        opts.timout = 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("timeout", "limit", "ssh_options", "recursive", "inline", "outdir", "default_user"):
            setattr(opts, name, getattr(opts, name))  # every 1.0 attribute is silent


@pytest.mark.parametrize(("name", "suggestion"), [("user", "default_user"), ("timout", "timeout"),
                                                  ("parallelism", "limit")])
def test_unknown_keyword_names_the_option_to_use(name, suggestion):
    with pytest.raises(TypeError, match=f"'{name}'.*did you mean '{suggestion}'"):
        parallax.call(["h"], "true", backend=MockBackend(MockHosts()), **{name: 1})


def test_unknown_backend_suggests_the_close_name():
    with pytest.raises(ValueError, match=r"unknown backend 'paramik' \(did you mean 'paramiko'\?\)"):
        parallax.call(["h"], "true", backend="paramik")


@pytest.mark.parametrize("module", ["paramiko", "asyncssh"])
def test_backend_without_its_extra_says_what_to_install(module, tmp_path):
    # A child interpreter where the library cannot be imported.
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        f"    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {module!r} or name.startswith({module!r} + '.'):\n"
        f"            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n")
    code = ("import parallax\n"
            "try:\n"
            f"    parallax.call(['h'], 'true', backend={module!r})\n"
            "except ValueError as e:\n"
            "    print('ValueError:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert f"pip install 'parallax[{module}]'" in out.stdout, out.stdout + out.stderr
    assert "ModuleNotFoundError" not in out.stderr
    assert importlib.util.find_spec(module) is not None  # this interpreter still has it


def _session(**kw):
    return parallax.Session(["a", "b", "c"], backend=MockBackend(MockHosts(default=MockResponse(stdout=b"ok"))), **kw)


@pytest.mark.parametrize("option", ["backend", "default_user", "ssh_key", "port", "ssh_options", "password",
                                    "host_key_policy", "env", "persistent_shell"])
def test_session_refuses_per_call_connection_options(option):
    value = {"backend": "openssh", "default_user": "x", "ssh_key": "/k", "port": 2, "ssh_options": ["A=b"],
             "password": "p", "host_key_policy": "off", "env": {"A": "1"}, "persistent_shell": True}[option]
    with _session() as s:
        with pytest.raises(ValueError, match=f"option {option} is fixed when the session is created"):
            s.run("true", **{option: value})
        assert set(s.run("true", timeout=5)) == {"a", "b", "c"}  # per-call behaviour options are fine


def test_session_call_on_a_subset_of_its_hosts():
    with _session() as s:
        assert list(s.run("true", hosts=["c", "a"])) == ["c", "a"]
        with pytest.raises(ValueError, match="'zz' is not one of this session's hosts"):
            s.run("true", hosts=["zz"])


def test_backend_instance_is_used_as_given():
    world = MockHosts(default=MockResponse(stdout=b"hi\n"))
    backend = MockBackend(world)
    res = parallax.run(["a", "b"], "echo hi", backend=backend)
    assert [tuple(r) for r in res.values()] == [(0, b"hi\n", b"")] * 2
    assert world.calls == [("a", "run", "echo hi"), ("b", "run", "echo hi")]
    keyword = MockBackend(responses={"a": MockResponse(rc=3)})
    assert parallax.run(["a"], "x", backend=keyword)["a"].rc == 3
    with pytest.raises(ValueError, match="backend name or a Backend instance"):
        parallax.run(["a"], "x", backend=object())


def test_mock_option_still_works_but_is_deprecated():
    with pytest.warns(DeprecationWarning, match="backend=MockBackend"):
        res = parallax.run(["a"], "x", backend="mock", mock=MockHosts(default=MockResponse(stdout=b"ok")))
    assert res["a"].stdout == b"ok"
