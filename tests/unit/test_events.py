"""Event consumers: bounded in-memory buffers, per-host files, line printing."""

from __future__ import annotations

import tracemalloc

from parallax.events import EventBus
from parallax.jobs import CommandJob, Target
from parallax.options import resolve

MiB = 1 << 20


def _job(i: int) -> CommandJob:
    return CommandJob(Target(key=f"h{i}", host=f"h{i}"), "cmd")


def test_thousand_hosts_times_ten_mib_stay_bounded_with_max_output():
    bus = EventBus(resolve(None, environ={}, max_output=64 * 1024, quiet=True))
    jobs = [_job(i) for i in range(1000)]
    tracemalloc.start()
    try:
        for job in jobs:
            bus.started(job)
            for _ in range(10):
                bus.output(job, "stdout", bytes(MiB))  # a fresh 1 MiB chunk each time
            out, err, dropped = bus.buffer.take(job.key)
            assert len(out) == 64 * 1024 and dropped == 10 * MiB - 64 * 1024
            bus.finished(job, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        bus.close()
    assert peak < 8 * MiB, peak  # 1,000 x 10 MiB went through; a few MiB were ever held


def test_output_past_the_cap_still_reaches_outdir(tmp_path):
    bus = EventBus(resolve(None, environ={}, max_output=1000, quiet=True, outdir=str(tmp_path)))
    job = _job(0)
    bus.started(job)
    for _ in range(5):
        bus.output(job, "stdout", b"x" * 1000)
    assert bus.buffer.take(job.key) == (b"x" * 1000, b"", 4000)
    bus.finished(job, None)
    bus.close()
    assert (tmp_path / "h0").read_bytes() == b"x" * 5000


def test_buffers_keep_everything_without_a_cap():
    bus = EventBus(resolve(None, environ={}, quiet=True))
    job = _job(0)
    for chunk in (b"a" * 10, b"b" * 10):
        bus.output(job, "stdout", chunk)
    bus.output(job, "stderr", b"err")
    assert bus.buffer.take(job.key) == (b"a" * 10 + b"b" * 10, b"err", 0)


def test_inline_stdout_only_keeps_no_stderr():
    bus = EventBus(resolve(None, environ={}, quiet=True, inline=False, inline_stdout=True))
    job = _job(0)
    bus.output(job, "stdout", b"out")
    bus.output(job, "stderr", b"err")
    assert bus.buffer.take(job.key) == (b"out", b"", 0)


def test_print_out_prints_lines_with_the_host_and_never_holds_more_than_max_line(capsysbinary):
    from parallax.events import LinePrinter

    bus = EventBus(resolve(None, environ={}, quiet=True, print_out=True))
    job = _job(7)
    bus.output(job, "stdout", b"one\ntw")
    bus.output(job, "stdout", b"o\n")
    bus.output(job, "stderr", b"e" * (LinePrinter.MAX_LINE + 1))  # no newline at all
    bus.finished(job, None)
    out = capsysbinary.readouterr()
    assert out.out == b"h7: one\nh7: two\n"
    assert out.err == b"h7: " + b"e" * (LinePrinter.MAX_LINE + 1) + b"\n"
