"""Round trips per operation, per backend, behind a slow link (issue 13, tuning part).

``python3 benchmarks/round_trips.py [--rtt 0.2] [--hosts 1] [--repeat 3] [backend ...]``
(as root: it starts a :class:`parallax.testing.faults.FaultLab`).  Every
operation is timed against hosts behind a user-space link of round-trip time
``--rtt`` and printed in RTTs (wall time / rtt, best of ``--repeat``), so one
round trip is far above CPU noise.  The figures in docs/backends.md
("Round trips") come from it.

Operations: (a) a module-level ``parallax.call(hosts, "true")``; (b) a
Session's first call and a repeat call; (c) the same with
``persistent_shell=True``; (d) a ``copy`` of a 1 MiB file.  ``ssh`` is
plain OpenSSH (``ssh host true``, no ControlMaster) as a reference.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

import parallax
from parallax.testing.faults import FaultLab

BACKENDS = ("openssh", "paramiko", "asyncssh")

#: The fewest round trips a fresh SSH connection plus one command can take (a client that
#: waits for every answer the protocol makes it wait for, and pipelines everything else).
FLOOR = (
    ("TCP handshake", 1),
    ("SSH banners + KEXINIT (sent together)", 1),
    ("ECDH init/reply", 1),
    ("NEWKEYS + ssh-userauth service request", 1),
    ("publickey auth, signature in the first request", 1),
    ("channel open", 1),
    ("exec + its output, exit status and close", 1),
)
#: A repeat call on an open connection: channel open, then exec (its id is needed first).
REPEAT_FLOOR = 2
#: A persistent shell's repeat call: one write, one reply.
SHELL_REPEAT_FLOOR = 1


def _ok(results: dict[str, Any]) -> None:
    bad = {k: v for k, v in results.items() if isinstance(v, parallax.Error)}
    if bad:
        raise SystemExit(f"failed: {bad}")


def _best(fn: Callable[[], float], repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def measure(lab: FaultLab, backend: str, hosts: list[str], repeat: int, payload: str) -> dict[str, float]:
    """Wall seconds of each operation on *backend* (best of *repeat*)."""
    opts: dict[str, Any] = dict(backend=backend, ssh_key=lab.client_key, known_hosts=lab.known_hosts,
                                default_user=lab.user, timeout=60)
    out: dict[str, float] = {}

    def one_call() -> float:
        t0 = time.monotonic()
        _ok(parallax.call(hosts, "true", **opts))
        return time.monotonic() - t0

    def session(persistent: bool) -> tuple[float, float]:
        with parallax.Session(hosts, persistent_shell=persistent, **opts) as s:
            t0 = time.monotonic()
            _ok(s.call("true"))
            first = time.monotonic() - t0
            repeats = []
            for _ in range(3):
                t0 = time.monotonic()
                _ok(s.call("true"))
                repeats.append(time.monotonic() - t0)
        return first, min(repeats)

    def copy() -> float:
        t0 = time.monotonic()
        _ok(parallax.copy(hosts, payload, "/tmp/parallax-round-trips.bin", **opts))
        return time.monotonic() - t0

    out["call"] = _best(one_call, repeat)
    for persistent, name in ((False, "session"), (True, "shell")):
        runs = [session(persistent) for _ in range(repeat)]
        out[f"{name} first"] = min(r[0] for r in runs)
        out[f"{name} repeat"] = min(r[1] for r in runs)
    out["copy 1 MiB"] = _best(copy, repeat)
    return out


def plain_ssh(lab: FaultLab, hosts: list[str], repeat: int) -> float:
    """Plain ``ssh host true`` (one process per host, all at once), as a reference."""
    def once() -> float:
        t0 = time.monotonic()
        procs = [subprocess.Popen(
            ["ssh", "-F", "/dev/null", "-i", lab.client_key, "-o", f"UserKnownHostsFile={lab.known_hosts}",
             "-o", "BatchMode=yes", "-p", str(lab.port), "-l", lab.user, h.split(":")[0], "true"])
            for h in hosts]
        if any(p.wait() for p in procs):
            raise SystemExit("plain ssh failed")
        return time.monotonic() - t0
    return _best(once, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("backends", nargs="*", default=list(BACKENDS))
    ap.add_argument("--rtt", type=float, default=0.2)
    ap.add_argument("--hosts", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FaultLab(hosts=args.hosts, rtt=args.rtt) as lab:
        payload = os.path.join(tmp, "payload.bin")
        with open(payload, "wb") as f:
            f.write(os.urandom(1024 * 1024))
        hosts = lab.hosts
        rows: dict[str, dict[str, float]] = {}
        rows["ssh (reference)"] = {"call": plain_ssh(lab, hosts, args.repeat)}
        for backend in args.backends:
            rows[backend] = measure(lab, backend, hosts, args.repeat, payload)
        cols = ["call", "session first", "session repeat", "shell first", "shell repeat", "copy 1 MiB"]
        print(f"RTTs per operation (rtt {args.rtt * 1000:g} ms, {args.hosts} host(s), best of {args.repeat};"
              f" forwarder CPU {lab.forwarder_cpu():.2f} s)")
        print(f"{'backend':<16}" + "".join(f"{c:>16}" for c in cols))
        for name, row in rows.items():
            print(f"{name:<16}" + "".join(
                f"{row[c] / args.rtt:>16.2f}" if c in row else f"{'':>16}" for c in cols))
        floor = sum(n for _, n in FLOOR)
        print(f"\nfloor for (a), {floor} RTTs: " + "; ".join(f"{what} {n}" for what, n in FLOOR))
        print(f"floor for a repeat call: {REPEAT_FLOOR}; for a persistent shell's repeat call: "
              f"{SHELL_REPEAT_FLOOR}")


if __name__ == "__main__":
    main()
