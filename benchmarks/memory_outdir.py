"""Peak RSS of 200 hosts x 10 MiB of stdout written to outdir (inline=False), one backend per run:
``python benchmarks/memory_outdir.py paramiko`` (as root: it starts a 4-address SSHLab).
The figures in docs/reliability.md come from it."""

import os, resource, sys, tempfile, time
import parallax
from parallax.testing import SSHLab
backend = sys.argv[1]
with SSHLab(hosts=4) as lab:
    hosts = [(a, lab.port, lab.user) for a in lab.addresses]
    entries = [parallax.Host(a, port=lab.port, user=lab.user, key=f"{a}-{i}") for i in range(50) for a in lab.addresses]
    out = tempfile.mkdtemp()
    t = time.time()
    res = parallax.run(entries, "head -c 10485760 /dev/zero", backend=backend, ssh_key=lab.client_key,
                       known_hosts=lab.known_hosts, outdir=out, inline=False, limit=32, timeout=120)
    bad = [r for r in res.values() if isinstance(r, parallax.Error)]
    sizes = {os.path.getsize(os.path.join(out, k)) for k in res}
    print(backend, "errors", len(bad), "sizes", sizes, "maxrss MiB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, f"{time.time()-t:.1f}s")
