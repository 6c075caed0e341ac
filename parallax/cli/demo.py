"""``parallax demo``: a tour on throwaway local SSH hosts.

Starts a few real SSH hosts through :mod:`parallax.testing` (OpenSSH sshd when
it can, the embedded asyncssh host otherwise), runs call, run, copy and
slurp on them, prints the results and cleans up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from typing import Any

import parallax


def _start_hosts(n: int, prefer: str) -> Any:
    from ..testing.sshd import SSHLab, can_start_sshd

    ok, why = can_start_sshd()
    if prefer != "embedded" and ok:
        return SSHLab(hosts=n).start(), "OpenSSH sshd"
    if prefer == "sshd":
        raise SystemExit(f"cannot start sshd: {why}")
    try:
        from ..testing.embedded import EmbeddedSSHHost
    except ImportError as e:
        raise SystemExit(f"cannot start sshd ({why}) and the embedded host is unavailable: {e}") from None
    kind = "embedded asyncssh host" if prefer == "embedded" else f"embedded asyncssh host (sshd unavailable: {why})"
    return EmbeddedSSHHost(hosts=n).start(), kind


def _show(title: str, results: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for host, r in results.items():
        if isinstance(r, parallax.Error):
            print(f"  {host:<22} {type(r).__name__}: {r}")
            continue
        rc, out, err = r[0], r[1], r[2]
        text = out.decode(errors="replace").strip().replace("\n", " | ")
        extra = f" -> {r.path}" if len(r) == 4 else ""
        errs = f"  stderr: {err.decode(errors='replace').strip()}" if err.strip() else ""
        print(f"  {host:<22} rc={rc} {text}{extra}{errs}")


def demo(args: argparse.Namespace) -> int:
    """Run the tour; return a process exit status."""
    lab, kind = _start_hosts(args.hosts, args.host_kind)
    try:
        print(f"Started {len(lab.hosts)} throwaway SSH hosts ({kind}): {', '.join(lab.hosts)}")
        print(f"Backend: {args.backend or ('openssh' if shutil.which('ssh') else 'asyncssh')}")
        opts = parallax.Options()
        opts.ssh_key = lab.client_key
        opts.known_hosts = lab.known_hosts
        opts.default_user = lab.user
        # The default backend needs the ssh client; without it, tour with asyncssh.
        opts.backend = args.backend or (None if shutil.which("ssh") else "asyncssh")
        opts.timeout = 20
        hosts = list(lab.hosts)

        _show("call: hostname and the address each host was reached on",
              parallax.call(hosts, 'set -- $SSH_CONNECTION; echo "$(id -un)@$(hostname), reached on $3"', opts))
        _show("call: a failing command is an Error",
              parallax.call(hosts[:1], "echo about to fail >&2; exit 3", opts))
        _show("run: every exit status is a result", parallax.run(hosts[:2], "exit 3", opts))
        dead = f"{lab.addresses[0]}:1"
        _show("call: one dead host does not hide the others", parallax.call([hosts[0], dead], "true", opts))

        with tempfile.TemporaryDirectory(prefix="parallax-demo-") as tmp:
            src = os.path.join(tmp, "greeting.txt")
            with open(src, "w") as f:
                f.write("hello from parallax\n")
            remote = f"/tmp/parallax-demo-{os.getpid()}.txt"
            _show(f"copy: {src} -> {remote}", parallax.copy(hosts, src, remote, opts))
            opts.localdir = os.path.join(tmp, "slurped")
            _show(f"slurp: {remote} -> <localdir>/<host>/greeting.txt",
                  parallax.slurp(hosts, remote, "greeting.txt", opts))
            parallax.call(hosts, f"rm -f {remote}", opts)
        print("\nDone; the hosts are stopped and their files removed.")
        return 0
    finally:
        lab.stop()


__all__ = ["demo"]
