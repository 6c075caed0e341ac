"""Benchmark parallax against its peers on this machine, in one run: ``python benchmarks/run.py``.

Starts a private sshd lab on loopback, (once) builds a virtualenv with the
peers from PyPI, runs every (configuration, workload) pair ``--repeat`` times,
each time in a fresh driver process, checks every host's result, and writes
``benchmarks/RESULTS.md`` and ``benchmarks/results.json``.  See README.md.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, ROOT)

from common import W4_REMOTE, Spec, Workload, w4_payload, workloads

VENV = os.path.join(HERE, ".venv-peers")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
#: What the peers' venv holds; changing this list rebuilds the venv.
PEER_REQUIREMENTS = ["parallel-ssh", "fabric", "asyncssh", "parallax==1.0.6"]
LAB_DIR = os.path.join(HERE, ".lab")
RUN_TIMEOUT = 300.0  # seconds before a driver process is killed and the run counts as FAILED
QUIET_TIMEOUT = 15.0  # seconds to wait for the lab's sshd sessions of the previous run to end


@dataclass(frozen=True)
class Config:
    """One benchmarked configuration: a driver module, its config string, and which interpreter runs it."""

    label: str
    driver: str
    config: str
    peer: bool  # True: a peer library (runs in the venv); False: this checkout's parallax
    workloads: tuple[str, ...]
    note: str = ""

    @property
    def python(self) -> str:
        return VENV_PYTHON if self.peer else sys.executable


def configs() -> list[Config]:
    """Every configuration; parallax Sessions on one-call workloads are the cheap ones only."""
    out = []
    for backend in ("openssh", "paramiko", "asyncssh"):
        out.append(Config(f"parallax {backend} (module call)", "parallax_new", f"{backend}/module", False,
                          ("W1", "W2", "W3", "W4")))
        out.append(Config(f"parallax {backend} (Session)", "parallax_new", f"{backend}/session", False,
                          ("W1", "W5")))
    for backend in ("openssh", "paramiko", "asyncssh"):
        out.append(Config(f"parallax {backend} (Session, persistent shell)", "parallax_new", f"{backend}/shell",
                          False, ("W5",)))
    out += [
        Config("parallel-ssh ParallelSSHClient", "pssh", "", True, ("W1", "W2", "W3", "W4", "W5"),
               "native client (ssh2-python/libssh2); host keys checked by hand (libssh2 knownhost API); "
               "W4 via copy_file (SFTP)"),
        Config("Fabric ThreadingGroup", "fabric", "", True, ("W1", "W2", "W3", "W4", "W5"),
               "no concurrency limit: all hosts of the group at once; W4 via Group.put (SFTP)"),
        Config("asyncssh by hand", "asyncssh_raw", "", True, ("W1", "W2", "W3", "W4", "W5"),
               "Semaphore(limit) + connect + run; W4 via SFTP put"),
        Config("parallax 1.0.6 (PyPI)", "parallax106", "", True, ("W1", "W2", "W3", "W4", "W5"),
               "ssh/scp -C subprocesses; no sessions, so every W5 call reconnects"),
    ]
    return out


# ----------------------------------------------------------------------------
# environment


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ensure_venv() -> None:
    """Create (once) the peers' virtualenv; reuse it while PEER_REQUIREMENTS is unchanged."""
    stamp = os.path.join(VENV, ".parallax-bench-requirements")
    wanted = "\n".join(PEER_REQUIREMENTS) + "\n"
    if os.path.exists(VENV_PYTHON) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == wanted:
                return
    log(f"creating the peers' virtualenv in {VENV} (once)")
    if os.path.exists(VENV):
        shutil.rmtree(VENV)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    pip = subprocess.run([VENV_PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          *PEER_REQUIREMENTS], capture_output=True, text=True, check=False)
    if pip.returncode != 0:
        raise SystemExit(f"pip install {' '.join(PEER_REQUIREMENTS)} failed:\n{pip.stdout}{pip.stderr}")
    with open(stamp, "w") as f:
        f.write(wanted)


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


