"""Where client CPU per host goes: ``true`` on N lab hosts with each backend, and a per-phase split.

    python benchmarks/profile_backends.py [--hosts 50] [--rounds 3] [--backends openssh,paramiko,asyncssh,libssh2]

For each backend, each round runs ``parallax.run(hosts, "true")`` on a fresh
call against a private sshd (:class:`parallax.testing.SSHLab`, loopback) and
prints client CPU ms/host: ``getrusage`` of this process plus its children
(the ssh processes of the openssh backend), best and median of the rounds.

Then the libssh2 backend's own path, host after host, with
``time.process_time`` around each phase (connect, kex, auth, channel, exec,
close), through the same :class:`parallax.backends.libssh2_io.Wire` and
connection code the backend uses; and the same for asyncssh by hand
(connect = TCP + kex + auth in one call).  The phases add up to less than
the whole-call figure: the difference is parallax's own per-host work
(planning, scheduling, results) and the event loop.

Last, the OpenSSH client on its own, with no parallax around it: ``ssh -V``
(process start: exec, its shared libraries, OpenSSL's start-up) and one
``ssh host true`` per host in turn, as ``getrusage`` of the children; and,
when ``perf`` is installed, which of ssh's parts (its own code, libcrypto,
libc, the kernel) the connections' CPU is spent in.  That is the floor of
the ``openssh`` backend: it runs one such ``ssh`` per host.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from typing import Any

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

import parallax
from parallax.testing import SSHLab


def cpu() -> float:
    """Seconds of CPU of this process and its waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def whole_call(lab: Any, backend: str, rounds: int) -> list[float]:
    """Client CPU ms/host of ``parallax.run(hosts, 'true')`` per round (every host checked)."""
    opts = dict(ssh_key=lab.client_key, known_hosts=lab.known_hosts, default_user=lab.user, backend=backend,
                host_key_policy="strict", timeout=60, limit=32)
    out = []
    for _ in range(rounds):
        before = cpu()
        results = parallax.run(lab.hosts, "true", **opts)
        used = cpu() - before
        bad = [r for r in results.values() if isinstance(r, BaseException) or r[0] != 0]
        if bad:
            raise SystemExit(f"{backend}: {len(bad)} hosts failed, e.g. {bad[0]!r}")
        out.append(1000 * used / len(lab.hosts))
    return out


class Phases:
    """Accumulates ``time.process_time`` per phase name."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}

    async def time(self, name: str, aw: Awaitable[Any]) -> Any:
        t = time.process_time()
        try:
            return await aw
        finally:
            self.total[name] = self.total.get(name, 0.0) + time.process_time() - t


async def libssh2_phases(lab: Any) -> Phases:
    """The libssh2 backend's steps for each host in turn, timed per phase."""
    from ssh2.session import Session

    from parallax.backends import libssh2_conn as conn
    from parallax.backends.libssh2 import _read_until_eof, _start
    from parallax.backends.libssh2_io import Wire
    from parallax.backends.libssh2_options import Confs
    from parallax.jobs import Target
    from parallax.ssh.known_hosts_cache import KnownHostsCache
    from parallax.ssh.tcp import open_tcp

    class Sink:
        def stdout(self, data: bytes) -> None: ...
        def stderr(self, data: bytes) -> None: ...

    loop, confs, cache, ph = asyncio.get_running_loop(), Confs(), KnownHostsCache(), Phases()
    for host in lab.hosts:
        addr, _, port = host.rpartition(":")
        target = Target(key=host, host=addr, port=int(port), user=lab.user, ssh_key=lab.client_key,
                        known_hosts=lab.known_hosts, host_key_policy="strict")
        conf = confs.get(target)
        known = cache.for_host(target, conf.hc)
        assert known is not None  # a strict policy always has a known_hosts to check against
        sock = await ph.time("connect", open_tcp(target, conf.hc, conf.timeout))
        session = Session()
        session.set_blocking(False)
        conn._prefer(session, conf, known)
        wire = Wire(sock, session, loop)
        await ph.time("kex", wire.call(session.handshake, sock))
        t = time.process_time()
        ok = conn._judge_host_key(session, conf, known)
        ph.total["kex"] += time.process_time() - t
        await ph.time("auth", conn._authenticate(wire, conf, ok))
        chan = await ph.time("channel", _start(wire, "true", ()))

        async def run(wire: Wire, chan: Any) -> None:
            await wire.call(chan.send_eof)
            await _read_until_eof(wire, chan, Sink())
            await wire.call(chan.close)

        await ph.time("exec", run(wire, chan))
        await ph.time("close", conn.Connection(wire, "publickey").close())
    return ph


