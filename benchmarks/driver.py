"""One measurement in a fresh process: ``python driver.py SPEC.json``.

Imports one library through ``drivers/<name>.py``, runs one workload, checks
every host's result and writes a JSON report to ``spec.out_path``.  Wall time
and CPU are measured here around the work only (interpreter start-up and
imports are reported separately); the parent adds whole-process figures.

Each driver module provides ``load(spec) -> version string`` and a
``Client(spec, addresses, limit)`` with ``run(command)`` -> ``{address: (rc,
stdout) | exception}``, ``put(local, remote)`` -> ``{address: None |
exception}`` and ``close()``.
"""

from __future__ import annotations

import time

T_PROCESS = time.perf_counter()

import gc
import importlib
import json
import os
import resource
import sys
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import W5_CALLS, CheckFailed, Spec, check_put, check_run


def cpu_now() -> float:
    """User+system seconds of this process and of its reaped children so far."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def peak_rss_kib() -> int:
    """This process image's peak RSS (VmHWM; ru_maxrss would include the parent's RSS from before exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(spec: Spec, mod: Any) -> dict[str, Any]:
    """Run the workload; return timings (raises on any error or wrong result)."""
    wl = spec.workload
    addrs = spec.addresses
    out: dict[str, Any] = {}
    gc.collect()
    cpu0 = cpu_now()
    marks = [time.monotonic()]  # call boundaries, on the clock the latency lab's capture uses
    t0 = time.perf_counter()
    client = mod.Client(spec, addrs, wl["limit"])
    try:
        if wl["kind"] == "run":
            results = client.run(wl["command"])
            t1 = time.perf_counter()
            marks.append(time.monotonic())
        elif wl["kind"] == "put":
            results = client.put(spec.local_file, spec.extra["remote"])
            t1 = time.perf_counter()
            marks.append(time.monotonic())
        elif wl["kind"] == "repeat":
            calls = []
            all_results = []
            start = t0
            for _ in range(W5_CALLS):
                all_results.append(client.run(wl["command"]))
                now = time.perf_counter()
                marks.append(time.monotonic())
                calls.append(now - start)
                start = now
            t1 = time.perf_counter()
            out["calls"] = calls
            out["first"] = calls[0]
            out["repeat_mean"] = sum(calls[1:]) / len(calls[1:])
        else:
            raise ValueError(f"unknown workload kind {wl['kind']!r}")
    finally:
        tc = time.perf_counter()
        client.close()
    t2 = time.perf_counter()
    cpu1 = cpu_now()
    out.update(wall=t2 - t0, close=t2 - tc, work_wall=t1 - t0, cpu_work=cpu1 - cpu0, marks=marks)
    if wl["kind"] == "run":
        check_run(results, addrs, wl["command"])
    elif wl["kind"] == "put":
        check_put(results, addrs)
    else:
        for i, res in enumerate(all_results, 1):
            try:
                check_run(res, addrs, wl["command"])
            except CheckFailed as e:
                raise CheckFailed(f"call {i}: {e}") from None
    return out


def main() -> int:
    with open(sys.argv[1]) as f:
        spec = Spec(**json.load(f))
    report: dict[str, Any] = {"ok": False}
    try:
        t_imp = time.perf_counter()
        mod = importlib.import_module(f"drivers.{spec.driver}")
        report["version"] = mod.load(spec)
        report["import_s"] = time.perf_counter() - t_imp
        report["startup_s"] = t_imp - T_PROCESS
        report.update(measure(spec, mod))
        report["ok"] = True
    except CheckFailed as e:
        report["error"] = f"WRONG RESULT: {e}"
    except BaseException as e:
        tb = traceback.format_exc().strip().splitlines()
        report["error"] = f"{type(e).__name__}: {str(e)[:1500]}"
        report["traceback"] = "\n".join(tb[-25:])
    report["maxrss_kib"] = peak_rss_kib()
    with open(spec.out_path, "w") as f:
        json.dump(report, f)
    sys.stdout.flush()
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    code = main()
    # Skip interpreter teardown: some libraries' finalizers are slow or noisy,
    # and nothing is left to measure.
    sys.stderr.flush()
    os._exit(code)
