"""Tests for parallax.planner: targets, jobs, slurp paths and up-front rejection."""

from __future__ import annotations

import os

import pytest

from parallax.jobs import CommandJob, GetJob, PutJob, Target
from parallax.options import Options, resolve
from parallax.planner import (
    is_local,
    plan_commands,
    plan_get,
    plan_put,
    plan_targets,
    slurp_path,
)

ENV: dict[str, str] = {}


def settings(**kw):
    return resolve(Options(**kw), ENV)


def test_targets_take_defaults_when_entry_has_none():
    s = settings(default_user="deploy", port=2200)
    (t,) = plan_targets(["web1"], s, environ=ENV)
    assert (t.key, t.host, t.user, t.port) == ("web1", "web1", "deploy", 2200)


def test_entry_user_and_port_beat_defaults():
    s = settings(default_user="deploy", port=2200)
    a, b, c = plan_targets(["root@web1:2222", ("web2", 23, "admin"), "web3:24"], s, environ=ENV)
    assert (a.key, a.host, a.user, a.port) == ("root@web1:2222", "web1", "root", 2222)
    assert (b.key, b.host, b.user, b.port) == ("web2", "web2", "admin", 23)
    assert (c.key, c.user, c.port) == ("web3:24", "deploy", 24)


def test_targets_carry_resolved_settings():
    s = resolve(Options(ssh_key="/k/id", ssh_options=["Compression=yes"], connect_timeout=3,
                        host_key_policy="accept-new", known_hosts="/k/known", env={"A": "1"},
                        ssh_extra=["-4"]), {"PARALLAX_OPTIONS": "Port=2"})
    (t,) = plan_targets("h", s, environ=ENV)
    assert t.ssh_key == "/k/id"
    assert t.ssh_options == (("Compression", "yes"), ("Port", "2"))
    assert t.option("compression") == "yes"
    assert t.connect_timeout == 3.0
    assert t.host_key_policy == "accept-new"
    assert t.known_hosts == "/k/known"
    assert t.env == (("A", "1"),)
    assert t.ssh_extra == ("-4",)


def test_targets_from_parallax_hosts(tmp_path):
    f = tmp_path / "hosts"
    f.write_text("a\nroot@b:2200\n")
    targets = plan_targets(None, settings(default_user="u"), environ={"PARALLAX_HOSTS": str(f)})
    assert [(t.key, t.user, t.port) for t in targets] == [("a", "u", None), ("root@b:2200", "root", 2200)]


def test_duplicate_keys_rejected():
    with pytest.raises(ValueError, match="duplicate host key 'web1'"):
        plan_targets(["web1", ("web1",)], settings(), environ=ENV)


def test_target_label():
    assert Target(key="k", host="h").label == "h"
    assert Target(key="k", host="h", user="u", port=2).label == "u@h:2"
    assert Target(key="k", host="::1", port=2).label == "[::1]:2"


def test_make_target_is_immutable():
    (t,) = plan_targets("h", settings(), environ=ENV)
    with pytest.raises(AttributeError):
        t.host = "other"  # type: ignore[misc]


# --- commands ---------------------------------------------------------------------


def test_plan_commands_one_job_per_target():
    s = settings()
    targets = plan_targets(["a", "b"], s, environ=ENV)
    jobs = plan_commands(targets, "uptime", s, check=True, stdin=b"in")
    assert [j.key for j in jobs] == ["a", "b"]
    assert all(isinstance(j, CommandJob) and j.command == "uptime" and j.check and j.stdin == b"in"
               and not j.local for j in jobs)
    assert plan_commands(targets, "x", s, check=False)[0].check is False


@pytest.mark.parametrize("command", ["", "   ", "\n\t"])
def test_empty_command_rejected(command):
    s = settings()
    with pytest.raises(ValueError, match="command is empty"):
        plan_commands(plan_targets("a", s, environ=ENV), command, s, check=True)