TICK = os.sysconf("SC_CLK_TCK")


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


class Sampler(threading.Thread):
    """Peak proportional set size (PSS) of a driver and its child processes, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.peak_procs = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            pids = tree(self.pid)
            total = sum(pss_kib(p) for p in pids)
            self.peak_kib = max(self.peak_kib, total)
            self.peak_procs = max(self.peak_procs, len(pids))
            self.stop_event.wait(0.1)


# ----------------------------------------------------------------------------
# the lab


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


# ----------------------------------------------------------------------------
# one measurement


class Runner:
    """Runs driver processes one at a time and records whole-process figures."""

    def __init__(self, lab: Lab, workdir: str) -> None:
        self.lab = lab
        self.workdir = workdir
        self.seq = 0
        self.current: subprocess.Popen | None = None
        self.killed = False
        self.local_file = os.path.join(workdir, "w4.bin")
        payload = w4_payload()
        with open(self.local_file, "wb") as f:
            f.write(payload)
        os.chmod(self.local_file, 0o644)
        self.digest = hashlib.blake2b(payload).hexdigest()

    def env(self, cfg: Config) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PARALLAX_", "PYTHON", "SSH_"))}
        if not cfg.peer:
            env["PYTHONPATH"] = ROOT
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def measure(self, cfg: Config, wl: Workload, known_hosts: str | None = None) -> dict[str, Any]:
        t_begin = time.perf_counter()
        rec = self._measure(cfg, wl, known_hosts or self.lab.lab.known_hosts)
        rec["overhead_s"] = time.perf_counter() - t_begin - rec.get("wall", 0.0)
        return rec

    def _measure(self, cfg: Config, wl: Workload, known_hosts: str) -> dict[str, Any]:
        lab = self.lab
        addrs = lab.chrooted[: wl.hosts] if wl.chroot_hosts else lab.main[: wl.hosts]
        self.seq += 1
        tag = f"{self.seq:04d}"
        spec = Spec(driver=cfg.driver, config=cfg.config, workload=wl.__dict__, addresses=addrs, port=lab.lab.port,
                    user=lab.lab.user, client_key=lab.lab.client_key, known_hosts=known_hosts,
                    local_file=self.local_file, out_path=os.path.join(self.workdir, f"report-{tag}.json"),
                    extra={"remote": W4_REMOTE})
        spec_path = os.path.join(self.workdir, f"spec-{tag}.json")
        with open(spec_path, "w") as f:
            json.dump(spec.to_json(), f)
        log_path = os.path.join(self.workdir, f"driver-{tag}.log")
        if wl.kind == "put":
            lab.w4_clean()
        lab.wait_quiet()

        busy0, server0, self0 = machine_busy_s(), cpu_with_children_s(lab.listeners), time.process_time()
        t0 = time.perf_counter()
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen([cfg.python, os.path.join(HERE, "driver.py"), spec_path], env=self.env(cfg),
                                    cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                    start_new_session=True)
        self.current = proc
        self.killed = False
        sampler = Sampler(proc.pid)
        sampler.start()
        timer = threading.Timer(RUN_TIMEOUT, self._kill, (proc,))
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            sampler.stop_event.set()
            sampler.join()
            self.current = None
        proc.returncode = os.waitstatus_to_exitcode(status)
        total_wall = time.perf_counter() - t0
        lab.wait_quiet()  # the server's CPU for this run is counted once its sessions are reaped
        busy = machine_busy_s() - busy0
        server_cpu = cpu_with_children_s(lab.listeners) - server0
        own_cpu = time.process_time() - self0
        client_cpu = ru.ru_utime + ru.ru_stime
        rec: dict[str, Any] = {
            "config": cfg.label, "workload": wl.name, "hosts": len(addrs), "limit": wl.limit,
            "process_wall": total_wall, "cpu_process": ru.ru_utime + ru.ru_stime,
            "cpu_process_user": ru.ru_utime, "cpu_process_sys": ru.ru_stime,
            "maxrss_tree_max_mib": ru.ru_maxrss / 1024, "peak_pss_mib": sampler.peak_kib / 1024,
            "peak_procs": sampler.peak_procs, "exit": proc.returncode,
            "server_cpu": server_cpu, "machine_busy": busy,
            "other_cpu": max(0.0, busy - server_cpu - client_cpu - own_cpu),
        }
        try:
            with open(spec.out_path) as f:
                report = json.load(f)
        except (OSError, ValueError):
            why = (f"killed after {RUN_TIMEOUT:.0f} s (no result)" if self.killed
                   else f"driver exited {proc.returncode} without a report")
            report = {"ok": False, "error": why}
        rec.update(report)
        if "maxrss_kib" in report:
            rec["rss_mib"] = report.pop("maxrss_kib") / 1024
            rec.pop("maxrss_kib", None)
        if not rec.get("ok"):
            with open(log_path, "rb") as f:
                tail = f.read()[-3000:].decode(errors="replace").strip()
            if tail:
                rec["log_tail"] = tail
        leftovers = [p for p in children_of(os.getpid()) if p not in lab.listeners]
        if leftovers:
            rec["leftover_processes"] = [proc_name(p) for p in leftovers]
            for p in leftovers:
                try:
                    os.kill(p, signal.SIGKILL)
                    os.waitpid(p, 0)
                except OSError:
                    pass
        if wl.kind == "put":
            if rec.get("ok"):
                try:
                    lab.w4_verify(addrs, self.digest)
                except AssertionError as e:
                    rec["ok"] = False
                    rec["error"] = f"WRONG RESULT (remote files): {e}"
            lab.w4_clean()
        return rec

    def _kill(self, proc: subprocess.Popen) -> None:
        self.killed = True
        log(f"!! driver {proc.pid} still running after {RUN_TIMEOUT:.0f} s: killing it and its children")
        for p in reversed(tree(proc.pid)):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass

    def kill_current(self) -> None:
        if self.current is not None and self.current.returncode is None:
            self._kill(self.current)


HOST_KEY_REFUSAL = re.compile(r"host.?key|known.?host|not trusted|mismatch|verif|identification has changed",
                              re.IGNORECASE)


def wrong_known_hosts(lab: Lab, workdir: str) -> str:
    """A copy of the lab's known_hosts with every host's key replaced by a freshly generated one."""
    key = os.path.join(workdir, "impostor_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    with open(key + ".pub") as f:
        impostor = " ".join(f.read().split()[:2])
    path = os.path.join(workdir, "wrong_known_hosts")
    with open(lab.lab.known_hosts) as src, open(path, "w") as out:
        for line in src:
            if line.strip():
                out.write(f"{line.split()[0]} {impostor}\n")
    return path


def host_key_preflight(runner: Runner, cfgs: list[Config], workdir: str) -> dict[str, dict[str, Any]]:
    """Every configuration must refuse hosts whose key differs from known_hosts (proves nobody skips the check)."""
    wrong = wrong_known_hosts(runner.lab, workdir)
    wl = Workload("HK", "`true` on {n} hosts whose known_hosts entry holds another key", "run", 4, 4, "true")
    out: dict[str, dict[str, Any]] = {}
    for cfg in cfgs:
        rec = runner.measure(cfg, wl, known_hosts=wrong)
        error = rec.get("error") or ""
        refused = not rec.get("ok") and bool(HOST_KEY_REFUSAL.search(error + rec.get("traceback", "")))
        out[cfg.label] = {"refused": refused, "error": error[:400]}
        if refused:
            log(f"host-key preflight {cfg.label}: refused ({error[:120]})")
        else:
            log(f"!! host-key preflight {cfg.label}: NOT REFUSED as expected: ok={rec.get('ok')} {error[:300]}")
    return out


# ----------------------------------------------------------------------------
# results


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine_info() -> dict[str, Any]:
    def read(path: str) -> str:
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""

    cpu = re.search(r"^model name\s*:\s*(.*)$", read("/proc/cpuinfo"), re.MULTILINE)
    mem = re.search(r"^MemTotal:\s*(\d+)", read("/proc/meminfo"), re.MULTILINE)
    osr = re.search(r'^PRETTY_NAME="?([^"\n]*)', read("/etc/os-release"), re.MULTILINE)
    ssh_v = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False).stderr.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu.group(1).strip() if cpu else platform.processor(),
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "os": osr.group(1) if osr else platform.platform(),
        "kernel": platform.release(),
        "openssh": ssh_v,
        "python": platform.python_version(),
        "python_peers": subprocess.run([VENV_PYTHON, "-c", "import platform; print(platform.python_version())"],
                                       capture_output=True, text=True, check=False).stdout.strip(),
        "paramiko": subprocess.run([sys.executable, "-c", "import paramiko; print(paramiko.__version__)"],
                                   capture_output=True, text=True, check=False).stdout.strip(),
        "asyncssh": subprocess.run([sys.executable, "-c", "import asyncssh; print(asyncssh.__version__)"],
                                   capture_output=True, text=True, check=False).stdout.strip(),
    }


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric figure over the successful runs of one (config, workload)."""
    ok = [r for r in records if r.get("ok")]
    failed = [r for r in records if not r.get("ok")]
    keys = ["wall", "close", "work_wall", "cpu_work", "cpu_process", "rss_mib", "peak_pss_mib", "import_s",
            "startup_s", "process_wall", "first", "repeat_mean", "peak_procs", "server_cpu", "other_cpu"]
    out: dict[str, Any] = {"runs": len(records), "ok": len(ok), "failed": len(failed)}
    for k in keys:
        vals = [r[k] for r in ok if r.get(k) is not None]
        if vals:
            out[k] = median(vals)
            if k in ("wall", "first", "repeat_mean"):
                out[f"{k}_range"] = [min(vals), max(vals)]
    if failed:
        out["error"] = failed[0].get("error", "unknown error")
    versions = {r.get("version") for r in records if r.get("version")}
    if versions:
        out["version"] = min(versions)
    leftovers = [p for r in records for p in r.get("leftover_processes", [])]
    if leftovers:
        out["leftover_processes"] = leftovers[:5]
    return out


