"""Peak RSS of 200 hosts x 10 MiB of stdout written to outdir (inline=False), one backend per run:
``python benchmarks/memory_outdir.py paramiko`` (as root: it starts a 4-address SSHLab).
The figures in docs/reliability.md come from it."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time

import parallax
from parallax.testing import SSHLab


def main(backend: str, size: int = 10 * 1024 * 1024) -> None:
    with SSHLab(hosts=4) as lab:
        entries = [parallax.Host(a, port=lab.port, user=lab.user, key=f"{a}-{i}")
                   for i in range(50) for a in lab.addresses]
        out = tempfile.mkdtemp()
        start = time.time()
        res = parallax.run(entries, f"head -c {size} /dev/zero", backend=backend, ssh_key=lab.client_key,
                           known_hosts=lab.known_hosts, outdir=out, inline=False, limit=32, timeout=120)
        bad = [r for r in res.values() if isinstance(r, parallax.Error)]
        sizes = {os.path.getsize(os.path.join(out, k)) for k in res}
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"{backend}: errors {len(bad)}, file sizes {sizes}, peak RSS {rss} MiB, {time.time() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "openssh")
