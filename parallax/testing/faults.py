"""A fault lab: real sshd hosts behind a slow, lossy link, and hosts that misbehave.

For tests (and users' own tests) of what a program does when the network
and the servers are not kind::

    with FaultLab(hosts=5, rtt=0.05, loss=0.05) as lab:
        parallax.call(lab.hosts, "true", ssh_key=lab.client_key, known_hosts=lab.known_hosts,
                      default_user=lab.user)
        lab.configure(blackhole=[lab.addresses[0]])      # that host vanishes from the network

* :class:`FaultLab` runs an :class:`~parallax.testing.sshd.SSHLab` inside a
  network namespace of its own, reached through a link built in user space:
  two TUN devices (one moved into the namespace) joined by a small forwarder
  process that holds every packet for half the round-trip time, drops a share
  of them at random, and drops everything to or from a black-holed range.
  The kernels this was written on have no ``netem`` qdisc and no packet
  filter, so nothing here needs them.  :meth:`FaultLab.start_capture` /
  :meth:`FaultLab.stop_capture` record every TCP packet's header on the link
  (the benchmarks count round trips from it).  All traffic stays on this machine
  (addresses in 198.18.0.0/15, the range reserved for benchmarks, inside a
  namespace the lab creates and removes itself, on errors and Ctrl-C too;
  namespaces left by a killed process are removed by the next lab).
* :class:`SilentHost`: accepts TCP connections and never says a word (no SSH
  banner): what a hung server or a wrong port looks like.
* :func:`frozen` (SIGSTOP every sshd process of a lab) and
  :func:`kill_sessions` (kill its per-connection processes: every open
  connection drops) make a server fail in the middle of a command.

Needs Linux, root, ``ip`` (iproute2) and ``/dev/net/tun`` for the link;
:func:`can_build_link` says why not.  This module imports nothing from
``parallax`` outside ``parallax.testing``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import weakref
from typing import Any, NamedTuple
from collections.abc import Callable, Iterable, Iterator

from .processes import command_line
from .sshd import SSHLab

__all__ = ["FaultLab", "Packet", "SilentHost", "can_build_link", "frozen", "kill_sessions"]

NETWORK = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544: benchmarking, never routed
SSH_PORT = 2222  # inside the namespace nothing else listens
#: Host and black-holed addresses together fit in the lab's /24 (.1 .. .252; .254 is this machine's end).
MAX_ADDRESSES = 252
#: Packets a TUN device queues for the forwarder; the kernel's default (500) drops bursts of bulk TCP.
TXQUEUELEN = "10000"
_PREFIX = "pxfault-"
_TUNSETIFF = 0x400454CA
_IFF_TUN, _IFF_NO_PI = 0x0001, 0x1000


class Packet(NamedTuple):
    """One TCP packet seen on the link by :meth:`FaultLab.stop_capture`."""

    time: float  # time.monotonic() when it entered the link, before its delay
    to_lab: bool  # from this machine into the namespace (client to server)
    address: str  # the lab host's address
    client_port: int  # the port of this machine's end: (address, client_port) is one connection
    flags: int  # TCP flags (SYN 0x02, FIN 0x01, RST 0x04, ACK 0x10)
    payload: int  # TCP payload bytes


def can_build_link() -> tuple[bool, str]:
    """Can a :class:`FaultLab` build its namespace and link here?  ``(ok, reason_if_not)``."""
    if sys.platform != "linux":
        return False, f"the fault lab needs Linux network namespaces; this is {sys.platform}"
    if os.geteuid() != 0:
        return False, "the fault lab needs root (network namespaces and TUN devices)"
    if shutil.which("ip") is None:
        return False, "'ip' (iproute2) not found on PATH"
    if not os.path.exists("/dev/net/tun"):
        return False, "/dev/net/tun is missing (no TUN support)"
    return True, ""


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"fault lab: 'ip {' '.join(args)}' failed: {r.stderr.strip()}")


def _remove_stale_namespaces() -> None:
    """Remove namespaces of fault labs whose process no longer exists (killed with -9)."""
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name[len(_PREFIX):].split("-")
        if name.startswith(_PREFIX) and parts[0].isdigit() and not os.path.exists(f"/proc/{parts[0]}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _free_subnet(rng: random.Random) -> ipaddress.IPv4Network:
    """A /24 of NETWORK that no address or route of this machine uses yet."""
    used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    used += subprocess.run(["ip", "-o", "route"], capture_output=True, text=True).stdout
    subnets = list(NETWORK.subnets(new_prefix=24))
    rng.shuffle(subnets)
    for net in subnets:
        if str(net.network_address)[:-1] not in used:  # "198.18.7." appears nowhere
            return net
    raise RuntimeError("fault lab: every /24 of 198.18.0.0/15 is in use")


class _LabState:
    """What cleanup needs; holds no reference to the FaultLab (for the finalizer)."""

    def __init__(self) -> None:
        self.namespace: str | None = None
        self.forwarder: subprocess.Popen[str] | None = None
        self.lab: SSHLab | None = None


def _cleanup(state: _LabState) -> None:
    lab, state.lab = state.lab, None
    if lab is not None:
        lab.stop()
    fwd, state.forwarder = state.forwarder, None
    if fwd is not None and fwd.poll() is None:
        fwd.kill()  # its TUN devices vanish with it
        fwd.wait()
    ns, state.namespace = state.namespace, None
    if ns is not None:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class FaultLab:
    """*hosts* sshd hosts in a private network namespace behind a link with round-trip
    time *rtt* (seconds), random loss *loss* (0..1, per packet and direction) and
    *blackholed* extra addresses that drop every packet (hosts + blackholed <= 252).

    *extra_config* goes into the sshd_config; a function of the host addresses
    gives it once they are known (e.g. ``Match LocalAddress`` blocks).
    *offload* lets the link carry TCP segmentation bursts of up to 64 KiB as
    one packet (as a virtio NIC does; the MTU stays 1500): a tenth of the
    forwarder's CPU for bulk transfers, but *loss* then drops whole bursts.

    The SSHLab attributes a client needs are available directly (``hosts``,
    ``addresses``, ``port``, ``user``, ``client_key``, ``known_hosts``,
    ``ssh_config``); ``lab`` is the :class:`SSHLab` itself.
    """

    def __init__(self, hosts: int = 3, *, rtt: float = 0.0, loss: float = 0.0, blackholed: int = 4,
                 seed: int | None = None, extra_config: str | Callable[[list[str]], str] = "",
                 offload: bool = False) -> None:
        if isinstance(hosts, bool) or not isinstance(hosts, int) or not 1 <= hosts <= MAX_ADDRESSES:
            raise ValueError(f"hosts must be 1..{MAX_ADDRESSES}, not {hosts!r}")
        if (isinstance(blackholed, bool) or not isinstance(blackholed, int)
                or not 0 <= blackholed <= MAX_ADDRESSES - hosts):
            raise ValueError(f"blackholed must be 0..{MAX_ADDRESSES - hosts} (hosts + blackholed <= "
                             f"{MAX_ADDRESSES}), not {blackholed!r}")
        if not isinstance(extra_config, str) and not callable(extra_config):
            raise TypeError(f"extra_config must be a str or a function of the addresses, "
                            f"not {type(extra_config).__name__}")
        self._check_link(rtt, loss)
        self.n_hosts = hosts
        self.rtt, self.loss, self.seed = rtt, loss, seed
        self.extra_config = extra_config
        self.blackholed_count = blackholed
        self.offload = bool(offload)
        self.addresses: list[str] = []
        self.blackholed_addresses: list[str] = []
        self.namespace = ""
        self.lab: SSHLab | None = None
        self._state = _LabState()
        self._finalizer = weakref.finalize(self, _cleanup, self._state)

    @staticmethod
    def _check_link(rtt: float, loss: float) -> None:
        for name, value in (("rtt", rtt), ("loss", loss)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
        if not 0 <= rtt <= 10:
            raise ValueError(f"rtt must be 0..10 seconds, not {rtt!r}")
        if not 0 <= loss < 1:
            raise ValueError(f"loss must be in [0, 1), not {loss!r}")

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> FaultLab:
        """Create the namespace, the link and the sshd; on any failure remove what was made."""
        ok, reason = can_build_link()
        if not ok:
            raise RuntimeError(f"cannot build the fault lab: {reason}")
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self) -> None:
        _remove_stale_namespaces()
        rng = random.Random(self.seed)
        net = _free_subnet(random.Random())
        hosts = list(net.hosts())
        self.addresses = [str(a) for a in hosts[1:1 + self.n_hosts]]
        first_hole = max(128, 1 + self.n_hosts) if 128 + self.blackholed_count <= MAX_ADDRESSES else 1 + self.n_hosts
        self.blackholed_addresses = [str(a) for a in hosts[first_hole:first_hole + self.blackholed_count]]
        local = str(hosts[-1])  # this machine's end of the link
        tag = f"{os.getpid() % 100000}{rng.randrange(1000):03d}"[-8:]
        self.namespace = f"{_PREFIX}{os.getpid()}-{tag}"
        outer, inner = f"pxo{tag}", f"pxi{tag}"
        _ip("netns", "add", self.namespace)
        self._state.namespace = self.namespace
        fwd = subprocess.Popen(
            [sys.executable, "-m", "parallax.testing._forwarder", outer, inner,
             json.dumps({**self._link_config(self.rtt, self.loss, self.blackholed_addresses, self.seed),
                         "offload": self.offload})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True, text=True,
        )
        self._state.forwarder = fwd
        if fwd.stdout is None or fwd.stdout.readline().strip() != "ready":
            raise RuntimeError(f"fault lab: the forwarder did not start (status {fwd.wait()})")
        _ip("link", "set", inner, "netns", self.namespace)
        _ip("addr", "add", f"{local}/32", "dev", outer)
        _ip("link", "set", outer, "txqueuelen", TXQUEUELEN, "up")
        _ip("route", "add", str(net), "dev", outer, "src", local)
        ns = ["-n", self.namespace]
        _ip(*ns, "link", "set", "lo", "up")
        for addr in self.addresses:
            _ip(*ns, "addr", "add", f"{addr}/32", "dev", inner)
        _ip(*ns, "link", "set", inner, "txqueuelen", TXQUEUELEN, "up")
        _ip(*ns, "route", "add", "default", "dev", inner)
        extra = self.extra_config if isinstance(self.extra_config, str) else self.extra_config(list(self.addresses))
        self.lab = SSHLab(self.n_hosts, port=SSH_PORT, addresses=self.addresses, extra_config=extra,
                          command_prefix=["ip", "netns", "exec", self.namespace])
        self._state.lab = self.lab
        self.lab.start()

    def stop(self) -> None:
        """Stop sshd and the forwarder, remove the namespace (idempotent)."""
        self._finalizer()

    def __enter__(self) -> FaultLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the link -----------------------------------------------------------

    @staticmethod
    def _link_config(rtt: float, loss: float, blackhole: Iterable[str], seed: int | None) -> dict[str, Any]:
        nets = [str(ipaddress.IPv4Network(b, strict=False)) for b in blackhole]
        return {"delay": rtt / 2, "loss": loss, "blackhole": nets, "seed": seed}

    def configure(self, *, rtt: float | None = None, loss: float | None = None,
                  blackhole: Iterable[str] | None = None) -> None:
        """Change the link while it runs; *blackhole* replaces the black-holed addresses or
        networks (``lab.blackholed_addresses`` are black-holed from the start)."""
        rtt = self.rtt if rtt is None else rtt
        loss = self.loss if loss is None else loss
        self._check_link(rtt, loss)
        holes = self.blackholed_addresses if blackhole is None else list(blackhole)
        self._send(self._link_config(rtt, loss, holes, None))
        self.rtt, self.loss = rtt, loss

    def start_capture(self) -> None:
        """Start recording the header of every TCP packet on the link (see :meth:`stop_capture`);
        returns once the forwarder records."""
        self._send({"record": True})
        self._wait_for("recording")

    def stop_capture(self) -> list[Packet]:
        """Stop recording; the TCP packets seen since :meth:`start_capture`, in order, as
        :data:`Packet` tuples ``(time, to_lab, address, client_port, tcp_flags, payload_bytes)``:
        *time* is ``time.monotonic()`` when the packet entered the link (before its delay),
        *to_lab* is True from this machine to the namespace, *address* the lab host's address and
        *client_port* the port on this machine's end (the two name one TCP connection)."""
        fd, path = tempfile.mkstemp(prefix="parallax-capture-", suffix=".json")
        os.close(fd)
        try:
            self._send({"dump": path})
            self._wait_for("dumped")
            with open(path) as f:
                rows = json.load(f)
            return [Packet(float(t), bool(i), str(a), int(p), int(fl), int(n)) for t, i, a, p, fl, n in rows]
        finally:
            os.unlink(path)

    def _wait_for(self, word: str) -> None:
        fwd = self._state.forwarder
        assert fwd is not None and fwd.stdout is not None
        while (line := fwd.stdout.readline()) and line.strip() != word:
            pass
        if not line:
            raise RuntimeError(f"fault lab: the forwarder ended before it said {word!r}")

    def _send(self, message: dict[str, Any]) -> None:
        fwd = self._state.forwarder
        if fwd is None or fwd.stdin is None or fwd.poll() is not None:
            raise RuntimeError("the fault lab is not running")
        fwd.stdin.write(json.dumps(message) + "\n")
        fwd.stdin.flush()

    @property
    def forwarder_pid(self) -> int | None:
        """The link's forwarder process (None when the lab is not running)."""
        fwd = self._state.forwarder
        return fwd.pid if fwd is not None and fwd.poll() is None else None

    def forwarder_cpu(self) -> float:
        """CPU seconds (user + system) the forwarder process has used so far."""
        fwd = self._state.forwarder
        if fwd is None:
            return 0.0
        with open(f"/proc/{fwd.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    # -- what a client needs ------------------------------------------------

    def _lab(self) -> SSHLab:
        if self.lab is None:
            raise RuntimeError("the fault lab is not started")
        return self.lab

    @property
    def hosts(self) -> list[str]:
        return self._lab().hosts

    @property
    def port(self) -> int:
        return self._lab().port

    @property
    def user(self) -> str:
        return self._lab().user

    @property
    def client_key(self) -> str:
        return self._lab().client_key

    @property
    def known_hosts(self) -> str:
        return self._lab().known_hosts

    @property
    def ssh_config(self) -> str:
        return self._lab().ssh_config

    def __repr__(self) -> str:
        return (f"<FaultLab {self.n_hosts} hosts in {self.namespace or '(not started)'} "
                f"rtt {self.rtt * 1000:g} ms loss {self.loss:.0%}>")


class SilentHost:
    """A TCP listener on loopback that accepts connections and never sends a byte.

    ``host`` is ``"127.0.0.1:PORT"``; ``accepted`` counts connections.  Use as a
    context manager; connections are held open until :meth:`stop`.
    """

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.sock = socket.create_server((address, 0), backlog=128)
        self.address = address
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="silent-host", daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    def _serve(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def stop(self) -> None:
        """Close the listener and every connection it holds."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._held.clear()

    def __enter__(self) -> SilentHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def frozen(lab: Any) -> Iterator[list[int]]:
    """SIGSTOP every sshd process of *lab* (an SSHLab or FaultLab) for the block:
    connections stay open and nothing answers.  Yields the stopped pids."""
    sshlab = lab._lab() if isinstance(lab, FaultLab) else lab
    pids = sshlab.pids()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def kill_sessions(lab: Any) -> int:
    """Kill the per-connection sshd processes of *lab*: every open connection drops
    (the listener stays, so new connections work).  Returns how many were killed."""
    sshlab = lab._lab() if isinstance(lab, FaultLab) else lab
    killed = 0
    for pid in sshlab.pids():
        cmd = command_line(pid)
        if cmd.startswith("sshd: ") and "[listener]" not in cmd and ("[priv]" in cmd or "@notty" in cmd):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed
