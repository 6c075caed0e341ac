"""Benchmark parallax against its peers on this machine, in one run: ``python benchmarks/run.py``.

Starts a private sshd lab on loopback, (once) builds a virtualenv with the
peers from PyPI, runs every (configuration, workload) pair ``--repeat`` times,
each time in a fresh driver process, checks every host's result, and writes
``benchmarks/RESULTS.md`` and ``benchmarks/results.json``.  See README.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
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
from labs import Lab, LatencyLab
from rtt_count import summarise_capture
from procs import Sampler, children_of, cpu_with_children_s, machine_busy_s, make_subreaper, proc_name, tree
from report import summarise_all, write_markdown

VENV = os.path.join(HERE, ".venv-peers")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
#: What the peers' venv holds; changing this list rebuilds the venv.
PEER_REQUIREMENTS = ["parallel-ssh", "fabric", "asyncssh", "parallax==1.0.6"]
RUN_TIMEOUT = 300.0  # seconds before a driver process is killed and the run counts as FAILED


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


#: This checkout's backends, each measured as a module call, a Session and a persistent-shell Session.
BACKENDS = ("openssh", "paramiko", "asyncssh", "libssh2")


def configs() -> list[Config]:
    """Every configuration; parallax Sessions on one-call workloads are the cheap ones only."""
    out = []
    for backend in BACKENDS:
        out.append(Config(f"parallax {backend} (module call)", "parallax_new", f"{backend}/module", False,
                          ("W1", "W2", "W3", "W4", "W6", "W7", "W8", "W10")))
        out.append(Config(f"parallax {backend} (Session)", "parallax_new", f"{backend}/session", False,
                          ("W1", "W5", "W6", "W9")))
    for backend in BACKENDS:
        out.append(Config(f"parallax {backend} (Session, persistent shell)", "parallax_new", f"{backend}/shell",
                          False, ("W5", "W9")))
    every = tuple(f"W{i}" for i in range(1, 11))
    out += [
        Config("parallel-ssh ParallelSSHClient", "pssh", "", True, every,
               "native client (ssh2-python/libssh2); host keys checked by hand (libssh2 knownhost API); "
               "W4 via copy_file (SFTP)"),
        Config("Fabric (Connections, limit)", "fabric", "", True, every,
               "a group's Connections through ThreadPoolExecutor(limit) (ThreadingGroup has no limit); "
               "W4 via Connection.put (SFTP)"),
        Config("asyncssh by hand", "asyncssh_raw", "", True, every,
               "Semaphore(limit) + connect + run; W4 via SFTP put"),
        Config("parallax 1.0.6 (PyPI)", "parallax106", "", True, every,
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


# ----------------------------------------------------------------------------
# one measurement


class Runner:
    """Runs driver processes one at a time and records whole-process figures."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.seq = 0
        self.current: subprocess.Popen[bytes] | None = None
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

    def measure(self, cfg: Config, wl: Workload, lab: Lab, known_hosts: str | None = None) -> dict[str, Any]:
        t_begin = time.perf_counter()
        rec = self._measure(cfg, wl, lab, known_hosts or lab.lab.known_hosts)
        rec["overhead_s"] = time.perf_counter() - t_begin - rec.get("wall", 0.0)
        return rec

    def _measure(self, cfg: Config, wl: Workload, lab: Lab, known_hosts: str) -> dict[str, Any]:
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
        lab.before_run()

        busy0, server0, self0 = machine_busy_s(), cpu_with_children_s(lab.listeners), time.process_time()
        link0 = lab.forwarder_cpu()
        if wl.count_rtts:
            lab.start_capture()
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
        packets = lab.stop_capture() if wl.count_rtts else []
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
            "peak_procs": sampler.peak_procs, "peak_fds": sampler.peak_fds, "exit": proc.returncode,
            "server_cpu": server_cpu, "machine_busy": busy, "rtt": lab.rtt,
        }
        link_cpu = lab.forwarder_cpu() - link0
        if lab.rtt:
            rec["link_cpu"] = link_cpu
        rec["other_cpu"] = max(0.0, busy - server_cpu - client_cpu - own_cpu - link_cpu)
        try:
            with open(spec.out_path) as f:
                report = json.load(f)
        except (OSError, ValueError):
            why = (f"killed after {RUN_TIMEOUT:.0f} s (no result)" if self.killed
                   else f"driver exited {proc.returncode} without a report")
            report = {"ok": False, "error": why}
        rec.update(report)
        if wl.count_rtts and rec.get("ok") and len(rec.get("marks", ())) >= 2:
            rec.update(summarise_capture(packets, lab.rtt, rec["marks"], addrs))
        if "maxrss_kib" in report:
            rec["rss_mib"] = report.pop("maxrss_kib") / 1024
            rec.pop("maxrss_kib", None)
        if not rec.get("ok"):
            with open(log_path, "rb") as f:
                tail = f.read()[-3000:].decode(errors="replace").strip()
            if tail:
                rec["log_tail"] = tail
        leftovers = [p for p in children_of(os.getpid()) if p not in lab.own_pids()]
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

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
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


