"""The fault lab's link: copies IP packets between two TUN devices, late and not all of them.

Run by :class:`parallax.testing.faults.FaultLab` as
``python -m parallax.testing._forwarder OUTER INNER CONFIG_JSON``: it creates
both TUN devices (the lab then moves INNER into its namespace; the devices
vanish when this process ends), prints ``ready``, and forwards every packet
after ``delay`` seconds, dropping a ``loss`` share at random and every packet
from or to a ``blackhole`` network.  Each line on stdin is a JSON object: link
settings (``delay``, ``loss``, ``blackhole``), ``{"record": true}`` (start
recording TCP packet headers, see :func:`tcp_record`, and print ``recording``) or ``{"dump": PATH}``
(write the records to PATH as JSON, stop recording, print ``dumped``).  End of
stdin (the lab's process is gone) ends it.

Built for throughput (the benchmarks push 300 MiB through it): one epoll loop,
packets read in batches with one clock reading per batch, and one FIFO of due
packets per direction (the delay is the same for every packet, so a FIFO is
in due order, and a link keeps packets in order like a wire).
"""

from __future__ import annotations

import collections
import fcntl
import ipaddress
import json
import os
import random
import select
import struct
import sys
import time
from typing import Any

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR = 0x0001, 0x1000, 0x4000
TUN_F_CSUM, TUN_F_TSO4 = 0x01, 0x02
VNET_HDR = 10  # struct virtio_net_hdr in front of every packet when offloading
MAX_PACKET = 1 << 17
BATCH = 256  # packets read from one device before the other gets its turn

#: One recorded TCP packet: (monotonic time read, 1 if it goes to the namespace (client to
#: server) else 0, the namespace-side address, the outer-side port, TCP flags, payload bytes).
Record = tuple[float, int, str, int, int, int]


def open_tun(name: str, offload: bool = False) -> int:
    """A new non-blocking TUN device *name* (raw IP packets).

    With *offload* the device takes TCP segmentation and checksum offload, as a
    virtio NIC does: the kernel hands over TCP bursts of up to 64 KiB (each
    packet behind a virtio-net header) instead of MTU-sized packets, and the
    forwarder passes them on unchanged to the other device, which segments or
    delivers them as the kernel sees fit.  The wire's MTU (and TCP's MSS and
    congestion window, counted in segments) stay what they are; only the
    number of packets the forwarder copies falls.
    """
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload else 0)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
    if offload:
        fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4)
    return fd


def tcp_record(now: float, inbound: bool, packet: bytes, skip: int = 0) -> Record | None:
    """The header facts of one IPv4 TCP *packet* whose IP header starts at *skip* (None for anything else)."""
    if len(packet) < skip + 40 or packet[skip + 9] != 6:
        return None
    ihl = skip + (packet[skip] & 0x0F) * 4
    if len(packet) < ihl + 20:
        return None
    doff = (packet[ihl + 12] >> 4) * 4
    flags = packet[ihl + 13]
    if inbound:  # outer -> inner: source is the client's end, destination the namespace host
        host, port = packet[skip + 16:skip + 20], (packet[ihl] << 8) | packet[ihl + 1]
    else:
        host, port = packet[skip + 12:skip + 16], (packet[ihl + 2] << 8) | packet[ihl + 3]
    return (now, int(inbound), str(ipaddress.IPv4Address(host)), port, flags, max(0, len(packet) - ihl - doff))


