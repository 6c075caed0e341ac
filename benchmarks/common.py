"""Workload definitions and result checks shared by ``run.py`` and ``driver.py``.

Standard library only: it is imported both by the project's interpreter and by
the peers' virtualenv (which must never see the project's ``parallax``).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, field
from typing import Any

MiB = 1024 * 1024

#: W3: every host prints this 64-byte line (63 characters and a newline) until 1 MiB.
W3_LINE = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"
W3_BYTES = 1 * MiB
W3_COMMAND = f"yes {W3_LINE} | head -c {W3_BYTES}"

#: W4: a 10 MiB file of seeded pseudo-random bytes (incompressible, so scp -C gains nothing).
W4_BYTES = 10 * MiB
W4_SEED = 20240604
#: Remote path of the W4 file, inside each W4 host's own chroot (one directory per address).
W4_REMOTE = "/up/w4.bin"

#: W5: calls in a row through one client.
W5_CALLS = 5


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: what runs, on how many hosts, how many at once."""

    name: str
    title: str
    kind: str  # "run" (one call), "put" (one copy), "repeat" (W5_CALLS calls through one client)
    hosts: int
    limit: int
    command: str = ""
    chroot_hosts: bool = False  # W4, W8: hosts whose sessions are chrooted (distinct file systems)
    rtt: float = 0.0  # > 0: the hosts sit behind the latency lab's link of this round-trip time
    count_rtts: bool = False  # W6, W9: count round trips per host from the link's packet capture
    max_repeat: int = 0  # > 0: at most this many runs per configuration, whatever --repeat says (W10)
    big_lab: bool = False  # W10: a loopback lab of its own (W1-W5's lab keeps its size and known_hosts)


#: The latency lab's round-trip time (W6-W9).
LATENCY_RTT = 0.05


def workloads(quick: bool) -> list[Workload]:
    """The ten workloads; ``quick`` shrinks the host counts."""
    q = quick
    rtt = LATENCY_RTT
    at = f"at {rtt * 1000:g} ms RTT"
    return [
        Workload("W1", "`true` on {n} hosts, limit {l}", "run", 40 if q else 100, 32, "true"),
        Workload("W2", "`true` on {n} hosts, limit {l}", "run", 120 if q else 400, 100, "true"),
        Workload("W3", "1 MiB of output from each of {n} hosts, limit {l}", "run", 16 if q else 50,
                 16 if q else 50, W3_COMMAND),
        Workload("W4", "a 10 MiB file copied to {n} hosts, limit {l}", "put", 10 if q else 30,
                 10 if q else 30, chroot_hosts=True),
        Workload("W5", f"{W5_CALLS} calls of `true` in a row on {{n}} hosts through one client/session", "repeat",
                 20 if q else 50, 20 if q else 50, "true"),
        Workload("W6", f"`true` on {{n}} hosts {at}, limit {{l}}", "run", 20 if q else 100, 32, "true", rtt=rtt,
                 count_rtts=True),
        Workload("W7", f"1 MiB of output from each of {{n}} hosts {at}, limit {{l}}", "run", 8 if q else 50,
                 8 if q else 50, W3_COMMAND, rtt=rtt),
        Workload("W8", f"a 10 MiB file copied to {{n}} hosts {at}, limit {{l}}", "put", 5 if q else 30,
                 5 if q else 30, chroot_hosts=True, rtt=rtt),
        Workload("W9", f"{W5_CALLS} calls of `true` in a row on {{n}} hosts {at} through one client/session",
                 "repeat", 10 if q else 50, 10 if q else 50, "true", rtt=rtt, count_rtts=True),
        Workload("W10", "`true` on {n} hosts on loopback, limit {l}", "run", 256 if q else 2000, 256, "true",
                 max_repeat=2, big_lab=True),
    ]


def w4_payload() -> bytes:
    """The W4 file's content (deterministic)."""
    return random.Random(W4_SEED).randbytes(W4_BYTES)


def w4_digest() -> str:
    return hashlib.sha256(w4_payload()).hexdigest()


@dataclass
class Spec:
    """Everything a driver process needs for one measurement (passed as JSON)."""

    driver: str  # module name under benchmarks/drivers/
    config: str  # driver-specific configuration, e.g. "openssh/session"
    workload: dict[str, Any]
    addresses: list[str]
    port: int
    user: str
    client_key: str
    known_hosts: str
    local_file: str = ""
    out_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class CheckFailed(AssertionError):
    """A host is missing or returned a wrong result: the run does not count."""


def _summarise(problems: dict[str, str], total: int) -> str:
    items = sorted(problems.items())
    shown = "; ".join(f"{h}: {p}" for h, p in items[:5])
    more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
    return f"{len(items)}/{total} hosts wrong: {shown}{more}"


def as_bytes(out: Any) -> bytes:
    """Normalise a driver's stdout (bytes, str, or a list of lines without newlines)."""
    if out is None:
        return b""
    if isinstance(out, (bytes, bytearray, memoryview)):
        return bytes(out)
    if isinstance(out, str):
        return out.encode()
    return b"".join(line.encode() + b"\n" for line in out)


def check_run(results: dict[str, Any], addresses: list[str], command: str) -> None:
    """Every address present, exit 0, and (W3) exactly the expected output."""
    expect: bytes | None = None
    if command == W3_COMMAND:
        line = (W3_LINE + "\n").encode()
        expect = line * (W3_BYTES // len(line))
    problems: dict[str, str] = {}
    for addr in addresses:
        if addr not in results:
            problems[addr] = "no result (host lost)"
            continue
        res = results[addr]
        if isinstance(res, BaseException) or not isinstance(res, tuple):
            problems[addr] = f"error: {str(res)[:300]}"
            continue
        rc, out = res
        if rc != 0:
            problems[addr] = f"exit status {rc!r}"
            continue
        if expect is not None:
            got = as_bytes(out)
            if got != expect:
                problems[addr] = f"wrong output: {len(got)} bytes, expected {len(expect)} (equal={got == expect})"
    extra = set(results) - set(addresses)
    for addr in extra:
        problems[addr] = "unexpected host in the results"
    if problems:
        raise CheckFailed(_summarise(problems, len(addresses)))


def check_put(results: dict[str, Any], addresses: list[str]) -> None:
    """Every address present and reported as copied (the parent verifies the bytes)."""
    problems: dict[str, str] = {}
    for addr in addresses:
        if addr not in results:
            problems[addr] = "no result (host lost)"
        elif results[addr] is not None:
            problems[addr] = f"error: {str(results[addr])[:300]}"
    if problems:
        raise CheckFailed(_summarise(problems, len(addresses)))