def host_key_preflight(runner: Runner, lab: Lab, cfgs: list[Config], workdir: str) -> dict[str, dict[str, Any]]:
    """Every configuration must refuse hosts whose key differs from known_hosts (proves nobody skips the check)."""
    wrong = wrong_known_hosts(lab, workdir)
    wl = Workload("HK", "`true` on {n} hosts whose known_hosts entry holds another key", "run", 4, 4, "true")
    out: dict[str, dict[str, Any]] = {}
    for cfg in cfgs:
        rec = runner.measure(cfg, wl, lab, known_hosts=wrong)
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


def lab_key(wl: Workload) -> str:
    """Which lab a workload runs in: W1-W5 loopback, W6-W9 latency, W10 a big loopback lab of its own."""
    return "latency" if wl.rtt else "big" if wl.big_lab else "loopback"


def make_labs(wls: list[Workload]) -> dict[str, Lab]:
    """One (not yet started) lab per lab key, sized for the largest workload it serves."""
    labs: dict[str, Lab] = {}
    for key in dict.fromkeys(lab_key(w) for w in wls):
        mine = [w for w in wls if lab_key(w) == key]
        n_main = max([w.hosts for w in mine if not w.chroot_hosts] or [1])
        n_chroot = max([w.hosts for w in mine if w.chroot_hosts] or [0])
        rtts = {w.rtt for w in mine}
        labs[key] = (LatencyLab(max(n_main, 4), n_chroot, rtts.pop(), name=key) if key == "latency"
                     else Lab(max(n_main, 4), n_chroot, name=key))
    return labs


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
    labs = make_labs(wls)
    workdir = tempfile.mkdtemp(prefix="parallax-bench-")
    records: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    runner = None
    preflight: dict[str, dict[str, Any]] = {}
    lab_info: dict[str, dict[str, Any]] = {}
    try:
        runner = Runner(workdir)
        for i, wl in enumerate(wls):
            key = lab_key(wl)
            lab = labs[key]
            if lab.lab is None or not lab.lab.running:
                lab.start()
                lab_info[key] = {"hosts": len(lab.main) + len(lab.chrooted), "chrooted": len(lab.chrooted),
                                 "rtt": lab.rtt, "sshd": len(lab.listeners)}
                log(f"{key} lab: {len(lab.main) + len(lab.chrooted)} hosts on port {lab.lab.port} "
                    f"({len(lab.chrooted)} chrooted)" + (f", {lab.rtt * 1000:g} ms RTT" if lab.rtt else ""))
                if not preflight:
                    preflight = host_key_preflight(runner, lab, cfgs, workdir)
            todo = [c for c in cfgs if wl.name in c.workloads]
            failed_first: set[str] = set()
            for rep in range(min(repeat, wl.max_repeat) if wl.max_repeat else repeat):
                # Rotate the order every round so no configuration always runs first or last.
                order = todo[rep % len(todo):] + todo[: rep % len(todo)] if todo else []
                for cfg in order:
                    if cfg.label in failed_first:
                        continue
                    rec = runner.measure(cfg, wl, lab)
                    rec["rep"] = rep + 1
                    records.append(rec)
                    if rec.get("version"):
                        versions[cfg.driver] = rec["version"]
                    if rec.get("ok"):
                        extra = (f" first {rec['first']:.3f}s repeat {rec['repeat_mean']:.3f}s"
                                 if wl.kind == "repeat" else "")
                        if "rtts_first" in rec:
                            extra += f" RTTs {rec['rtts_first']}" + (f"/{rec['rtts_repeat']}"
                                                                      if "rtts_repeat" in rec else "")
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
            if all(lab_key(w) != key for w in wls[i + 1:]):
                lab.stop()
    except KeyboardInterrupt:
        log("interrupted: stopping the lab and cleaning up")
        if runner is not None:
            runner.kill_current()
        interrupted = True
    else:
        interrupted = False
    finally:
        for lab in labs.values():
            lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = summarise_all(records, wls, cfgs)
    cmd = "python benchmarks/run.py" + (" --quick" if args.quick else "") + (
        f" --repeat {args.repeat}" if args.repeat is not None else "")
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": cmd, "repeat": repeat, "quick": args.quick, "elapsed_s": time.time() - started,
        "interrupted": interrupted, "machine": machine_info(), "versions": versions,
        "lab": lab_info.get("loopback", {}), "labs": lab_info,
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