class Link:
    """The forwarding rules now in force, counters, and the packet record."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.rng = random.Random(config.get("seed"))
        self.delay = 0.0
        self.loss = 0.0
        self.holes: list[ipaddress.IPv4Network] = []
        self.forwarded = self.dropped = 0
        self.recording: list[Record] | None = None
        self.update(config)

    def update(self, config: dict[str, Any]) -> None:
        self.delay = float(config.get("delay", self.delay))
        self.loss = float(config.get("loss", self.loss))
        if "blackhole" in config:
            self.holes = [ipaddress.IPv4Network(n) for n in config["blackhole"]]

    def passes(self, packet: bytes, skip: int = 0) -> bool:
        """Does *packet* (its IP header at *skip*) get through?"""
        if len(packet) < skip + 20 or packet[skip] >> 4 != 4:
            return False  # only IPv4 travels on this link
        if self.holes:
            src = ipaddress.IPv4Address(packet[skip + 12:skip + 16])
            dst = ipaddress.IPv4Address(packet[skip + 16:skip + 20])
            if any(src in n or dst in n for n in self.holes):
                return False
        return not (self.loss and self.rng.random() < self.loss)


class Forwarder:
    """Two TUN devices, two FIFOs of (due time, packet), one epoll loop."""

    def __init__(self, outer: int, inner: int, link: Link, skip: int = 0) -> None:
        self.outer, self.inner, self.link = outer, inner, link
        self.skip = skip  # bytes in front of each packet's IP header (the virtio-net header)
        self.queues: dict[int, collections.deque[tuple[float, bytes]]] = {
            inner: collections.deque(), outer: collections.deque()}  # keyed by destination
        self.running = True
        self.pending = b""

    def _write(self, fd: int, packet: bytes) -> None:
        try:
            os.write(fd, packet)
            self.link.forwarded += 1
        except OSError:  # the device's queue is full or it is gone: the packet is lost, as on a wire
            self.link.dropped += 1

    def _pump(self, src: int, dst: int) -> None:
        link = self.link
        now = time.monotonic()
        due = now + link.delay
        queue = self.queues[dst]
        record = link.recording
        for _ in range(BATCH):
            try:
                packet = os.read(src, MAX_PACKET)
            except BlockingIOError:
                return
            except OSError:
                self.running = False
                return
            if not link.passes(packet, self.skip):
                link.dropped += 1
                continue
            if record is not None:
                rec = tcp_record(now, src == self.outer, packet, self.skip)
                if rec is not None:
                    record.append(rec)
            if link.delay > 0:
                queue.append((due, packet))
            else:
                self._write(dst, packet)

    def _flush(self) -> float | None:
        """Write every due packet; seconds until the next one is due (None: nothing queued)."""
        now = time.monotonic()
        wait: float | None = None
        for dst, queue in self.queues.items():
            while queue and queue[0][0] <= now:
                self._write(dst, queue.popleft()[1])
            if queue:
                left = queue[0][0] - now
                wait = left if wait is None else min(wait, left)
        return wait

    def _control(self) -> None:
        try:
            chunk = os.read(sys.stdin.fileno(), 65536)
        except BlockingIOError:
            return
        if not chunk:
            self.running = False
            return
        self.pending += chunk
        while b"\n" in self.pending:
            line, _, self.pending = self.pending.partition(b"\n")
            if line.strip():
                self._command(line.decode(errors="replace"))

    def _command(self, line: str) -> None:
        config: Any = None
        try:
            config = json.loads(line)
            if not isinstance(config, dict):
                raise TypeError("not a JSON object")
            self.link.update(config)
            if config.get("record"):
                self.link.recording = []
                print("recording", flush=True)
            if "dump" in config:
                records, self.link.recording = self.link.recording or [], None
                with open(config["dump"], "w") as f:
                    json.dump(records, f)
                print("dumped", flush=True)
        except (ValueError, TypeError, OSError) as e:
            print(f"forwarder: bad config {line.strip()!r}: {e}", file=sys.stderr, flush=True)
            if isinstance(config, dict) and "dump" in config:
                print("dumped", flush=True)  # never leave the lab waiting

    def run(self) -> None:
        ep = select.epoll()
        stdin = sys.stdin.fileno()
        for fd in (self.outer, self.inner, stdin):
            ep.register(fd, select.EPOLLIN)
        peer = {self.outer: self.inner, self.inner: self.outer}
        try:
            while self.running:
                wait = self._flush()
                timeout = -1.0 if wait is None else max(wait, 0.0)
                for fd, _ in ep.poll(timeout):
                    if fd == stdin:
                        self._control()
                    else:
                        self._pump(fd, peer[fd])
        finally:
            ep.close()


def main(argv: list[str]) -> None:
    outer_name, inner_name, config = argv
    settings = json.loads(config)
    link = Link(settings)
    offload = bool(settings.get("offload"))
    outer, inner = open_tun(outer_name, offload), open_tun(inner_name, offload)
    print("ready", flush=True)
    try:
        Forwarder(outer, inner, link, VNET_HDR if offload else 0).run()
    finally:
        os.close(outer)
        os.close(inner)


if __name__ == "__main__":
    main(sys.argv[1:])
