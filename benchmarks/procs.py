"""Process figures for the benchmark harness: descendants, CPU, PSS and open files of a driver's tree."""

from __future__ import annotations

import ctypes
import os
import threading

TICK = os.sysconf("SC_CLK_TCK")


def make_subreaper() -> None:
    """Orphans of a driver (processes it left running) become our children, so they can be found."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def children_of(pid: int) -> list[int]:
    """Direct children of *pid* (all of its threads)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def tree(pid: int) -> list[int]:
    """*pid* and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children_of(p)
    return out


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def proc_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:160]
    except OSError:
        return "?"



def machine_busy_s() -> float:
    """CPU seconds the whole machine spent not idle since boot (all cores)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICK


def cpu_with_children_s(pids: set[int]) -> float:
    """utime+stime of *pids* plus that of their reaped descendants."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
            total += sum(int(x) for x in rest[11:15])
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def open_fds(pid: int) -> int:
    """File descriptors *pid* has open (0 if it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Sampler(threading.Thread):
    """Peak proportional set size (PSS) and open file descriptors of a driver and its child
    processes, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.peak_procs = 0
        self.peak_fds = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            pids = tree(self.pid)
            total = sum(pss_kib(p) for p in pids)
            self.peak_kib = max(self.peak_kib, total)
            self.peak_procs = max(self.peak_procs, len(pids))
            self.peak_fds = max(self.peak_fds, sum(open_fds(p) for p in pids))
            self.stop_event.wait(0.1)
