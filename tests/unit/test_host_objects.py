"""Per-host settings (parallax.Host) and the result-key rule for tuple and Host entries (issue #10)."""

from __future__ import annotations

import pytest

import parallax
from parallax import Host
from parallax.backends.mock import MockBackend
from parallax.hosts import parse_hosts


def test_tuple_keys_stay_bare_when_unique_as_in_1_0():
    assert [s.key for s in parse_hosts([("web1", 22, "root"), ("web2",), ("web3", 2222)])] == ["web1", "web2", "web3"]


def test_tuples_that_differ_only_by_user_or_port_get_distinct_keys():
    specs = parse_hosts([("web1", 22, "root"), ("web1", 22, "admin"), ("web1", 2222), ("web2", 22, "root")])
    assert [s.key for s in specs] == ["root@web1:22", "admin@web1:22", "web1:2222", "web2"]
    v6 = parse_hosts([("::1", 22), ("::1", 2222)])
    assert [s.key for s in v6] == ["[::1]:22", "[::1]:2222"]


def test_a_true_duplicate_is_still_refused():
    with pytest.raises(ValueError, match="duplicate host key 'root@web1:22'"):
        parse_hosts([("web1", 22, "root"), ("web1", 22, "root")])
    with pytest.raises(ValueError, match="duplicate host key 'web1'"):
        parse_hosts(["web1", "web1"])


def test_host_objects_carry_their_own_settings_ahead_of_the_call():
    backend = MockBackend()
    hosts = [Host("web1", user="deploy", port=2222, ssh_key="/keys/deploy", ssh_options=["ProxyJump=bastion"]),
             Host("web2"), Host("web3", key="third")]
    res = parallax.run(hosts, "true", backend=backend, default_user="ops", ssh_key="/keys/ops",
                       ssh_options=["ProxyJump=other", "Compression=yes"])
    assert list(res) == ["web1", "web2", "third"]
    t1, t2 = backend.hosts.targets["web1"], backend.hosts.targets["web2"]
    assert (t1.host, t1.user, t1.port, t1.ssh_key) == ("web1", "deploy", 2222, "/keys/deploy")
    assert t1.option("ProxyJump") == "bastion"  # the host's own option wins (first value)
    assert (t2.user, t2.ssh_key, t2.option("ProxyJump")) == ("ops", "/keys/ops", "other")
    assert backend.hosts.targets["third"].host == "web3"


def test_host_objects_with_the_same_name_get_distinct_keys():
    specs = parse_hosts([Host("db", user="a"), Host("db", user="b")])
    assert [s.key for s in specs] == ["a@db", "b@db"]


@pytest.mark.parametrize(("host", "culprit"), [
    (Host("-oProxyCommand=x"), "-oProxyCommand=x"),
    (Host("a;b"), "a;b"),
    (Host("web[1-3]"), "web[1-3]"),
    (Host("web1", port=0), "web1"),
    (Host("web1", user="x y"), "web1"),
    (Host("web1", ssh_options=["bad"]), "web1"),
    (Host("web1", ssh_options="Port=2"), "web1"),
])
def test_bad_host_objects_are_refused_naming_the_host(host, culprit):
    with pytest.raises(ValueError) as info:
        parse_hosts([host])
    assert culprit in str(info.value)
