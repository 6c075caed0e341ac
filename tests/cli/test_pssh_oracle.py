"""Debian's ``pssh`` (parallel-ssh/-scp/-slurp) as the oracle of what pssh-compatible output is.

The same flags go to both programs against the same hosts; status lines
are compared with the clock and the completion order taken out.  Where
parallax deliberately says more (an SSH failure's reason instead of
``Exited with error code 255``) only the exit status is compared.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from cli_helpers import clean_env, cli, lab_flags

STAMP = re.compile(r"^\[\d+\] \d\d:\d\d:\d\d ", re.MULTILINE)


def oracle(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/run installs Debian's pssh)")
        pytest.skip(f"{name} is not installed (apt-get install pssh)")
    return exe


def pssh(name: str, *args: str) -> tuple[int, str]:
    proc = subprocess.run([oracle(name), *args], check=False, capture_output=True, text=True, timeout=60,
                          env=clean_env(), stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout


def blocks(out: str) -> list[str]:
    """Per-host blocks (status line plus what follows it), clock and number removed, sorted."""
    parts = STAMP.split(out)
    assert parts[0] == "", out
    return sorted("[n] HH:MM:SS " + p for p in parts[1:])


@pytest.mark.parametrize("flags, cmd", [
    ([], "true"),
    (["-i"], "echo out; echo err >&2; exit 3"),
    (["--inline-stdout"], "echo out; echo err >&2; exit 2"),
    (["-i"], "printf 'no newline'"),
], ids=["plain", "inline-fail", "inline-stdout", "no-newline"])
def test_run_output_matches_pssh(lab, hosts_arg, flags, cmd):
    rc, out = pssh("parallel-ssh", *hosts_arg, *lab_flags(lab), *flags, cmd)
    ours = cli("run", *hosts_arg, *lab_flags(lab), *flags, cmd)
    assert ours.rc == rc
    if "no newline" in cmd:  # pssh glues the next status line to such output, and so does parallax
        assert ours.out.count("no newline[") == out.count("no newline[") == 3
        ours.out, out = (text.replace("no newline", "no newline\n") for text in (ours.out, out))
    assert blocks(ours.out) == blocks(out)


def test_exit_statuses_match_pssh(lab):
    dead = f"{lab.addresses[0]}:1"
    for args in ([lab.hosts[0], "exit 4"], [dead, "true"], [f"{lab.hosts[0]} {dead}", "exit 1"]):
        rc, _ = pssh("parallel-ssh", "-H", args[0], *lab_flags(lab), args[1])
        assert cli("run", "-H", args[0], *lab_flags(lab), args[1]).rc == rc, args
    rc, out = pssh("parallel-ssh", "-H", lab.hosts[0], *lab_flags(lab), "-t", "1", "sleep 10")
    assert rc == 3 and STAMP.sub("", out).startswith(f"[FAILURE] {lab.hosts[0]} Timed out")  # as test_run checks


def test_outdir_errdir_files_match_pssh(lab, hosts_arg, tmp_path):
    cmd = "echo o; echo e >&2"
    pssh("parallel-ssh", *hosts_arg, *lab_flags(lab), "-o", str(tmp_path / "po"), "-e", str(tmp_path / "pe"), cmd)
    cli("run", *hosts_arg, *lab_flags(lab), "-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), cmd)
    for theirs, ours in (("po", "o"), ("pe", "e")):
        names = sorted(os.listdir(tmp_path / theirs))
        assert names == sorted(os.listdir(tmp_path / ours)) == sorted(lab.hosts)
        for n in names:
            assert (tmp_path / theirs / n).read_bytes() == (tmp_path / ours / n).read_bytes()


def test_copy_and_slurp_match_pscp_and_pslurp(lab, hosts_arg, tmp_path):
    src = tmp_path / "f"
    src.write_text("data\n")
    remote = f"{lab.scratch_dir}/oracle-{tmp_path.name}"
    rc, out = pssh("parallel-scp", *hosts_arg, *lab_flags(lab), str(src), remote)
    ours = cli("copy", *hosts_arg, *lab_flags(lab), str(src), remote)
    assert ours.rc == rc == 0 and blocks(ours.out) == blocks(out)
    rc, out = pssh("parallel-slurp", *hosts_arg, *lab_flags(lab), "-L", str(tmp_path / "p"), remote, "got")
    ours = cli("slurp", *hosts_arg, *lab_flags(lab), "-L", str(tmp_path / "o"), remote, "got")
    assert ours.rc == rc == 0 and blocks(ours.out) == blocks(out)
    layout = [sorted(str(p.relative_to(tmp_path / d)) for p in (tmp_path / d).rglob("*")) for d in ("p", "o")]
    assert layout[0] == layout[1] and len(layout[0]) == 8  # <localdir>/<host:port>/got for each host
