"""The live progress line in a real terminal (tmux), and its absence everywhere else.

A private tmux server runs the installed ``parallax`` in a 200x50 pane
(:class:`cli_helpers.Pane`); ``capture-pane`` shows what a user would see
while the run is going and after it ended.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time

import pytest
from cli_helpers import STATUS, Pane, exit_file, lab_flags, parallax_exe, wait_exit

LIVE = re.compile(r"parallax: \d+(/\d+)? done, \d+ failed, \d+ running, \d+:\d\d elapsed")


@pytest.fixture
def pane(tmp_path):
    p = Pane(tmp_path)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def big_lab(tmp_path_factory):
    """100 hosts (127.0.0.2 ... 127.0.0.101) and a hosts file naming them."""
    from parallax.testing.sshd import SSHLab, can_start_sshd

    ok, why = can_start_sshd()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    lab = SSHLab(hosts=100).start()
    hosts = tmp_path_factory.mktemp("hosts") / "hosts"
    hosts.write_text("\n".join(lab.hosts) + "\n")
    try:
        yield lab, str(hosts)
    finally:
        lab.stop()


def command(lab, hosts_file: str, *extra: str, cmd: str = "sleep 0.5") -> str:
    return shlex.join([parallax_exe(), "run", "-h", hosts_file, *lab_flags(lab), "-p", "20", *extra, cmd])


def test_live_line_while_running_and_gone_after(pane, big_lab):
    lab, hosts = big_lab
    done = pane.start(command(lab, hosts, "--progress"))
    live = pane.wait_for(lambda lines: any(LIVE.search(line) for line in lines))
    (line,) = [line for line in live if LIVE.search(line)]
    assert line == live[max(i for i, text in enumerate(live) if text.strip())]  # the last line drawn
    assert int(re.search(r"(\d+) running", line).group(1)) <= 20
    assert re.search(r"\d+/100 done", line), line  # the total is known: done/total (ETA once some are done)
    assert wait_exit(done) == 0
    after = pane.wait_for(lambda lines: any(STATUS.match(x) and x.startswith("[100] ") for x in lines))
    assert not any("parallax:" in x for x in after), after  # erased, not left behind
    shown = [x for x in after if x.strip() and not re.match(r"bash-[\d.]+[#$]( |$)", x)]  # not the prompt
    assert shown and all(STATUS.match(x) for x in shown), shown  # no status line broken by the live line
    assert len({STATUS.match(x).group(1) for x in shown}) == len(shown)
    coloured = [x for x in pane.screen(escapes=True) if "[SUCCESS]" in x]
    assert coloured and all("\x1b[" in x for x in coloured)  # on a terminal, coloured as pssh does


def test_no_progress_bytes_in_files(pane, big_lab, tmp_path):
    lab, hosts = big_lab
    out, err = tmp_path / "out", tmp_path / "err"
    # stdout to a file, stderr still the terminal: the line is drawn, on the terminal only.
    done = pane.start(command(lab, hosts, cmd="sleep 0.3") + f" > {shlex.quote(str(out))}")
    pane.wait_for(lambda lines: any(LIVE.search(line) for line in lines))
    assert wait_exit(done) == 0
    data = out.read_bytes()
    assert data.count(b"[SUCCESS]") == 100
    assert b"\r" not in data and b"\x1b" not in data and b"parallax:" not in data
    # Both to files: no terminal, no line anywhere.
    done = pane.start(command(lab, hosts, cmd="sleep 0.1") + f" > {shlex.quote(str(out))} 2> {shlex.quote(str(err))}")
    assert wait_exit(done) == 0
    assert out.read_bytes().count(b"[SUCCESS]") == 100
    assert err.read_bytes() == b""


@pytest.mark.parametrize("flag", ["--no-progress", "--json", "-v"])
def test_no_live_line_when_asked_or_with_json(pane, lab, tmp_path, flag):
    hosts = tmp_path / "hosts"
    hosts.write_text("\n".join(lab.hosts) + "\n")
    done = pane.start(command(lab, str(hosts), flag, "-p", "2", cmd="sleep 0.4"))
    seen: list[str] = []
    while exit_file(done) is None:
        seen.extend(pane.screen())
        time.sleep(0.05)
    assert exit_file(done) == 0
    assert not any(LIVE.search(x) for x in seen)  # a second of captures: never the live line
    finished = [x for x in pane.screen() if STATUS.match(x) or x.startswith('{"host"')]
    assert len(finished) == 4


def test_print_lines_go_above_the_live_line(pane, lab, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("\n".join(lab.hosts) + "\n")
    done = pane.start(command(lab, str(hosts), "-P", "-p", "2", cmd="echo a; sleep 0.4; echo b; sleep 0.4"))
    seen: list[str] = []
    while exit_file(done) is None:
        seen.extend(pane.screen())
        time.sleep(0.02)
    assert exit_file(done) == 0
    assert any(LIVE.search(x) for x in seen)  # the line was there while lines were printed
    shown = [x for x in pane.screen() if x.strip() and not re.match(r"bash-[\d.]+[#$]( |$)", x)]
    printed = sorted(x for x in shown if not STATUS.match(x))
    assert printed == sorted(f"{h}: {w}" for h in lab.hosts for w in "ab"), shown  # whole, unbroken lines
    assert len(shown) == 12


def test_library_progress_option(pane, lab):
    program = (
        "import parallax\n"
        f"r = parallax.run({lab.hosts!r}, 'sleep 0.4', progress=True, limit=2, ssh_key={lab.client_key!r},"
        f" known_hosts={lab.known_hosts!r}, default_user={lab.user!r})\n"
        "print('RESULTS', sorted(v.rc for v in r.values()))\n"
    )
    done = pane.start(shlex.join([sys.executable, "-c", program]))
    pane.wait_for(lambda lines: any(LIVE.search(line) for line in lines))
    assert wait_exit(done) == 0
    after = pane.wait_for(lambda lines: any("RESULTS [0, 0, 0, 0]" in x for x in lines))
    assert not any(LIVE.search(x) for x in after)


def test_ctrl_c_cancels_every_host_erases_the_line_and_exits_130(pane, lab, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("\n".join(lab.hosts) + "\n")
    marker = "sleep 60.4242"  # a command line no other test runs
    done = pane.start(command(lab, str(hosts), cmd=marker))
    pane.wait_for(lambda lines: any(re.search(r"\b4 running\b", x) for x in lines if LIVE.search(x)))
    pane.key("C-c")
    assert wait_exit(done) == 130
    screen = pane.screen()
    assert sum(bool(STATUS.match(x)) and x.endswith(" Cancelled") for x in screen) == 4
    assert "parallax: interrupted" in screen and not any(LIVE.search(x) for x in screen)
    deadline = time.monotonic() + 10  # sshd ends the remote commands once their connections are gone
    while subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False).returncode == 0:
        assert time.monotonic() < deadline, "a remote command outlived the cancelled run"
        time.sleep(0.1)

