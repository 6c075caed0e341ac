"""The shared in-process helpers and the planning caches (parallax.ssh.targets, hostconfig, asyncssh_options).

Caches must never change a result: SendEnv reads the environment as it is at
each call, and ``connect_kwargs`` hands every caller its own dict.
"""

from __future__ import annotations

import pytest

from parallax.errors import AuthenticationFailed, BadInput, UnsupportedOption
from parallax.jobs import Target
from parallax.ssh.known_hosts_cache import KnownHostsCache
from parallax.ssh.targets import TargetConfigs, environment, identity_paths


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config"
    path.write_text("Host env*\n  SendEnv PX_T_* LANG\n  SetEnv PX_SET=1\n"
                    "Host fast\n  Ciphers aes128-ctr\n"
                    "Host nothing\n  Ciphers no-such-cipher\n")
    return str(path)


def target(config, host, **kw):
    return Target(key=host, host=host, ssh_config=config, **kw)


def test_send_env_follows_the_environment_at_each_call(config, monkeypatch):
    configs = TargetConfigs()
    hc = configs.resolve(target(config, "env1"))
    monkeypatch.setenv("PX_T_B", "b")
    monkeypatch.setenv("PX_T_A", "a")
    monkeypatch.setenv("PX_OTHER", "x")
    first = hc.environment()
    assert {k: v for k, v in first.items() if k.startswith("PX_")} == {"PX_T_B": "b", "PX_T_A": "a", "PX_SET": "1"}
    monkeypatch.setenv("PX_T_A", "changed")
    monkeypatch.delenv("PX_T_B")
    monkeypatch.setenv("PX_T_C", "new")
    again = hc.environment()
    assert {k: v for k, v in again.items() if k.startswith("PX_")} == {"PX_T_A": "changed", "PX_T_C": "new",
                                                                        "PX_SET": "1"}
    assert hc.environment({"PX_T_Z": "z", "LANGUAGE": "no", "LANG": "C"}) == {"PX_T_Z": "z", "LANG": "C",
                                                                              "PX_SET": "1"}


def test_without_send_env_only_set_env_and_the_calls_env(config):
    t = target(config, "plain", env=(("A", "1"),))
    assert environment(TargetConfigs().resolve(t), t) == {"A": "1"}


def test_connect_kwargs_gives_each_caller_its_own_arguments(config):
    from parallax.backends.asyncssh_options import connect_kwargs

    configs = TargetConfigs()
    fast, other = configs.resolve(target(config, "fast")), configs.resolve(target(config, "other"))
    first = connect_kwargs(fast)
    assert first["encryption_algs"] == ["aes128-ctr"]
    first["encryption_algs"].append("tampered")
    first["server_host_key_algs"] = "x"
    assert connect_kwargs(fast)["encryption_algs"] == ["aes128-ctr"]
    assert "server_host_key_algs" not in connect_kwargs(fast)
    assert connect_kwargs(other)["encryption_algs"] != ["aes128-ctr"]


def test_check_in_process_refuses_raw_arguments_and_what_check_rejects(config):
    from parallax.backends.asyncssh_options import connect_kwargs

    configs = TargetConfigs()
    with pytest.raises(UnsupportedOption, match="ssh_extra.*mine backend"):
        configs.check_in_process(target(config, "h", ssh_extra=("-v",)), "mine")
    with pytest.raises(BadInput, match="Ciphers") as info:
        configs.check_in_process(target(config, "nothing"), "mine", connect_kwargs)
    assert info.value.host == "nothing"
    assert configs.check_in_process(target(config, "fast"), "mine", connect_kwargs).hostname == "fast"


def test_identity_paths_names_a_missing_explicit_key(config, tmp_path):
    key = tmp_path / "id_test"
    key.write_text("not read here")
    t = target(config, "h", ssh_key=str(key))
    assert identity_paths(TargetConfigs().resolve(t), t) == [str(key)]
    missing = target(config, "h", ssh_key=str(tmp_path / "gone"))
    with pytest.raises(AuthenticationFailed, match="identity file .*gone not found"):
        identity_paths(TargetConfigs().resolve(missing), missing)


def test_known_hosts_for_a_host(config, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("h ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    cache, configs = KnownHostsCache(), TargetConfigs()
    t = target(config, "h", known_hosts=str(known))
    assert cache.for_host(t, configs.resolve(t)).known_types("h") == ("ssh-ed25519",)
    off = target(config, "h", known_hosts=str(known), host_key_policy="off")
    assert cache.for_host(off, configs.resolve(off)) is None
    bad = target(config, "h", ssh_options=(("RevokedHostKeys", str(tmp_path / "nope")),))
    with pytest.raises(BadInput, match="RevokedHostKeys"):
        cache.for_host(bad, configs.resolve(bad))
