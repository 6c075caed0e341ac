"""Time resolving 1,000 hosts under a 200-line ssh config: ``python benchmarks/config_resolve.py``.

Issue #10's budget is well under 50 ms in total (a benchmark, not a test).
The config mixes what real ones hold: aliases with HostName/User/Port,
wildcard and negated Host lines, Match host/user, an Include of a
wildcard-heavy file, IdentityFile lists and a ``Host *`` defaults block.
Prints the time of the first (cold: parsing included) and of the best of
``--repeat`` fresh runs, each with a new resolver (nothing cached between runs).

Then the whole planning path per backend (``--plan 1000,10000``; ``--plan ''``
skips it): creating a session over that many *distinct* hosts under the same
config (host parsing, settings, the backend, and its ``check_target`` for every
host: each host's options and ssh config checked before anything connects),
with nothing connected.  CPU time, best of ``--plan-repeat`` runs, each in a fresh session
(a fresh backend and resolver); backends whose library is missing are skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from parallax.ssh.config import ConfigResolver


def write_config(directory: str) -> str:
    """A 200-line config (plus a 20-line Include) in *directory*; returns its path."""
    inc = os.path.join(directory, "inc.conf")
    with open(inc, "w") as f:
        for i in range(5):
            f.write(f"Host *.zone{i}.example\n  User zone{i}\n  ServerAliveInterval {10 + i}\n  Compression yes\n")
    lines = [f"Include {inc}"]
    for i in range(30):  # 30 aliases x 4 lines
        lines += [f"Host web{i:02d} web{i:02d}.lan", f"  HostName 10.0.{i}.1", f"  User deploy{i}",
                  f"  IdentityFile ~/.ssh/id_web{i}"]
    for i in range(10):  # 10 wildcard blocks x 4 lines
        lines += [f"Host db{i}-* !db{i}-backup", "  Port 2222", f"  ProxyJump bastion{i}",
                  "  IdentityFile ~/.ssh/id_%h"]
    for i in range(5):  # 5 Match blocks x 3 lines
        lines += [f"Match host 10.0.{i}.* user deploy*", "  ConnectTimeout 5", "  SendEnv LANG LC_*"]
    lines += ["Host *", "  ServerAliveInterval 30", "  ServerAliveCountMax 4", "  StrictHostKeyChecking accept-new",
              "  UserKnownHostsFile ~/.ssh/known_hosts ~/.ssh/known_hosts.d/%k", "  ControlPath ~/.ssh/cm-%C",
              "  IdentityFile ~/.ssh/id_ed25519", "  IdentitiesOnly yes", "  HashKnownHosts no"]
    lines += ["# padding comment"] * (200 - len(lines))
    path = os.path.join(directory, "config")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def hosts() -> list[str]:
    """1,000 names hitting aliases, wildcards, negations, the Include and nothing at all."""
    names = [f"web{i % 30:02d}" for i in range(200)]
    names += [f"db{i % 10}-{i}" for i in range(300)]
    names += [f"n{i}.zone{i % 5}.example" for i in range(300)]
    names += [f"other{i}" for i in range(200)]
    return names


def distinct_hosts(count: int) -> list[str]:
    """*count* distinct host entries in the same mix: aliases (each with its own user), wildcard
    blocks with ProxyJump, the Include's zones and names nothing but ``Host *`` matches."""
    kinds = (lambda i: f"deploy{i}@web{i % 30:02d}", lambda i: f"db{i % 10}-{i}",
             lambda i: f"n{i}.zone{i % 5}.example", lambda i: f"other{i}")
    return [kinds[i % 4](i) for i in range(count)]


def plan_time(backend: str, names: list[str], path: str) -> float:
    """Seconds to create (and drop) a session over *names* on *backend*, connecting nothing."""
    from parallax.session import AsyncSession

    start = time.process_time()  # CPU time: planning is single-threaded CPU work; steadier on a shared machine
    session = AsyncSession(names, backend=backend, ssh_config=path, persistent=False)
    elapsed = time.process_time() - start
    assert len(session.targets) == len(names)
    return elapsed


def plan(path: str, counts: list[int], repeat: int) -> None:
    """Print the planning cost per backend for each host count."""
    import importlib.util

    needs = {"openssh": None, "paramiko": "paramiko", "asyncssh": "asyncssh", "libssh2": "ssh2"}
    for backend, module in needs.items():
        if module is not None and importlib.util.find_spec(module) is None:
            print(f"planning on {backend}: skipped ({module} is not installed)")
            continue
        plan_time(backend, distinct_hosts(10), path)  # imports and first-use caches out of the way
        for count in counts:
            names = distinct_hosts(count)
            best = min(plan_time(backend, names, path) for _ in range(repeat))
            print(f"planning {count} distinct hosts on {backend}: {best * 1000:.0f} ms CPU "
                  f"({best / count * 1e6:.1f} us per host)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plan", default="1000,10000", help="host counts for the planning path ('' skips it)")
    parser.add_argument("--plan-repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = write_config(d)
        names = hosts()
        with open(path) as f:
            count = sum(1 for _ in f)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            resolver = ConfigResolver(path, system_config=None)
            for name in names:
                resolver.resolve(name)
            times.append(time.perf_counter() - start)
        print(f"resolved {len(names)} hosts under a {count}-line ssh config: first run {times[0] * 1000:.1f} ms, "
              f"best of {len(times)} {min(times) * 1000:.1f} ms (budget: 50 ms)")
        if args.plan:
            plan(path, [int(n) for n in args.plan.split(",")], args.plan_repeat)


if __name__ == "__main__":
    main()
