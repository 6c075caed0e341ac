"""Round trips per host, counted from the latency lab's packet capture (W6, W9).

The link records every TCP packet when it enters (before its delay), so a
reply to a packet can enter the link no sooner than half a round trip after
it, and the client's next packet no sooner than half a round trip after the
reply.  The count for one connection in one time window is the length of the
longest chain of packets that alternate direction (client to server, server
to client, ...), each at least half an RTT after the one before, counting one
round trip per client->server->client hop, up to the server's last packet
with data.  Packets with data or SYN count, and the client's pure ACKs (sshd
sets no TCP_NODELAY before a session, so Nagle holds its KEXINIT until the
client ACKs its banner: that wait is a round trip too); FINs do not.
This is exact when neither end pauses more than RTT/2 between two messages,
and an upper bound otherwise.  A host's count is the sum over its
connections in the window (they run one after another for every client here).

Also the FLOOR: the fewest round trips an SSH connection plus one command can
take, derived in RESULTS.md ("Round trips").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

SYN, FIN, RST = 0x02, 0x01, 0x04
#: A reply enters the link no sooner than half an RTT after what it answers; the
#: margin allows for timestamps taken once per batch of packets the forwarder reads.
HOP = 0.45

#: The fewest round trips for a new connection + one command, for a client that waits for every
#: answer the protocol makes it wait for and sends everything else at once (see RESULTS.md).
FLOOR = (
    ("TCP handshake (client banner and KEXINIT may ride on the ACK)", 1),
    ("server banner + KEXINIT, then ECDH init", 1),
    ("ECDH reply + NEWKEYS", 1),
    ("ssh-userauth service request / accept", 1),
    ("publickey auth with the signature in the first request", 1),
    ("channel open / confirmation", 1),
    ("exec, then output, exit status, EOF and close", 1),
)
FLOOR_RTTS = sum(n for _, n in FLOOR)
#: A repeat call on an open connection: channel open, then exec (it needs the server's channel id).
REPEAT_FLOOR = 2
#: A persistent shell's repeat call: the command goes out, the output and status come back.
SHELL_REPEAT_FLOOR = 1


def chain(packets: list[Any], rtt: float) -> int:
    """Round trips in one connection's time-ordered *packets* (see the module docstring)."""
    useful = [p for p in packets if p.payload > 0 or p.flags & SYN or (p.to_lab and not p.flags & (FIN | RST))]
    last_reply = max((i for i, p in enumerate(useful) if not p.to_lab), default=-1)
    useful = useful[: last_reply + 1]
    first = next((i for i, p in enumerate(useful) if p.to_lab), None)
    if first is None:
        return 0
    gap = HOP * rtt
    t, want_to_lab, trips = useful[first].time, False, 0
    for p in useful[first + 1:]:
        if p.to_lab == want_to_lab and p.time >= t + gap:
            if not p.to_lab:
                trips += 1
            t, want_to_lab = p.time, not want_to_lab
    return trips


def per_host(packets: Iterable[Any], rtt: float, start: float, end: float) -> dict[str, tuple[int, int]]:
    """``{address: (round trips, connections)}`` for the packets with ``start <= time < end``."""
    conns: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for p in packets:
        if start <= p.time < end:
            conns[(p.address, p.client_port)].append(p)
    out: dict[str, tuple[int, int]] = {}
    for (addr, _), pkts in conns.items():
        n = chain(sorted(pkts, key=lambda p: p.time), rtt)
        if n == 0:
            continue  # only the tail of a connection of an earlier window (acks, close)
        trips, count = out.get(addr, (0, 0))
        out[addr] = (trips + n, count + 1)
    return out


def summarise_capture(packets: list[Any], rtt: float, marks: list[float],
                      addresses: list[str]) -> dict[str, Any]:
    """Round-trip figures of one run: the first window (the whole call for W6, the first call
    for W9) and, with more than two *marks*, the later windows (W9's repeat calls)."""
    def window(i: int) -> list[int]:
        counts = per_host(packets, rtt, marks[i], marks[i + 1])
        return [counts.get(a, (0, 0))[0] for a in addresses]

    first = window(0)
    out: dict[str, Any] = {
        "rtts_first": sorted(first)[len(first) // 2], "rtts_first_max": max(first), "rtts_first_min": min(first),
        "conns_first": max(per_host(packets, rtt, marks[0], marks[1]).values(), default=(0, 0), key=lambda v: v[1])[1],
    }
    later = [n for i in range(1, len(marks) - 1) for n in window(i)]
    if later:
        out.update(rtts_repeat=sorted(later)[len(later) // 2], rtts_repeat_max=max(later))
    return out
