"""Ctrl-C at a random moment leaves nothing behind, locally or remotely, on every backend.

Each trial is a child Python process that runs ``call(hosts, "sleep 3001 <marker>")``
(module level, in a Session, or in a Session with persistent shells) and
sends itself SIGINT after a seeded random delay (0 s included: before any
bookkeeping exists).  The child reports what it still holds once the
KeyboardInterrupt reached it and its Session was closed (threads, fds, temp
dirs); this process then counts processes carrying the marker: remote
commands (owned by the lab's login account) and local ``ssh`` clients.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from helpers import lab_opts

#: per backend and mode; seeded, so a failure replays (PARALLAX_SIGINT_TRIALS=N to soak)
TRIALS = int(os.environ.get("PARALLAX_SIGINT_TRIALS", "3"))
MAX_DELAY = 1.5  # seconds: SIGINT lands while connecting, starting or running
SETTLE = 3.0  # seconds a TERMed remote command may take to disappear

CHILD = textwrap.dedent('''
    import json, os, signal, sys, tempfile, threading, time
    import parallax

    cfg = json.loads(sys.argv[1])
    opts = cfg["opts"]
    command = f"sleep 3001 {cfg['marker']}"

    def fds():
        return len(os.listdir("/proc/self/fd"))

    def tmp():  # TMPDIR is private to this trial
        return set(os.listdir(tempfile.gettempdir()))

    timers = []

    def arm():
        timers.append(threading.Timer(cfg["delay"], os.kill, (os.getpid(), signal.SIGINT)))
        timers[0].start()

    before = {"threads": threading.active_count(), "fds": fds(), "tmp": tmp()}
    interrupted = False
    try:
        if cfg["mode"] == "call":
            arm()
            parallax.call(cfg["hosts"], command, **opts)
        else:
            with parallax.Session(cfg["hosts"], persistent_shell=cfg["mode"] == "shell", **opts) as s:
                s.call("true")
                arm()
                s.call(command)
    except KeyboardInterrupt:
        interrupted = True
    for t in timers:  # ours, not a leftover
        t.join(5)
    # A thread that is ending (a closed transport's reader) gets up to 1 s to go.
    deadline = time.monotonic() + 1.0
    while threading.active_count() > before["threads"] and time.monotonic() < deadline:
        time.sleep(0.02)
    after = {"threads": threading.active_count(), "fds": fds(), "tmp": tmp()}
    print(json.dumps({"interrupted": interrupted, "threads": after["threads"] - before["threads"],
                      "fds": after["fds"] - before["fds"], "tmp": sorted(after["tmp"] - before["tmp"]),
                      "names": sorted(f"{t.name}:{type(t).__name__}" for t in threading.enumerate())}))
''')


def marked(marker: str) -> dict[str, list[int]]:
    """Processes whose command line holds *marker*: ``{"remote": [...], "local": [...]}`` by owner."""
    found: dict[str, list[int]] = {"remote": [], "local": []}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
            uid = os.stat(f"/proc/{name}").st_uid
        except OSError:
            continue
        if marker.encode() in cmd:
            found["local" if uid == os.getuid() and b"ssh" in cmd.split(b"\0")[0] else "remote"].append(int(name))
    return found


def wait_gone(marker: str) -> dict[str, list[int]]:
    deadline = time.monotonic() + SETTLE
    while True:
        left = marked(marker)
        if not (left["remote"] or left["local"]) or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.fixture(scope="module")
def lab():
    from parallax.testing import SSHLab

    with SSHLab(hosts=12) as lab:
        yield lab


@pytest.mark.parametrize("mode", ["call", "session", "shell"])
@pytest.mark.parametrize("backend", ["openssh", "paramiko", "asyncssh", "libssh2"])
def test_sigint_at_a_random_moment_leaves_nothing(lab, backend, mode):
    rng = random.Random(f"{backend}-{mode}")
    delays = [0.0] + [round(rng.uniform(0, MAX_DELAY), 3) for _ in range(TRIALS - 1)]
    failures = []
    for trial, delay in enumerate(delays):
        marker = f"0.0000{os.getpid()}{trial}{rng.randrange(10**6):06d}"
        cfg = {"hosts": lab.hosts, "marker": marker, "delay": delay, "mode": mode,
               "opts": lab_opts(lab, backend, timeout=0, limit=32)}
        with tempfile.TemporaryDirectory(prefix="pxsig", dir="/tmp") as tmp:
            env = {**os.environ, "TMPDIR": tmp}
            proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True,
                                  timeout=90, env=env)
        left = wait_gone(marker)
        for pid in left["remote"] + left["local"]:  # do not let one failure spoil the next trial
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        try:
            report = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            failures.append((delay, f"child failed (status {proc.returncode}): {proc.stderr[-2000:]}"))
            continue
        problems = {k: v for k, v in {"remote": len(left["remote"]), "local ssh": len(left["local"]),
                                      "threads": report["threads"], "fds": report["fds"],
                                      "tmp": report["tmp"]}.items() if v}
        if problems.get("threads"):
            problems["thread names"] = report["names"]
        if not report["interrupted"]:
            problems["not interrupted"] = True
        if problems:
            failures.append((delay, problems, {k: v for k, v in left.items() if v}))
    assert not failures, failures
