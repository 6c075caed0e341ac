"""``parallax.gather``: identical outcomes folded (clubak -b), for call/run/copy/slurp results and errors."""

from __future__ import annotations

import pytest

import parallax
from parallax import nodeset


def opts(lab, **kw):
    return dict(ssh_key=lab.client_key, known_hosts=lab.known_hosts, default_user=lab.user, timeout=30, **kw)


def test_run_results_and_errors_fold(lab):
    dead = [f"{a}:1" for a in lab.addresses[:2]]
    results = parallax.run(lab.hosts + dead, "echo same; echo warn >&2", **opts(lab))
    groups = parallax.gather(results)
    assert [g.count for g in groups] == [4, 2]
    ok, bad = groups
    assert ok.nodes == nodeset.fold(lab.hosts) and ok.nodes.endswith(f"]:{lab.port}") and "[" in ok.nodes
    assert sorted(ok.hosts) == sorted(lab.hosts)
    assert (ok.rc, ok.stdout, ok.stderr, ok.error, ok.message, ok.ok) == (0, b"same\n", b"warn\n", None, None, True)
    assert bad.nodes == nodeset.fold(dead) and sorted(bad.hosts) == sorted(dead)
    assert bad.error == "ConnectionFailed" and not bad.ok
    assert "<host>" in bad.message and "Connection refused" in bad.message  # each host's own name stands aside
    assert not any(a in bad.message for a in lab.addresses[:2])


def test_call_command_failures_fold_by_status_and_order_by_size_then_name(lab):
    cmd = f'set -- $SSH_CONNECTION; if [ "$3" = {lab.addresses[0]} ]; then exit 3; fi; echo ok'
    groups = parallax.gather(parallax.call(lab.hosts, cmd, **opts(lab)))
    assert [(g.count, g.error, g.rc) for g in groups] == [(3, None, 0), (1, "CommandFailed", 3)]
    assert groups[1].hosts == (lab.hosts[0],) and groups[1].message == "Exited with error code 3"
    two = parallax.gather(parallax.call(lab.hosts[:2], 'set -- $SSH_CONNECTION; echo "$3"', **opts(lab)))
    assert [g.count for g in two] == [1, 1]
    assert [g.nodes for g in two] == sorted(g.nodes for g in two)  # same size: by name
    assert {g.stdout for g in two} == {f"{a}\n".encode() for a in lab.addresses[:2]}


def test_copy_and_slurp_results_fold(lab, tmp_path):
    src = tmp_path / "f"
    src.write_text("x\n")
    remote = f"{lab.scratch_dir}/gather-{tmp_path.name}"
    copied = parallax.gather(parallax.copy(lab.hosts, str(src), remote, **opts(lab)))
    assert len(copied) == 1 and copied[0].count == 4 and copied[0].ok
    slurped = parallax.gather(parallax.slurp(lab.hosts, remote, "f", **opts(lab, localdir=str(tmp_path / "in"))))
    assert len(slurped) == 1 and slurped[0].count == 4 and slurped[0].ok  # per-host paths differ, outcome alike
    for host in lab.hosts:
        assert (tmp_path / "in" / host / "f").read_text() == "x\n"


def test_gather_rejects_what_is_not_a_result_dict():
    with pytest.raises(TypeError, match="dict"):
        parallax.gather([1, 2])
    with pytest.raises(TypeError, match="'h1'"):
        parallax.gather({"h1": "not a result"})
    assert parallax.gather({}) == []
