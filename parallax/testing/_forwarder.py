"""The fault lab's link: copies IP packets between two TUN devices, late and not all of them.

Run by :class:`parallax.testing.faults.FaultLab` as
``python -m parallax.testing._forwarder OUTER INNER CONFIG_JSON``: it creates
both TUN devices (the lab then moves INNER into its namespace; the devices
vanish when this process ends), prints ``ready``, and forwards every packet
after ``delay`` seconds, dropping a ``loss`` share at random and every packet
from or to a ``blackhole`` network.  Each line on stdin is a new JSON config;
end of stdin (the lab's process is gone) ends it.
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import json
import os
import random
import struct
import sys
from typing import Any

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
MAX_PACKET = 65536


def open_tun(name: str) -> int:
    """A new non-blocking TUN device *name* (raw IP packets, no extra header)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Link:
    """The forwarding rules now in force, and counters."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.rng = random.Random(config.get("seed"))
        self.delay = 0.0
        self.loss = 0.0
        self.holes: list[ipaddress.IPv4Network] = []
        self.forwarded = self.dropped = 0
        self.update(config)

    def update(self, config: dict[str, Any]) -> None:
        self.delay = float(config.get("delay", self.delay))
        self.loss = float(config.get("loss", self.loss))
        if "blackhole" in config:
            self.holes = [ipaddress.IPv4Network(n) for n in config["blackhole"]]

    def passes(self, packet: bytes) -> bool:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return False  # only IPv4 travels on this link
        if self.holes:
            src, dst = ipaddress.IPv4Address(packet[12:16]), ipaddress.IPv4Address(packet[16:20])
            if any(src in n or dst in n for n in self.holes):
                return False
        return not (self.loss and self.rng.random() < self.loss)


def _write(fd: int, packet: bytes, link: Link) -> None:
    try:
        os.write(fd, packet)
        link.forwarded += 1
    except OSError:  # the device's queue is full or it is gone: the packet is lost, as on a wire
        link.dropped += 1


def _pump(loop: asyncio.AbstractEventLoop, src: int, dst: int, link: Link) -> None:
    while True:
        try:
            packet = os.read(src, MAX_PACKET)
        except BlockingIOError:
            return
        except OSError:
            loop.stop()
            return
        if not link.passes(packet):
            link.dropped += 1
        elif link.delay > 0:
            loop.call_later(link.delay, _write, dst, packet, link)
        else:
            _write(dst, packet, link)


def _control(loop: asyncio.AbstractEventLoop, link: Link) -> None:
    line = sys.stdin.readline()
    if not line:
        loop.stop()
        return
    try:
        link.update(json.loads(line))
    except (ValueError, TypeError) as e:
        print(f"forwarder: bad config {line.strip()!r}: {e}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    outer_name, inner_name, config = argv
    link = Link(json.loads(config))
    outer, inner = open_tun(outer_name), open_tun(inner_name)
    loop = asyncio.new_event_loop()
    loop.add_reader(outer, _pump, loop, outer, inner, link)
    loop.add_reader(inner, _pump, loop, inner, outer, link)
    loop.add_reader(sys.stdin.fileno(), _control, loop, link)
    print("ready", flush=True)
    try:
        loop.run_forever()
    finally:
        loop.close()
        os.close(outer)
        os.close(inner)


if __name__ == "__main__":
    main(sys.argv[1:])
