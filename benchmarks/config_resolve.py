"""Time resolving 1,000 hosts under a 200-line ssh config: ``python benchmarks/config_resolve.py``.

Issue #10's budget is well under 50 ms in total (a benchmark, not a test).
The config mixes what real ones hold: aliases with HostName/User/Port,
wildcard and negated Host lines, Match host/user, an Include of a
wildcard-heavy file, IdentityFile lists and a ``Host *`` defaults block.
Prints the time of the first (cold: parsing included) and of the best of
``--repeat`` fresh runs, each with a new resolver (nothing cached between runs).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
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


if __name__ == "__main__":
    main()