def summarise_all(records: list[dict[str, Any]], wls: list[Workload],
                  cfgs: list[Config]) -> dict[str, dict[str, dict[str, Any]]]:
    """``summary[workload][configuration label]`` for every pair that ran."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for wl in wls:
        for cfg in cfgs:
            recs = [r for r in records if r["workload"] == wl.name and r["config"] == cfg.label]
            if recs:
                summary.setdefault(wl.name, {})[cfg.label] = summarise(recs)
    return summary


def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def host_key_line(meta: dict[str, Any]) -> str:
    pre = meta.get("host_key_preflight") or {}
    if not pre:
        return "- Host-key preflight: not run."
    bad = [k for k, v in pre.items() if not v["refused"]]
    if not bad:
        return (f"- Host-key preflight: all {len(pre)} configurations refused 4 hosts whose known_hosts entry held "
                "another key (so none of them skips verification).")
    return ("- Host-key preflight: **NOT refused by " + ", ".join(bad) + "** (these configurations do not verify "
            "host keys as set up; their figures are not comparable).")


def write_markdown(path: str, meta: dict[str, Any], wls: list[Workload], cfgs: list[Config],
                   summary: dict[str, dict[str, dict[str, Any]]]) -> None:
    m = meta["machine"]
    lines = [
        "# parallax benchmark results",
        "",
        (f"Generated by `{meta['command']}` on {meta['date']} (total {meta['elapsed_s'] / 60:.1f} min, "
        f"{meta['repeat']} run(s) per cell, median shown)."),
        "",
        "## Machine",
        "",
        f"- {m['nproc']} CPUs: {m['cpu']}; {m['memory_gib']} GiB memory",
        f"- {m['os']}, kernel {m['kernel']}",
        f"- {m['openssh']} (client and the lab's sshd)",
        f"- Python {m['python']} (parallax), {m['python_peers']} (peers' venv)",
        "",
        "## Versions",
        "",
        (f"- parallax (this checkout) {meta['versions'].get('parallax_new', '?')}; paramiko {m['paramiko']}, "
        f"asyncssh {m['asyncssh']} in its interpreter"),
    ]
    for cfg in cfgs:
        if cfg.peer:
            v = meta["versions"].get(cfg.driver, "?")
            lines.append(f"- {cfg.label}: {v}")
    lines += [
        "",
        "## Setup",
        "",
        (f"- One `parallax.testing.SSHLab` on loopback: {meta['lab']['hosts']} addresses (127.0.0.2 ...), one port, "
        "one sshd per 16 addresses, login account with `/bin/sh`, KEX curve25519 only, MaxStartups 1000:30:2000, "
        "MaxSessions 100. Client and server share the same cores, so on loopback the server is often the "
        "bottleneck: compare client CPU as well as wall time."),
        ("- Every library checks host keys against the lab's known_hosts (parallel-ssh has no such option: its "
        "driver checks every host's key with libssh2's known-hosts API after connecting, before the command; "
        "Fabric auto-adds unknown keys by default: its driver gives every connection its host's known_hosts entry "
        "and sets paramiko's RejectPolicy)."),
        (f"- W4 hosts are {meta['lab']['chrooted']} extra addresses whose sessions are chrooted (`Match LocalAddress` "
        "+ `ChrootDirectory`), one directory per address: every host has its own file system for "
        f"`{W4_REMOTE}`, as real hosts do. After each W4 run one untimed ssh command hashes every copy "
        "(`b2sum`) and the files are removed."),
        host_key_line(meta),
        ("- Every run checks every host: exit status 0, exactly 1 MiB of the expected bytes (W3), the copied file's "
        "checksum (W4). A lost or wrong host makes the run FAILED."),
        ("- Each run is a fresh driver process (`benchmarks/driver.py`). **wall s**: inside the driver, from "
        "creating the client (or the first module-level call) to after closing it (interpreter start and imports "
        "excluded; **close s** is the part spent closing). **CPU s**: user+system of the driver and its reaped child "
        "processes (ssh, scp) over the same span. **CPU s (process)**: the whole driver process incl. start-up and "
        "imports (`wait4`). **RSS MiB**: the driver process's peak RSS. **tree PSS MiB**: peak proportional set "
        "size of the driver plus all its child processes (sampled every 100 ms). **server CPU s**: CPU of the "
        "lab's sshd processes serving the run (same cores as the client)."),
        ("- Runs are interleaved (every configuration once, then again), with a pause until the lab's sshd has "
        "no session left between runs."),
        "",
    ]

    def spread(name: str | None, key: str, wl: str, digits: int) -> str:
        lo_hi = summary[wl].get(name or "", {}).get(f"{key}_range")
        return f" ({lo_hi[0]:.{digits}f}–{lo_hi[1]:.{digits}f})" if lo_hi else ""

    def best(names: list[str], key: str, wl: str) -> tuple[str | None, float | None]:
        cands = [(summary[wl][n][key], n) for n in names
                 if n in summary[wl] and summary[wl][n].get("failed", 0) == 0 and summary[wl][n].get(key) is not None]
        if not cands:
            return None, None
        v, n = min(cands)
        return n, v

    ratio_lines = ["## Ratios (best parallax configuration / best peer, wall time; below 1.0 = parallax faster)", "",
                   "Medians; the fastest and slowest run of each side in brackets.", ""]
    for wl in wls:
        if wl.name not in summary:
            continue
        px = [c.label for c in cfgs if not c.peer]
        peers = [c.label for c in cfgs if c.peer]
        if wl.kind == "repeat":
            channels = [c.label for c in cfgs if not c.peer and not c.config.endswith("/shell")]
            for key, what, names in (("first", "first call", px), ("repeat_mean", "repeat call (mean of 4)", px),
                                     ("repeat_mean", "repeat call, one SSH channel per command (no persistent "
                                      "shell)", channels)):
                bn, bv = best(names, key, wl.name)
                pn, pv = best(peers, key, wl.name)
                if bv and pv:
                    ratio_lines.append(f"- **{wl.name} {what}: {bv / pv:.2f}** — {bn} {bv:.3f} s"
                                       f"{spread(bn, key, wl.name, 3)} vs {pn} {pv:.3f} s{spread(pn, key, wl.name, 3)}")
        else:
            bn, bv = best(px, "wall", wl.name)
            pn, pv = best(peers, "wall", wl.name)
            bcn, bcv = best(px, "cpu_work", wl.name)
            pcn, pcv = best(peers, "cpu_work", wl.name)
            if bv and pv:
                cpu = (f"; client CPU {bcv / pcv:.2f} ({bcn} {bcv:.2f} s vs {pcn} {pcv:.2f} s)"
                       if bcv and pcv else "")
                ratio_lines.append(f"- **{wl.name}: {bv / pv:.2f}** — {bn} {bv:.2f} s{spread(bn, 'wall', wl.name, 2)} "
                                   f"vs {pn} {pv:.2f} s{spread(pn, 'wall', wl.name, 2)}{cpu}")
    if "W5" in summary:
        ratio_lines += ["", "W5 first call / repeat call for parallax Sessions:", ""]
        for c in cfgs:
            s = summary["W5"].get(c.label)
            if not c.peer and s and s.get("first") and s.get("repeat_mean"):
                ratio_lines.append(f"- {c.label}: {s['first'] / s['repeat_mean']:.1f}× "
                                   f"({s['first']:.3f} s / {s['repeat_mean']:.3f} s)")
    lines += [*ratio_lines, ""]

    for wl in wls:
        if wl.name not in summary:
            continue
        lines += [f"## {wl.name}: {wl.title.format(n=wl.hosts, l=wl.limit)}", ""]
        if wl.kind == "repeat":
            head = ["configuration", "first call s", "repeat call s", "first/repeat", "wall s", "CPU s",
                    "CPU s (process)", "server CPU s", "RSS MiB", "tree PSS MiB", "runs"]
        else:
            head = ["configuration", "wall s", "close s", "CPU s"]
            if wl.name == "W1":
                head.append("CPU ms/host")
            head += ["CPU s (process)", "server CPU s", "RSS MiB", "tree PSS MiB"]
            if wl.kind == "put":
                head.append("MiB/s")
            head.append("runs")
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        notes = []
        for cfg in cfgs:
            if wl.name not in cfg.workloads:
                continue
            s = summary[wl.name].get(cfg.label)
            if s is None:
                continue
            label = cfg.label
            runs = f"{s['ok']}/{s['runs']}"
            if s["failed"]:
                label = f"{label} **FAILED**"
                notes.append(f"- **{cfg.label} FAILED** ({s['failed']}/{s['runs']} runs): {s['error'][:600]}")
            if s.get("leftover_processes"):
                notes.append(f"- {cfg.label} left processes running after it returned: "
                             f"{'; '.join(s['leftover_processes'])}")
            if wl.kind == "repeat":
                fr = s["first"] / s["repeat_mean"] if s.get("first") and s.get("repeat_mean") else None
                row = [label, fmt(s.get("first"), 3), fmt(s.get("repeat_mean"), 3), fmt(fr, 1), fmt(s.get("wall")),
                       fmt(s.get("cpu_work")), fmt(s.get("cpu_process")), fmt(s.get("server_cpu")),
                       fmt(s.get("rss_mib"), 0),
                       fmt(s.get("peak_pss_mib"), 0), runs]
            else:
                row = [label, fmt(s.get("wall")), fmt(s.get("close")), fmt(s.get("cpu_work"))]
                if wl.name == "W1":
                    row.append(fmt(s["cpu_work"] * 1000 / wl.hosts, 1) if s.get("cpu_work") else "–")
                row += [fmt(s.get("cpu_process")), fmt(s.get("server_cpu")), fmt(s.get("rss_mib"), 0),
                        fmt(s.get("peak_pss_mib"), 0)]
                if wl.kind == "put":
                    row.append(fmt(wl.hosts * 10 / s["wall"], 0) if s.get("wall") else "–")
                row.append(runs)
            lines.append("| " + " | ".join(row) + " |")
        na = [c for c in cfgs if wl.name not in c.workloads]
        if na:
            reasons = []
            for c in na:
                if c.config.endswith("/shell"):
                    reasons.append(f"{c.label}: not run (a persistent shell pays off from a Session's second "
                                   "call on; W5 measures it)")
                elif wl.name == "W5":
                    reasons.append(f"{c.label}: n/a (a module-level call opens and closes its connections; "
                                   "W5 measures Sessions)")
                else:
                    reasons.append(f"{c.label}: not run (a Session's first call costs about what the module "
                                   "call does, see W1 and W5; skipped to keep the full run under 15 minutes)")
            lines += [""] + [f"- {r}" for r in reasons]
        if notes:
            lines += ["", *notes]
        lines.append("")
    lines += ["## Machine activity during the runs", ""]
    la = meta.get("loadavg", {})
    lines.append(f"- Load average (1/5/15 min) at start: {la.get('start', '?')}; at end: {la.get('end', '?')}.")
    lines.append("- CPU used on the machine during each run by anything other than the driver, the lab's sshd and "
                 "this script (other users' work disturbs the figures; medians over the workload's runs, max in "
                 "brackets):")
    for wl in wls:
        others = meta.get("run_other_cpu", {}).get(wl.name, [])
        if others:
            lines.append(f"  - {wl.name}: {statistics.median(others):.2f} CPU s per run ({max(others):.2f})")
    lines.append("")
    lines += ["## Notes on the peers", ""]
    lines += [f"- {c.label}: {c.note}" for c in cfgs if c.peer and c.note]
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


# ----------------------------------------------------------------------------


def rewrite_report(out: str) -> int:
    """Rebuild RESULTS.md from the raw runs in ``results.json`` (after a change to the report's layout)."""
    with open(os.path.join(out, "results.json")) as f:
        data = json.load(f)
    meta, records = data["meta"], data["runs"]
    wls = [Workload(**w) for w in meta["workloads"]]
    cfgs = [c for c in configs() if any(r["config"] == c.label for r in records)]
    summary = summarise_all(records, wls, cfgs)
    data["summary"] = summary
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(data, f, indent=1)
    write_markdown(os.path.join(out, "RESULTS.md"), meta, wls, cfgs, summary)
    log(f"rewrote {os.path.join(out, 'RESULTS.md')} from results.json")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=None, help="runs per measurement (default 5; --quick: 1)")
    ap.add_argument("--quick", action="store_true", help="1 run each and smaller host counts (under ~3 minutes)")
    ap.add_argument("--only", default="", help="comma-separated workloads to run, e.g. W1,W5 (debugging)")
    ap.add_argument("--configs", default="", help="comma-separated substrings of configuration labels to run")
    ap.add_argument("--out", default=HERE, help="directory for RESULTS.md and results.json (default benchmarks/)")
    ap.add_argument("--report", action="store_true",
                    help="only rewrite RESULTS.md from the results.json in --out (no measuring)")
    args = ap.parse_args()
    if args.report:
        return rewrite_report(args.out)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 5)
    if repeat < 1:
        ap.error("--repeat must be at least 1")
    if os.geteuid() != 0:
        ap.error("run as root (the lab's sshd logs in a dedicated test account and chroots W4's hosts)")

    wls = workloads(args.quick)
    if args.only:
        wanted = {w.strip().upper() for w in args.only.split(",")}
        wls = [w for w in wls if w.name in wanted]
    cfgs = configs()
    if args.configs:
        subs = [s.strip().lower() for s in args.configs.split(",") if s.strip()]
        cfgs = [c for c in cfgs if any(s in c.label.lower() for s in subs)]

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Also when started in the background by a non-interactive shell, which ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.time()
    load_start = loadavg()
    ensure_venv()
    make_subreaper()
    n_main = max([w.hosts for w in wls if not w.chroot_hosts] or [1])
    n_chroot = max([w.hosts for w in wls if w.chroot_hosts] or [0])
    lab = Lab(n_main, n_chroot)
    workdir = tempfile.mkdtemp(prefix="parallax-bench-")
    records: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    runner = None
    preflight: dict[str, dict[str, Any]] = {}
    try:
        lab.start()
        log(f"lab: {len(lab.lab.addresses)} hosts on port {lab.lab.port} ({n_chroot} chrooted for W4)")
        runner = Runner(lab, workdir)
        preflight = host_key_preflight(runner, cfgs, workdir)
        for wl in wls:
            todo = [c for c in cfgs if wl.name in c.workloads]
            failed_first: set[str] = set()
            for rep in range(repeat):
                # Rotate the order every round so no configuration always runs first or last.
                order = todo[rep % len(todo):] + todo[: rep % len(todo)] if todo else []
                for cfg in order:
                    if cfg.label in failed_first:
                        continue
                    rec = runner.measure(cfg, wl)
                    rec["rep"] = rep + 1
                    records.append(rec)
                    if rec.get("version"):
                        versions[cfg.driver] = rec["version"]
                    if rec.get("ok"):
                        extra = (f" first {rec['first']:.3f}s repeat {rec['repeat_mean']:.3f}s"
                                 if wl.kind == "repeat" else "")
                        log(f"{wl.name} #{rep + 1} {cfg.label}: wall {rec['wall']:.2f}s cpu {rec['cpu_work']:.2f}s"
                            f"{extra} (+{rec['overhead_s']:.2f}s: start {rec['startup_s']:.2f} import "
                            f"{rec['import_s']:.2f} process {rec['process_wall']:.2f})")
                    else:
                        log(f"{wl.name} #{rep + 1} {cfg.label}: FAILED: {rec.get('error')}")
                        print(rec.get("traceback") or rec.get("log_tail") or "", file=sys.stderr, flush=True)
                        if rep == 0:
                            failed_first.add(cfg.label)
                    if rec.get("leftover_processes"):
                        log(f"  !! left processes running: {rec['leftover_processes'][:3]}")
    except KeyboardInterrupt:
        log("interrupted: stopping the lab and cleaning up")
        if runner is not None:
            runner.kill_current()
        interrupted = True
    else:
        interrupted = False
    finally:
        lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = summarise_all(records, wls, cfgs)
    cmd = "python benchmarks/run.py" + (" --quick" if args.quick else "") + (
        f" --repeat {args.repeat}" if args.repeat is not None else "")
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": cmd, "repeat": repeat, "quick": args.quick, "elapsed_s": time.time() - started,
        "interrupted": interrupted, "machine": machine_info(), "versions": versions,
        "lab": {"hosts": n_main + n_chroot, "chrooted": n_chroot},
        "host_key_preflight": preflight,
        "workloads": [w.__dict__ for w in wls],
        "loadavg": {"start": load_start, "end": loadavg()},
        "run_other_cpu": {w.name: [r["other_cpu"] for r in records if r["workload"] == w.name and "other_cpu" in r]
                          for w in wls},
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": records}, f, indent=1)
    write_markdown(os.path.join(args.out, "RESULTS.md"), meta, wls, cfgs, summary)
    failures = [r for r in records if not r.get("ok")]
    failures += [{"hk": k} for k, v in preflight.items() if not v["refused"]]
    log(f"wrote {os.path.join(args.out, 'RESULTS.md')} and results.json in {(time.time() - started) / 60:.1f} min"
        + (f"; {len(failures)} FAILED run(s)" if failures else ""))
    if interrupted:
        return 130
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