def test_command_must_be_text_without_nul():
    s = settings()
    targets = plan_targets("a", s, environ=ENV)
    with pytest.raises(ValueError, match="command must be a string"):
        plan_commands(targets, b"ls", s, check=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NUL"):
        plan_commands(targets, "ls\x00rm", s, check=True)


def test_local_shortcut_detection():
    s = settings()
    targets = plan_targets(["myhost", "MyHost.example", "me@myhost", "other@myhost", "myhost:22", "elsewhere"],
                           s, environ=ENV)
    jobs = plan_commands(targets, "true", s, check=True, local_names=["myhost", "myhost.example"], local_user="me")
    assert {j.key: j.local for j in jobs} == {
        "myhost": True,
        "MyHost.example": True,  # host names compare case-insensitively
        "me@myhost": True,  # the local user is still this machine
        "other@myhost": False,  # another user needs ssh
        "myhost:22": False,  # an explicit port needs ssh
        "elsewhere": False,
    }


def test_local_shortcut_respects_default_user_and_port():
    names, user = ["myhost"], "me"
    assert not is_local(plan_targets("myhost", settings(port=22), environ=ENV)[0], names, user)
    assert not is_local(plan_targets("myhost", settings(default_user="other"), environ=ENV)[0], names, user)
    assert is_local(plan_targets("myhost", settings(default_user="me"), environ=ENV)[0], names, user)


def test_local_shortcut_can_be_disabled():
    s = settings(local_shortcut=False)
    jobs = plan_commands(plan_targets("myhost", s, environ=ENV), "true", s, check=True, local_names=["myhost"])
    assert jobs[0].local is False


# --- copy ---------------------------------------------------------------------------


def test_plan_put():
    s = settings(recursive=True)
    jobs = plan_put(plan_targets(["a", "b"], s, environ=ENV), "/local/dir", "/remote/dir", s)
    assert all(isinstance(j, PutJob) for j in jobs)
    assert [(j.key, j.src, j.dst, j.recursive) for j in jobs] == [
        ("a", "/local/dir", "/remote/dir", True), ("b", "/local/dir", "/remote/dir", True)]


@pytest.mark.parametrize(("src", "dst", "match"), [("", "/d", "source is empty"), ("/s", "", "destination is empty"),
                                                   ("/s", "/d\x00x", "NUL")])
def test_plan_put_rejects(src, dst, match):
    s = settings()
    with pytest.raises(ValueError, match=match):
        plan_put(plan_targets("a", s, environ=ENV), src, dst, s)


# --- slurp --------------------------------------------------------------------------


def test_slurp_path_under_localdir(tmp_path):
    s = settings(localdir=str(tmp_path))
    jobs = plan_get(plan_targets(["web1", "root@web2:22"], s, environ=ENV), "/etc/hostname", "conf/hostname", s)
    assert all(isinstance(j, GetJob) for j in jobs)
    assert [j.dst for j in jobs] == [
        os.path.join(str(tmp_path), "web1", "conf/hostname"),
        os.path.join(str(tmp_path), "root@web2:22", "conf/hostname"),
    ]
    assert jobs[0].src == "/etc/hostname"


def test_slurp_path_defaults_to_current_directory():
    assert slurp_path(None, "h", "f") == os.path.join(os.curdir, "h", "f")
    s = settings()
    (job,) = plan_get(plan_targets("h", s, environ=ENV), "/x", "f", s)
    assert job.dst == os.path.join(os.curdir, "h", "f")


@pytest.mark.parametrize("dst", ["/abs/path", "", "..", "../escape", "a/../../escape", "a/../.."])
def test_slurp_dst_must_be_relative_inside(dst):
    s = settings()
    with pytest.raises(ValueError, match="slurp"):
        plan_get(plan_targets("h", s, environ=ENV), "/x", dst, s)


def test_slurp_dst_with_inner_dotdot_staying_inside_is_allowed():
    s = settings(localdir="/base")
    (job,) = plan_get(plan_targets("h", s, environ=ENV), "/x", "a/../b", s)
    assert job.dst == os.path.join("/base", "h", "a/../b")


def test_slurp_empty_source_rejected():
    s = settings()
    with pytest.raises(ValueError, match="source is empty"):
        plan_get(plan_targets("h", s, environ=ENV), "", "f", s)
