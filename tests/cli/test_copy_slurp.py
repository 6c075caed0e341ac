"""``parallax copy`` (pscp) and ``parallax slurp`` (pslurp) with the installed command against the test sshd.

The lab's hosts share this machine's file system, so every host writes the
same remote path: each test uses its own directory under the lab's scratch
directory, and slurp tells the hosts apart by what ``$SSH_CONNECTION`` says.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from cli_helpers import cli, lab_flags


@pytest.fixture
def remote_dir(lab):
    path = os.path.join(lab.scratch_dir, f"cli-{uuid.uuid4().hex[:8]}")
    r = cli("run", "-H", lab.hosts[0], *lab_flags(lab), f"mkdir -p {path}")
    assert r.rc == 0, r.out
    return path


def test_copy_one_file(lab, hosts_arg, remote_dir, tmp_path):
    src = tmp_path / "f.txt"
    src.write_text("hello\n")
    r = cli("copy", *hosts_arg, *lab_flags(lab), str(src), f"{remote_dir}/g.txt")
    assert r.rc == 0, r.out + r.err
    assert sorted(m.group(4) for m in r.statuses()) == sorted(lab.hosts)
    assert {m.group(3) for m in r.statuses()} == {"SUCCESS"}
    with open(f"{remote_dir}/g.txt") as f:
        assert f.read() == "hello\n"


def test_copy_several_files_into_a_directory(lab, hosts_arg, remote_dir, tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).write_text(name * 3)
    r = cli("copy", *hosts_arg, *lab_flags(lab), str(tmp_path / "a"), str(tmp_path / "b"), remote_dir + "/")
    assert r.rc == 0, r.out + r.err
    assert len(r.statuses()) == 4  # one line per host, not per file
    assert sorted(os.listdir(remote_dir)) == ["a", "b"]
    assert Path(remote_dir, "b").read_text() == "bbb"


def test_copy_directory_needs_r(lab, hosts_arg, remote_dir, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "leaf").write_text("leaf\n")
    r = cli("copy", *hosts_arg, *lab_flags(lab), str(tree), f"{remote_dir}/t1")
    assert r.rc != 0 and not os.path.exists(f"{remote_dir}/t1")
    r = cli("copy", *hosts_arg, *lab_flags(lab), "-r", str(tree), f"{remote_dir}/t2")
    assert r.rc == 0, r.out + r.err
    assert Path(remote_dir, "t2", "sub", "leaf").read_text() == "leaf\n"


def test_copy_failure_on_the_remote_side_is_exit_5(lab, hosts_arg, tmp_path):
    src = tmp_path / "f"
    src.write_text("x")
    r = cli("copy", *hosts_arg, *lab_flags(lab), str(src), "/nonexistent/dir/f")
    assert r.rc == 5, r.out
    assert {m.group(3) for m in r.statuses()} == {"FAILURE"}
    assert all("Transfer with" in m.group(5) for m in r.statuses())


def test_copy_json(lab, remote_dir, tmp_path):
    src = tmp_path / "f"
    src.write_text("x")
    r = cli("copy", "-H", lab.hosts[0], *lab_flags(lab), "--json", str(src), f"{remote_dir}/j")
    assert r.rc == 0, r.out + r.err
    (rec,) = map(json.loads, r.out.splitlines())
    assert rec["host"] == lab.hosts[0] and rec["rc"] == 0 and rec["error"] is None


def test_copy_usage_errors(lab):
    r = cli("copy", "-H", lab.hosts[0], "only-one-path")
    assert r.rc == 2 and len(r.err.splitlines()) == 1 and "REMOTE" in r.err


def test_slurp_file_into_localdir_per_host(lab, hosts_arg, remote_dir, tmp_path):
    # Each host writes its own address into a file named after it, then reads it back by that name.
    r = cli("run", *hosts_arg, *lab_flags(lab), f'set -- $SSH_CONNECTION; echo "$3" > {remote_dir}/"$3"')
    assert r.rc == 0, r.out
    # Every host returns the file for 127.0.0.2 (shared file system): check placement and content.
    local = tmp_path / "got"
    r = cli("slurp", *hosts_arg, *lab_flags(lab), "-L", str(local), f"{remote_dir}/{lab.addresses[0]}", "mine.txt")
    assert r.rc == 0, r.out + r.err
    assert sorted(os.listdir(local)) == sorted(lab.hosts)
    for host in lab.hosts:
        assert (local / host / "mine.txt").read_text() == f"{lab.addresses[0]}\n"


def test_slurp_directory_with_r_and_missing_file(lab, hosts_arg, remote_dir, tmp_path):
    os.makedirs(f"{remote_dir}/tree/sub")
    with open(f"{remote_dir}/tree/sub/leaf", "w") as f:
        f.write("leaf\n")
    os.chmod(remote_dir, 0o777)
    local = tmp_path / "got"
    r = cli("slurp", *hosts_arg, *lab_flags(lab), "-L", str(local), "-r", f"{remote_dir}/tree", "copy")
    assert r.rc == 0, r.out + r.err
    for host in lab.hosts:
        assert (local / host / "copy" / "sub" / "leaf").read_text() == "leaf\n"
    r = cli("slurp", *hosts_arg, *lab_flags(lab), "-L", str(local), f"{remote_dir}/absent", "x")
    assert r.rc == 5, r.out
    assert all("No such file" in m.group(5) for m in r.statuses())


def test_slurp_defaults_to_the_current_directory(lab, remote_dir, tmp_path):
    r = cli("run", "-H", lab.hosts[0], *lab_flags(lab), f"echo hi > {remote_dir}/hi")
    assert r.rc == 0
    r = cli("slurp", "-H", lab.hosts[0], *lab_flags(lab), f"{remote_dir}/hi", "hi.txt", cwd=str(tmp_path))
    assert r.rc == 0, r.out + r.err
    assert (tmp_path / lab.hosts[0] / "hi.txt").read_text() == "hi\n"


@pytest.mark.parametrize("args", [["only-remote"], ["a", "b", "c"], ["/abs/remote", "/absolute/local"]])
def test_slurp_usage_errors(lab, args):
    r = cli("slurp", "-H", lab.hosts[0], *lab_flags(lab), *args)
    assert r.rc == 2, r.out + r.err
    assert len(r.err.splitlines()) == 1 and "Traceback" not in r.err
