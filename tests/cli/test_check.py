"""``parallax check``: the pre-flight (connect, host key, authenticate; nothing runs) from the command line."""

from __future__ import annotations

import json

from cli_helpers import cli, lab_flags


def test_check_reports_the_method_and_connect_time(lab, hosts_arg):
    r = cli("check", *hosts_arg, *lab_flags(lab))
    assert r.rc == 0, r.out + r.err
    found = r.statuses()
    assert sorted(m.group(4) for m in found) == sorted(lab.hosts)
    for m in found:
        assert m.group(3) == "SUCCESS"
        method, word, seconds, unit = m.group(5).split()
        assert (method, word, unit) == ("publickey", "in", "s") and float(seconds) > 0


def test_check_failures_are_exit_4(lab, tmp_path):
    dead = f"{lab.addresses[0]}:1"
    r = cli("check", "-H", f"{lab.hosts[0]} {dead}", *lab_flags(lab), "--json")
    assert r.rc == 4
    records = {rec["host"]: rec for rec in map(json.loads, r.out.splitlines())}
    assert records[lab.hosts[0]]["auth"] == "publickey" and records[lab.hosts[0]]["connect_time"] > 0
    assert records[dead]["error"] == "ConnectionFailed"
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    strict = [f if not f.startswith("UserKnownHostsFile=") else f"UserKnownHostsFile={empty}" for f in lab_flags(lab)]
    r = cli("check", "-H", lab.hosts[0], *strict)
    assert r.rc == 4 and "Host key" in r.out, r.out
    wrong = [f if not f.startswith("IdentityFile=") else f"IdentityFile={lab.wrong_key}" for f in lab_flags(lab)]
    r = cli("check", "-H", lab.hosts[0], *wrong, "--backend", "asyncssh")
    assert r.rc == 4 and "Authentication failed" in r.out, r.out


def test_check_takes_no_command(lab):
    r = cli("check", "-H", lab.hosts[0], *lab_flags(lab), "uptime")
    assert r.rc == 2 and "uptime" in r.err and len(r.err.splitlines()) == 1
