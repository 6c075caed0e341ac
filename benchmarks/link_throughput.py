"""Throughput and CPU of the latency lab's user-space link: ``python benchmarks/link_throughput.py``.

Starts a :class:`parallax.testing.faults.FaultLab` (as root), a TCP sink inside
its namespace, and pushes ``--mib`` MiB over each of ``--conns`` connections at
once from this machine through the link (``--rtt`` round trip), as W8 does
with SFTP (30 hosts x 10 MiB).  Prints the wall time, the rate, and the CPU
the forwarder used (it shares the cores with everything else), so one can
tell whether the link, not the SSH libraries, limits a workload.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from parallax.testing.faults import FaultLab

SINK_PORT = 9009
SINK = f"""
import socket, threading
srv = socket.create_server(("0.0.0.0", {SINK_PORT}), backlog=512)
def drain(c):
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        n += len(b)
    c.sendall(str(n).encode())
    c.close()
print("listening", flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
"""


def push(address: str, nbytes: int, out: list[int]) -> None:
    """Send *nbytes* to the sink, half-close, and record how many bytes it says it got."""
    chunk = b"x" * (1 << 20)
    with socket.create_connection((address, SINK_PORT), timeout=120) as s:
        left = nbytes
        while left:
            n = s.send(chunk[: min(left, len(chunk))])
            left -= n
        s.shutdown(socket.SHUT_WR)
        out.append(int(s.recv(64) or b"0"))


def measure(lab: FaultLab, conns: int, mib: int) -> dict[str, float]:
    """Wall seconds, MiB/s and forwarder CPU seconds for *conns* x *mib* MiB."""
    got: list[int] = []
    cpu0, t0 = lab.forwarder_cpu(), time.monotonic()
    threads = [threading.Thread(target=push, args=(lab.addresses[i % len(lab.addresses)], mib << 20, got))
               for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.monotonic() - t0, lab.forwarder_cpu() - cpu0
    if got != [mib << 20] * conns:
        raise SystemExit(f"the sink received {got}, expected {conns} x {mib << 20} bytes")
    return {"wall_s": wall, "mib_s": conns * mib / wall, "forwarder_cpu_s": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=30)
    ap.add_argument("--mib", type=int, default=10)
    ap.add_argument("--rtt", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--offload", action="store_true", help="TCP segmentation offload on the link (as W8 uses)")
    ap.add_argument("--stats", action="store_true", help="print the TUN devices' packet counters at the end")
    args = ap.parse_args()
    with FaultLab(hosts=min(args.conns, 250), rtt=args.rtt, blackholed=0, offload=args.offload) as lab:
        sink = subprocess.Popen(["ip", "netns", "exec", lab.namespace, sys.executable, "-c", SINK],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert sink.stdout is not None and sink.stdout.readline().strip() == "listening"
            for _ in range(args.repeat):
                r = measure(lab, args.conns, args.mib)
                print(f"{args.conns} x {args.mib} MiB at {args.rtt * 1000:g} ms RTT: {r['wall_s']:.2f} s, "
                      f"{r['mib_s']:.0f} MiB/s, forwarder CPU {r['forwarder_cpu_s']:.2f} s "
                      f"({r['forwarder_cpu_s'] * 1000 / (args.conns * args.mib):.1f} ms/MiB)", flush=True)
            if args.stats:
                links = subprocess.run(["ip", "-s", "-o", "link"], capture_output=True, text=True).stdout
                print("\n".join(line for line in links.splitlines() if lab.namespace[-8:] in line))
                print(subprocess.run(["ip", "netns", "exec", lab.namespace, "ip", "-s", "-o", "link"],
                                     capture_output=True, text=True).stdout)
        finally:
            sink.kill()
            sink.wait()


if __name__ == "__main__":
    main()
