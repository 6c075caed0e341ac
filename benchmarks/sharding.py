"""W2 sharded: `true` on N hosts from one process versus through a 2-worker Dask cluster.

    python benchmarks/sharding.py [--hosts 2000] [--addresses 64] [--limit 100] [--repeat 3]
                                  [--backend asyncssh] [--mock]

On one 2-core machine sharding is not faster (the workers share the caller's
cores); what this shows is the cost of sharding: the caller's CPU per host
(which must stay well under 1 ms) and the wall-time overhead.  The Dask
scheduler and workers run as separate processes (``dask scheduler``,
``dask worker``), so the caller's CPU is this process's alone.  ``--mock``
uses the in-memory mock backend: the cost of sharding without any SSH.

Against sshd, hosts are distinct entries spread over ``--addresses`` lab
addresses (one connection per address and process: 64 by default, so the
figures are mostly per-command costs); ``--addresses 0`` gives every host its
own address, hence its own connection and key exchange, as W2 does.  The
server column is the lab's sshd CPU (listeners and every process they
spawned, counted once those have exited).

Needs ``pip install -e '.[test]'`` (distributed, asyncssh) and, without
``--mock``, ``/usr/sbin/sshd`` (a :class:`parallax.testing.SSHLab` on loopback,
one sshd per 16 addresses).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from typing import Any

import parallax
from parallax.hosts import HostSpec


def cpu() -> float:
    """User + system CPU seconds of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker_cpu() -> float:
    """Run on a worker: its CPU seconds so far (with its exited children)."""
    import resource as res

    own, kids = res.getrusage(res.RUSAGE_SELF), res.getrusage(res.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def server_cpu(lab: Any) -> float:
    """CPU seconds of the lab's sshd listeners and their reaped descendants, once no session is left."""
    listeners = lab.listener_pids()
    limit = time.monotonic() + 30
    while len(lab.pids()) > len(listeners) and time.monotonic() < limit:
        time.sleep(0.05)  # connections still closing: their CPU is not in the listeners' totals yet
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in listeners:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def start_cluster(port: int, workers: int) -> tuple[list[subprocess.Popen[bytes]], str]:
    """A ``dask scheduler`` and *workers* single-threaded ``dask worker`` processes."""
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(port),
                               "--no-dashboard"], stderr=subprocess.DEVNULL)]
    procs += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                "--no-dashboard"], stderr=subprocess.DEVNULL) for _ in range(workers)]
    return procs, address


def measure(hosts: list[Any], opts: dict[str, Any], client: Any, repeat: int, lab: Any) -> dict[str, list[float]]:
    """Wall, caller, worker and sshd CPU of *repeat* calls, locally and sharded."""
    out: dict[str, list[float]] = {}
    for label, extra in (("local", {}), ("sharded", {"cluster": client})):
        for _ in range(repeat):
            before_s = server_cpu(lab) if lab is not None else 0.0
            before_w = sum(client.run(worker_cpu).values())
            t0, c0 = time.perf_counter(), cpu()
            res = parallax.run(hosts, "true", **opts, **extra)
            wall, used = time.perf_counter() - t0, cpu() - c0
            workers = sum(client.run(worker_cpu).values()) - before_w
            served = server_cpu(lab) - before_s if lab is not None else 0.0
            bad = [r for r in res.values() if isinstance(r, parallax.Error)]
            if bad:
                raise SystemExit(f"{label}: {len(bad)} hosts failed, e.g. {bad[0]!r}")
            out.setdefault(f"{label} wall", []).append(wall)
            out.setdefault(f"{label} caller cpu", []).append(used)
            out.setdefault(f"{label} worker cpu", []).append(workers)
            out.setdefault(f"{label} server cpu", []).append(served)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=2000)
    ap.add_argument("--addresses", type=int, default=64, help="lab addresses the hosts share (0: one per host)")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backend", default="asyncssh")
    ap.add_argument("--mock", action="store_true", help="the mock backend: sharding's own cost, no SSH")
    ap.add_argument("--port", type=int, default=8799)
    args = ap.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)  # mock= is deprecated in favour of a backend object

    from distributed import Client

    procs, address = start_cluster(args.port, 2)
    lab = None
    try:
        client = Client(address, timeout=60)  # type: ignore[no-untyped-call]  # distributed is unannotated
        client.wait_for_workers(2, timeout=60)
        if args.mock:
            from parallax.backends.mock import MockHosts, MockResponse

            hosts: list[Any] = [f"m{i}" for i in range(args.hosts)]
            opts: dict[str, Any] = {"backend": "mock", "mock": MockHosts(default=MockResponse()),
                                    "local_shortcut": False}
        else:
            from parallax.testing import SSHLab

            lab = SSHLab(hosts=min(args.hosts, args.addresses or args.hosts)).start()
            hosts = [HostSpec(key=f"n{i:05d}", host=lab.addresses[i % len(lab.addresses)], port=lab.port)
                     for i in range(args.hosts)]
            opts = {"ssh_key": lab.client_key, "known_hosts": lab.known_hosts, "default_user": lab.user,
                    "backend": args.backend}
        opts.update(limit=args.limit, timeout=300)
        data = measure(hosts, opts, client, args.repeat, lab)
        what = ("mock backend" if args.mock else
                f"{args.backend} against a loopback sshd, {len(lab.addresses) if lab else 0} addresses")
        print(f"`true` on {args.hosts} hosts, limit {args.limit}, {what}; median of {args.repeat} "
              f"(min-max); 2 single-threaded workers; load average {os.getloadavg()[0]:.1f}")
        print("| | wall s | caller CPU s | caller CPU ms/host | worker CPU ms/host | sshd CPU ms/host |")
        print("|---|---|---|---|---|---|")
        for label in ("local", "sharded"):
            wall, used, work, served = (data[f"{label} {k}"] for k in ("wall", "caller cpu", "worker cpu",
                                                                        "server cpu"))
            per = 1000 / args.hosts
            print(f"| {label} | {statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f}) "
                  f"| {statistics.median(used):.2f} | {statistics.median(used) * per:.3f} "
                  f"| {statistics.median(work) * per:.3f} | {statistics.median(served) * per:.2f} |")
        client.close()  # type: ignore[no-untyped-call]
    finally:
        if lab is not None:
            lab.stop()
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
