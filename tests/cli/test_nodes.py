"""``parallax nodes`` and :mod:`parallax.nodeset` against ClusterShell's own ``cluset`` on the same inputs."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cli_helpers import cli

from parallax import nodeset

CASES = [
    ["web[01-20]"],
    ["h[1-2],h[5-6]"],
    ["h[1-10/2]"],
    ["h[1-3]!h2"],
    ["h[1-3]&h[2-5]"],
    ["r[1-2]n[1-3]"],
    ["a[1-3]", "b1", "a2"],
    ["node[001-003,010]", "node7", "h[1-3]^h[2-5]"],
    ["127.0.0.[2-5]:2222"],
    ["single"],
    ["h[1-2]!h[1-2]"],
]
IDS = ["range", "union", "step", "exclude", "intersect", "2d", "args", "pad-xor", "address", "single", "empty"]


def cluset(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("cluset")
    assert exe, "ClusterShell's cluset is installed with the clustershell dependency"
    return subprocess.run([exe, *args], check=False, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("sets", CASES, ids=IDS)
@pytest.mark.parametrize("mode", ["-e", "-f", "-c"])
def test_nodes_prints_what_cluset_prints(sets, mode):
    ours, theirs = cli("nodes", mode, *sets), cluset(mode, *sets)
    assert theirs.returncode == 0, theirs.stderr
    assert (ours.rc, ours.out) == (0, theirs.stdout)


@pytest.mark.parametrize("sets", CASES, ids=IDS)
def test_library_expansion_matches_cluset(sets):
    names = [name for s in sets for name in nodeset.expand(s, allow_empty=True)]
    assert " ".join(nodeset.expand(nodeset.fold(names))) + "\n" == cluset("-e", *sets).stdout
    assert nodeset.fold(names) + "\n" == cluset("-f", *sets).stdout


@pytest.mark.parametrize("bad", ["h[1-", "h[3-1]", "h]1["])
def test_bad_node_set_is_one_line_and_exit_2(bad):
    assert cluset("-e", bad).returncode != 0  # ClusterShell refuses it too
    r = cli("nodes", "-e", bad)
    assert r.rc == 2 and r.out == ""
    assert len(r.err.splitlines()) == 1 and bad in r.err and "Traceback" not in r.err


def test_nodes_needs_a_mode_and_a_node_set():
    for args in (["h1"], ["-e"], ["-e", "-f", "h1"]):
        r = cli("nodes", *args)
        assert r.rc == 2 and len(r.err.splitlines()) == 1, (args, r.err)
