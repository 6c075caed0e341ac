"""How far past its limit a call with a ``Timeout`` ends, per backend and fault (issue 9 R9):
``python benchmarks/timeout_overshoot.py SCENARIO BACKEND[,BACKEND...] [RUNS]`` (as root: it
starts an SSHLab, and for ``transfer`` a FaultLab).  The figures in docs/reliability.md's table
come from it; the scenarios are those of tests/integration/test_fault_lab.py.

Scenarios: ``live`` (a command outlasting ``timeout=1``), ``frozen`` (sshd SIGSTOPped
mid-command, ``timeout=3``; ``frozen-session`` and ``frozen-shell`` in a Session, without and
with persistent shells), ``timeout`` and ``deadline`` (a host that never sends a banner, limit
2 s), ``transfer`` (sshd frozen mid-``copy`` of 32 MiB behind a 50 ms, 5 % loss link,
``timeout=5``).  Each run prints the overshoot (wall time minus the limit) and the result class.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import parallax
from parallax.testing import SSHLab
from parallax.testing.faults import FaultLab, SilentHost, frozen
from parallax.testing.processes import processes_with


def opts(lab: Any, backend: str, **kw: Any) -> dict[str, Any]:
    return dict(ssh_key=lab.client_key, known_hosts=lab.known_hosts, default_user=lab.user, backend=backend, **kw)


def only(results: dict[str, Any]) -> Any:
    (r,) = results.values()
    return r


def token() -> str:
    return f"{int(time.monotonic() * 1e6) % 10**6:06d}"


def running(command: str) -> list[int]:
    """The remote process whose whole command line is *command* (not the ssh carrying it)."""
    return [pid for pid, cmd in processes_with(command).items() if cmd == command]


def measure(limit: float, call: Callable[[], Any]) -> tuple[float, str]:
    t0 = time.monotonic()
    r = call()
    return round(time.monotonic() - t0 - limit, 3), type(r).__name__


def live(lab: Any, backend: str) -> tuple[float, str]:
    command = f"sleep 9.{token()}"
    out = measure(1, lambda: only(parallax.call(lab.hosts[:1], command, **opts(lab, backend, timeout=1))))
    left = running(command)
    for pid in left:
        os.kill(pid, 9)
    return out[0], out[1] + (f", {len(left)} left running" if left else "")


def frozen_run(lab: Any, backend: str, session: Any) -> tuple[float, str]:
    stop = threading.Event()
    mark = f"2.{token()}"

    def freeze_soon() -> None:
        deadline = time.monotonic() + 20
        while not running(f"sleep {mark}") and time.monotonic() < deadline:
            time.sleep(0.02)
        with frozen(lab):
            stop.wait(10)

    command = f"echo started; sleep {mark}; echo done"
    t = threading.Thread(target=freeze_soon)
    t.start()
    try:
        return measure(3, lambda: only(session.call(command) if session is not None else
                                       parallax.call(lab.hosts[:1], command, **opts(lab, backend, timeout=3))))
    finally:
        stop.set()
        t.join()


def silent(lab: Any, backend: str, limit: str) -> tuple[float, str]:
    kw = {"timeout": 2} if limit == "timeout" else {"deadline": 2, "timeout": 0}
    with SilentHost() as host:
        return measure(2, lambda: parallax.call([host.host, lab.hosts[0]], "sleep 0.2; echo ok",
                                                **opts(lab, backend, connect_timeout=0, **kw))[host.host])


def transfer(lab: Any, backend: str, src: str, n: int) -> tuple[float, str]:
    stop = threading.Event()

    def freeze_soon() -> None:
        time.sleep(1.5)
        with frozen(lab):
            stop.wait(15)

    t = threading.Thread(target=freeze_soon)
    t.start()
    try:
        return measure(5, lambda: only(parallax.copy([lab.hosts[n % len(lab.hosts)]], src,
                                                     f"{lab.lab.scratch_dir}/{backend}-{n}",
                                                     **opts(lab, backend, timeout=5))))
    finally:
        stop.set()
        t.join()


def main(scenario: str, backends: list[str], runs: int) -> None:
    with contextlib.ExitStack() as stack:
        if scenario == "transfer":
            lab: Any = stack.enter_context(FaultLab(hosts=4, rtt=0.05, loss=0.05, seed=9))
            src = os.path.join(stack.enter_context(tempfile.TemporaryDirectory()), "big")
            with open(src, "wb") as f:
                f.truncate(32 * 1024 * 1024)
        else:
            lab = stack.enter_context(SSHLab(hosts=2))
        for backend in backends:
            parallax.call(lab.hosts[:1], "true", **opts(lab, backend))  # warm: imports, plugin discovery
            session = None
            if scenario in ("frozen-session", "frozen-shell"):
                session = stack.enter_context(parallax.Session(
                    lab.hosts[:1], persistent_shell=scenario == "frozen-shell", **opts(lab, backend, timeout=3)))
            results = []
            for n in range(runs):
                if session is not None:
                    session.call("true")
                if scenario == "live":
                    results.append(live(lab, backend))
                elif scenario.startswith("frozen"):
                    results.append(frozen_run(lab, backend, session))
                elif scenario in ("timeout", "deadline"):
                    results.append(silent(lab, backend, scenario))
                elif scenario == "transfer":
                    results.append(transfer(lab, backend, src, n))
                else:
                    raise SystemExit(f"unknown scenario {scenario!r}")
            over = [r[0] for r in results]
            print(f"{scenario} {backend}: overshoot {min(over):.2f}-{max(over):.2f} s  {results}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]) if len(sys.argv) > 3 else 5)
