"""The benchmark labs: sshd hosts on loopback, or behind a 50 ms link in a network namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from common import W4_REMOTE

HERE = os.path.dirname(os.path.abspath(__file__))
LAB_DIR = os.path.join(HERE, ".lab")
QUIET_TIMEOUT = 15.0  # seconds to wait for the lab's sshd sessions of the previous run to end


def safe_chroot_base() -> str:
    """A directory for W4's chroots whose every path component is root-owned and not group/world-writable."""

    def safe(path: str) -> bool:
        path = os.path.abspath(path)
        while True:
            st = os.stat(path)
            if st.st_uid != 0 or st.st_mode & 0o022:
                return False
            if path == "/":
                return True
            path = os.path.dirname(path)

    os.makedirs(LAB_DIR, mode=0o755, exist_ok=True)
    os.chmod(LAB_DIR, 0o755)
    if safe(LAB_DIR):
        return os.path.join(LAB_DIR, "chroot")
    return "/run/parallax-bench-chroot"


class Lab:
    """One SSHLab: ``main`` addresses for W1-W3/W5, plus W4's addresses whose sessions are chrooted."""

    def __init__(self, n_main: int, n_chroot: int) -> None:
        from parallax.testing.sshd import SSHLab

        self.lab = SSHLab(hosts=n_main + n_chroot, max_startups="1000:30:2000")
        self.main = self.lab.addresses[:n_main]
        self.chrooted = self.lab.addresses[n_main:]
        self.chroot_base = safe_chroot_base()
        blocks = []
        for addr in self.chrooted:
            blocks += [f"Match LocalAddress {addr}", f"    ChrootDirectory {self.chroot_dir(addr)}"]
        self.lab.extra_config = "\n".join(blocks)

    def chroot_dir(self, addr: str) -> str:
        return os.path.join(self.chroot_base, addr)

    def start(self) -> None:
        import pwd

        if os.path.exists(self.chroot_base):
            shutil.rmtree(self.chroot_base)
        os.makedirs(self.chroot_base, mode=0o755)
        pw = pwd.getpwnam(self.lab.user)
        for addr in self.chrooted:
            os.makedirs(os.path.join(self.chroot_dir(addr), "up"))
            os.chmod(self.chroot_dir(addr), 0o755)
            up = os.path.join(self.chroot_dir(addr), "up")
            os.chown(up, pw.pw_uid, pw.pw_gid)
            os.chmod(up, 0o755)
        self.lab.start()
        self.listeners = set(self.lab.listener_pids())

    def stop(self) -> None:
        self.lab.stop()
        shutil.rmtree(self.chroot_base, ignore_errors=True)

    def sessions(self) -> int:
        """sshd processes serving connections (everything below the listeners)."""
        return len(self.lab.pids()) - len(self.listeners)

    def wait_quiet(self) -> None:
        deadline = time.monotonic() + QUIET_TIMEOUT
        while self.sessions() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)

    def w4_paths(self) -> dict[str, str]:
        return {a: os.path.join(self.chroot_dir(a), W4_REMOTE.lstrip("/")) for a in self.chrooted}

    def w4_clean(self) -> None:
        for path in self.w4_paths().values():
            if os.path.exists(path):
                os.unlink(path)

    def w4_verify(self, addresses: list[str], digest: str) -> None:
        """One ssh command (to an unchrooted lab host) hashes every host's copy (BLAKE2b); raises on any mismatch."""
        paths = self.w4_paths()
        argv = self.lab.ssh_argv(self.main[0], "b2sum -- " + " ".join(paths[a] for a in addresses))
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        got = {}
        for line in proc.stdout.splitlines():
            h, _, path = line.partition("  ")
            got[path] = h
        problems = []
        for a in addresses:
            if got.get(paths[a]) != digest:
                problems.append(f"{a}: {'missing' if paths[a] not in got else 'checksum mismatch'}")
        if problems:
            raise AssertionError(f"{len(problems)}/{len(addresses)} hosts have no correct copy: "
                                 + "; ".join(problems[:5]) + (f"; stderr: {proc.stderr.strip()[:300]}"
                                                              if proc.stderr.strip() else ""))