async def asyncssh_phases(lab: Any) -> Phases:
    """asyncssh by hand for each host in turn: connect (TCP + kex + auth), run, close."""
    import asyncssh

    ph = Phases()
    key = asyncssh.read_private_key(lab.client_key)
    for host in lab.hosts:
        addr, _, port = host.rpartition(":")
        c = await ph.time("connect+kex+auth", asyncssh.connect(
            addr, int(port), username=lab.user, client_keys=[key], known_hosts=lab.known_hosts, config=None,
            agent_path=None, encryption_algs=["aes128-gcm@openssh.com"]))
        await ph.time("channel+exec", c.run("true"))
        c.close()
        await ph.time("close", c.wait_closed())
    return ph


def children_cpu() -> float:
    """Seconds of CPU of this process's waited-for children."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def openssh_floor(lab: Any) -> None:
    """The ``ssh`` client's own CPU: its start-up, a whole connection, and (with perf) where it goes."""
    argvs = [lab.ssh_argv(host.rpartition(":")[0], "true") for host in lab.hosts]
    for title, runs in (("/bin/true (exec alone)", [["/bin/true"]] * 20), ("ssh -V (start-up)", [["ssh", "-V"]] * 20),
                        ("ssh host true (a whole connection)", argvs)):
        before = children_cpu()
        for argv in runs:
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"  {title}: {1000 * (children_cpu() - before) / len(runs):.2f} ms each")
    perf = shutil.which("perf")
    if perf is None:
        print("  (perf is not installed: no split of ssh's CPU)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        data, script = os.path.join(tmp, "perf.data"), os.path.join(tmp, "connections.sh")
        with open(script, "w") as f:
            f.writelines(shlex.join(argv) + "\n" for argv in argvs)
        subprocess.run([perf, "record", "-q", "-F", "10000", "-o", data, "--", "sh", script], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # by symbol, summed per object below: perf's own "--sort dso" leaves some objects out
        report = subprocess.run([perf, "report", "-i", data, "--comm", "ssh", "--sort", "dso,sym", "--no-children",
                                 "-g", "none", "--stdio"], check=True, capture_output=True, text=True).stdout
    shares: dict[str, float] = {}
    for ln in report.splitlines():
        parts = ln.split()
        if len(parts) >= 2 and parts[0].endswith("%") and not ln.startswith("#"):
            shares[parts[1]] = shares.get(parts[1], 0.0) + float(parts[0].rstrip("%"))
    top = sorted(shares.items(), key=lambda item: -item[1])[:6]
    print("  where ssh's CPU goes (perf, share of its samples): " + ", ".join(f"{d} {v:.0f}%" for d, v in top))


def show(title: str, ph: Phases, hosts: int) -> None:
    parts = ", ".join(f"{k} {1000 * v / hosts:.2f}" for k, v in ph.total.items())
    print(f"  {title}: {1000 * sum(ph.total.values()) / hosts:.2f} ms/host ({parts})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--backends", default="openssh,paramiko,asyncssh,libssh2")
    args = p.parse_args(argv)
    with open("/proc/cpuinfo") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    print(f"CPU: {model}; {args.hosts} hosts, `true`, limit 32, {args.rounds} rounds; client CPU ms/host")
    with SSHLab(hosts=args.hosts) as lab:
        whole_call(lab, "libssh2" if "libssh2" in args.backends else "asyncssh", 1)  # warm-up (imports, caches)
        for backend in args.backends.split(","):
            ms = whole_call(lab, backend, args.rounds)
            print(f"  parallax {backend:9s} best {min(ms):6.2f}  median {statistics.median(ms):6.2f}")
        print("per phase, one host after another (time.process_time):")
        show("libssh2 backend path", asyncio.run(libssh2_phases(lab)), args.hosts)
        show("asyncssh by hand", asyncio.run(asyncssh_phases(lab)), args.hosts)
        if "openssh" in args.backends:
            print("the OpenSSH client alone, one process after another (getrusage of the children):")
            openssh_floor(lab)


if __name__ == "__main__":
    main()
