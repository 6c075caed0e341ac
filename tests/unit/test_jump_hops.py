"""What a ProxyJump hop inherits (parallax.ssh.jump): ssh -J's rule, the same for every in-process backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallax.errors import BadInput
from parallax.jobs import Target
from parallax.ssh.config import ConfigResolver, LocalContext
from parallax.ssh.jump import hop_target, jump_targets, parse_jump
from parallax.ssh.resolved import Confs, Resolved


def _target(config: Path) -> Target:
    return Target(key="app", host="app", port=2200, user="deploy", ssh_key="/keys/caller",
                  ssh_options=(("Compression", "yes"), ("HostKeyAlias", "appkey")), connect_timeout=7.0,
                  password="s3cret-pw", passphrase="s3cret-pp", host_key_policy="accept-new", known_hosts="/kh/caller",
                  ssh_config=str(config), env=(("A", "1"),))


def test_a_hop_gets_the_config_file_timeout_and_secrets_only(tmp_path: Path) -> None:
    target = _target(tmp_path / "config")
    hop = hop_target(target, parse_jump("ju@first:2201,second"))
    assert (hop.host, hop.user, hop.port) == ("second", None, None)
    assert hop.ssh_options == (("ProxyJump", "ju@first:2201"),)  # the earlier hops, as ssh -J passes them
    assert (hop.ssh_config, hop.connect_timeout, hop.password, hop.passphrase) == (
        target.ssh_config, 7.0, "s3cret-pw", "s3cret-pp")
    # the caller's -i, -o, policy, known_hosts and env are the target's alone (man ssh, -J)
    assert (hop.ssh_key, hop.host_key_policy, hop.known_hosts, hop.env) == (None, None, None, ())
    assert "s3cret" not in repr(hop)


def test_jump_targets_follow_the_first_hops_own_proxyjump(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host app\n  ProxyJump second\nHost second\n  ProxyJump outer\n  IdentityFile /k/second\n"
                      "Host outer\n  User o\n")
    ctx = LocalContext("me", str(tmp_path), 1000, "local", str(tmp_path))
    resolver = ConfigResolver(str(config), context=ctx, environ={})
    target = _target(config)
    hc = resolver.resolve("app")
    hops = jump_targets(target, hc, resolver)
    assert [h.host for h in hops] == ["outer", "second"]
    assert hops[1].ssh_options == () and hops[1].ssh_key is None  # second's own IdentityFile comes from the config
    assert resolver.resolve(hops[1].host).identity_files == ("/k/second",)


def test_a_loop_is_bad_input_naming_the_host(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host *\n  ProxyJump bastion\n")
    confs = Confs(Resolved.of)
    with pytest.raises(BadInput, match="loops"):
        confs.hops(Target(key="app", host="app", ssh_config=str(config)))
