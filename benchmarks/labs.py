"""The benchmark labs: sshd hosts on loopback, or behind a 50 ms link in a network namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any

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
    """One SSHLab on loopback: ``main`` addresses for the command workloads, plus the copy workloads'
    addresses whose sessions are chrooted (one directory per address: distinct file systems)."""

    rtt = 0.0

    def __init__(self, n_main: int, n_chroot: int, name: str = "loopback") -> None:
        from parallax.testing.sshd import SSHLab

        self.name = name
        self.n_main, self.n_chroot = n_main, n_chroot
        self.chroot_base = os.path.join(safe_chroot_base(), name)
        self.main: list[str] = []
        self.chrooted: list[str] = []
        self.listeners: set[int] = set()
        self.lab: Any = SSHLab(hosts=n_main + n_chroot, max_startups="1000:30:2000")
        self.lab.extra_config = self._chroot_config(self.lab.addresses)

    def _chroot_config(self, addresses: list[str]) -> str:
        """Split *addresses* into main and chrooted ones, make the chroots, return the sshd_config blocks."""
        self.main, self.chrooted = addresses[: self.n_main], addresses[self.n_main:]
        if os.path.exists(self.chroot_base):
            shutil.rmtree(self.chroot_base)
        os.makedirs(self.chroot_base, mode=0o755)
        os.chmod(os.path.dirname(self.chroot_base), 0o755)
        blocks = []
        for addr in self.chrooted:
            up = os.path.join(self.chroot_dir(addr), "up")
            os.makedirs(up)
            os.chmod(self.chroot_dir(addr), 0o755)
            blocks += [f"Match LocalAddress {addr}", f"    ChrootDirectory {self.chroot_dir(addr)}"]
        return "\n".join(blocks)

    def _own_chroots(self) -> None:
        """The login account (created by the lab's start) owns every chroot's upload directory."""
        import pwd

        pw = pwd.getpwnam(self.lab.user)
        for addr in self.chrooted:
            up = os.path.join(self.chroot_dir(addr), "up")
            os.chown(up, pw.pw_uid, pw.pw_gid)
            os.chmod(up, 0o755)

    def chroot_dir(self, addr: str) -> str:
        return os.path.join(self.chroot_base, addr)

    def start(self) -> None:
        self.lab.start()
        self._own_chroots()
        self.listeners = set(self.lab.listener_pids())

    def stop(self) -> None:
        self.lab.stop()
        shutil.rmtree(self.chroot_base, ignore_errors=True)

    def forwarder_cpu(self) -> float:
        """CPU seconds of the link's forwarder so far (none on loopback)."""
        return 0.0

    def before_run(self) -> None:
        """Make every run start from the same state (nothing on loopback)."""

    def start_capture(self) -> None:
        raise RuntimeError(f"the {self.name} lab has no link to capture packets on")

    def stop_capture(self) -> list[Any]:
        raise RuntimeError(f"the {self.name} lab has no link to capture packets on")

    def own_pids(self) -> set[int]:
        """The lab's own processes among this script's children (never a driver's leftovers)."""
        return self.listeners

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


class LatencyLab(Lab):
    """The same hosts inside a network namespace behind a user-space link of round-trip time *rtt*
    (:class:`parallax.testing.faults.FaultLab`, with TCP segmentation offload so bulk copies are not
    bound by the forwarder; no loss)."""

    def __init__(self, n_main: int, n_chroot: int, rtt: float, name: str = "latency") -> None:
        from parallax.testing.faults import FaultLab

        self.name = name
        self.n_main, self.n_chroot = n_main, n_chroot
        self.rtt = rtt
        self.chroot_base = os.path.join(safe_chroot_base(), name)
        self.main, self.chrooted = [], []
        self.listeners = set()
        self.fault = FaultLab(hosts=n_main + n_chroot, rtt=rtt, blackholed=0, offload=True,
                              extra_config=self._chroot_config)
        self.lab = None

    def start(self) -> None:
        self.fault.start()
        self.lab = self.fault.lab
        self._own_chroots()
        self.listeners = set(self.lab.listener_pids())

    def stop(self) -> None:
        self.fault.stop()
        shutil.rmtree(self.chroot_base, ignore_errors=True)

    def forwarder_cpu(self) -> float:
        return self.fault.forwarder_cpu() if self.lab is not None else 0.0

    def own_pids(self) -> set[int]:
        return self.listeners | {p for p in [self.fault.forwarder_pid] if p is not None}

    def before_run(self) -> None:
        """Forget the TCP metrics (ssthresh, cwnd, RTT) the kernel cached for the lab's addresses on
        both ends, so every run starts its connections cold, as the first one did."""
        net = self.main[0].rsplit(".", 1)[0] + ".0/24"
        subprocess.run(["ip", "tcp_metrics", "flush", net], capture_output=True, check=False)
        subprocess.run(["ip", "-n", self.fault.namespace, "tcp_metrics", "flush", "all"], capture_output=True,
                       check=False)

    def start_capture(self) -> None:
        self.fault.start_capture()

    def stop_capture(self) -> list[Any]:
        return self.fault.stop_capture()
