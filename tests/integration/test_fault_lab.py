"""The fault lab (parallax.testing.faults) and what every backend does under its faults.

A real sshd in a network namespace behind a user-space link (delay, loss, a
black-holed range), a host that never sends a banner, an sshd frozen or
killed mid-command.  Nothing here is skipped: where the lab cannot be built
(not root, no TUN) the tests fail and say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import threading
import time
from collections.abc import Callable, Collection

import pytest

import parallax
from parallax.backends.grace import CLEANUP_TIMEOUT, CLEANUP_WAIT
from parallax.testing.faults import FaultLab, SilentHost, frozen, kill_sessions

from parallax.testing.processes import processes_with, shells_running, survives_one_term

from helpers import fault_lab_or_fail, lab_opts

BACKENDS = ["openssh", "paramiko", "asyncssh", "libssh2"]
RTT = 0.05
LOSS = 0.05
#: How far past its limit a call with a Timeout may end, the same for every fault and backend:
#: issue 9 R9's target is 0.5 s (measured: at most about 0.4 s, see docs/reliability.md); the
#: other 0.5 s is room for a 2-core machine loaded by other tests (the old overshoot was 5 s).
TARGET = 0.5
OVERSHOOT = TARGET + 0.5


@pytest.fixture(scope="module")
def fault_lab():
    yield from fault_lab_or_fail(hosts=20, rtt=RTT, loss=LOSS, seed=9)


def only(results):
    (r,) = results.values()
    return r


def token() -> str:
    """A sleep duration no other test uses: ``sleep 15.<token>`` can be found among processes."""
    return f"{int(time.monotonic() * 1e6) % 10**7:07d}"


def running(command: str) -> list[int]:
    """Processes whose whole command line is *command* (``sleep 2.5``): the remote command
    itself, not the local ``ssh`` that carries it in its arguments."""
    return [pid for pid, cmd in processes_with(command).items() if cmd == command]


def ended_soon(command: str, limit: float = CLEANUP_TIMEOUT,
               find: Callable[[str], Collection[int]] = running) -> list[int]:
    """Wait up to *limit* for the remote process *command* (as *find* finds it) to end; those
    still running are killed and returned (an empty list: it ended)."""
    deadline = time.monotonic() + limit
    while find(command) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = sorted(find(command))
    for pid in left:
        os.kill(pid, 9)
    return left


def wait_started(command: str, limit: float = 20.0) -> None:
    """Wait until the remote process *command* (a whole command line) runs."""
    deadline = time.monotonic() + limit
    while not running(command):
        if time.monotonic() > deadline:
            raise AssertionError(f"no process {command!r} started within {limit} s")
        time.sleep(0.02)


def test_the_link_delays_every_round_trip(fault_lab):
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        with socket.create_connection((fault_lab.addresses[0], fault_lab.port), timeout=10):
            times.append(time.monotonic() - t0)
    assert min(times) >= RTT * 0.95, times  # a TCP handshake is one round trip


def test_a_blackholed_address_never_answers(fault_lab):
    with pytest.raises(OSError):
        socket.create_connection((fault_lab.blackholed_addresses[0], fault_lab.port), timeout=0.5)


def test_the_link_can_be_changed_while_it_runs(fault_lab):
    addr = fault_lab.addresses[5]
    try:
        fault_lab.configure(blackhole=[addr])
        with pytest.raises(OSError):
            socket.create_connection((addr, fault_lab.port), timeout=0.5)
        with socket.create_connection((fault_lab.addresses[6], fault_lab.port), timeout=10):
            pass  # the others still answer
    finally:
        fault_lab.configure(blackhole=fault_lab.blackholed_addresses)
    with socket.create_connection((addr, fault_lab.port), timeout=10):
        pass


@pytest.mark.parametrize("kw, name, error", [({"loss": 1.5}, "loss", ValueError), ({"rtt": -1}, "rtt", ValueError),
                                             ({"hosts": 0}, "hosts", ValueError), ({"rtt": "50ms"}, "rtt", TypeError)])
def test_bad_link_settings_are_refused_by_name(kw, name, error):
    with pytest.raises(error, match=name):
        FaultLab(**kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lossy_slow_link_loses_no_result(fault_lab, backend):
    cpu0 = fault_lab.forwarder_cpu()
    t0 = time.monotonic()
    res = parallax.call(fault_lab.hosts, 'echo "$SSH_CONNECTION"', **lab_opts(fault_lab, backend, timeout=60))
    elapsed = time.monotonic() - t0
    bad = {h: r for h, r in res.items() if isinstance(r, parallax.Error)}
    assert not bad, bad
    for host, r in res.items():
        assert r.stdout.split()[2].decode() == host.split(":")[0]  # each answer came from its own host
    assert elapsed >= RTT
    print(f"{backend}: 20 hosts in {elapsed:.2f} s, forwarder CPU {fault_lab.forwarder_cpu() - cpu0:.2f} s")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_blackholed_host_times_out_on_time(fault_lab, backend):
    host = f"{fault_lab.blackholed_addresses[1]}:{fault_lab.port}"
    t0 = time.monotonic()
    r = only(parallax.call([host], "true", **lab_opts(fault_lab, backend, timeout=2, connect_timeout=0)))
    elapsed = time.monotonic() - t0
    assert isinstance(r, parallax.Timeout), repr(r)
    assert elapsed < 2 + OVERSHOOT, elapsed


@pytest.mark.parametrize("limit", ["timeout", "deadline"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_host_that_never_sends_a_banner_times_out_on_time(ssh_lab, backend, limit):
    kw = {"timeout": 2} if limit == "timeout" else {"deadline": 2, "timeout": 0}
    with SilentHost() as silent:
        t0 = time.monotonic()
        res = parallax.call([silent.host, ssh_lab.hosts[0]], "sleep 0.2; echo ok",
                            **lab_opts(ssh_lab, backend, connect_timeout=0, **kw))
        elapsed = time.monotonic() - t0
        assert silent.accepted >= 1
    assert isinstance(res[silent.host], parallax.Timeout), repr(res[silent.host])
    assert res[ssh_lab.hosts[0]].stdout == b"ok\n"  # the other host's result is kept
    assert elapsed < 2 + OVERSHOOT, elapsed


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_live_hosts_timeout_ends_on_time_and_its_command(ssh_lab, backend):
    command = f"sleep 15.{token()}"
    t0 = time.monotonic()
    r = only(parallax.call(ssh_lab.hosts[:1], command, **lab_opts(ssh_lab, backend, timeout=1)))
    elapsed = time.monotonic() - t0
    left = ended_soon(command)  # openssh: a second connection, done before or (loaded sshd) after the return
    assert isinstance(r, parallax.Timeout), repr(r)
    assert elapsed < 1 + OVERSHOOT, elapsed
    assert not left, f"the timed-out command still runs: {left}"


@pytest.mark.parametrize("mode", ["call", "shell"], ids=["call", "session-shell"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_frozen_sshd_is_a_timeout(make_ssh_lab, backend, mode):
    lab = make_ssh_lab(hosts=1)
    stop = threading.Event()
    froze = []
    mark = f"1.5{token()}"  # a 1.5 s command: the freeze lands before it ends, even under load

    def freeze_soon() -> None:
        wait_started(f"sleep {mark}")
        with frozen(lab):
            froze.append(time.monotonic())
            stop.wait(10)

    command = f"echo started; sleep {mark}; echo done"
    opts = lab_opts(lab, backend, timeout=2)
    with contextlib.ExitStack() as stack:
        if mode == "shell":  # a Session with persistent shells: the shell's command is ended
            s = stack.enter_context(parallax.Session(lab.hosts, persistent_shell=True, **opts))
            assert only(s.call("true")).rc == 0
        t = threading.Thread(target=freeze_soon)
        t.start()
        try:
            t0 = time.monotonic()
            r = only(s.call(command) if mode == "shell" else parallax.call(lab.hosts, command, **opts))
            elapsed = time.monotonic() - t0
        finally:
            stop.set()
            t.join()
    assert froze, "the sshd was never frozen"
    assert isinstance(r, parallax.Timeout), repr(r)
    assert elapsed < 2 + OVERSHOOT, elapsed


@pytest.mark.parametrize("session", [False, True], ids=["call", "session"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_session_is_connection_lost(make_ssh_lab, backend, session):
    lab = make_ssh_lab(hosts=1)
    killed = []
    command = f"echo started; sleep 15.{token()}"

    def kill_soon() -> None:
        wait_started(command.split("; ")[1])  # the remote command runs: its session is up
        time.sleep(0.2)  # "started" is on its way
        killed.append(kill_sessions(lab))

    opts = lab_opts(lab, backend, timeout=20)
    t = threading.Thread(target=kill_soon)
    if session:
        with parallax.Session(lab.hosts, **opts) as s:
            assert only(s.call("true")).rc == 0  # connected before
            t.start()
            r = only(s.run(command))
            t.join()
            again = only(s.call("echo again"))  # the session reconnects for the next command
        assert again.stdout == b"again\n", repr(again)
    else:
        t.start()
        r = only(parallax.run(lab.hosts, command, **opts))
        t.join()
    assert killed and killed[0] >= 1
    assert isinstance(r, parallax.ConnectionLost), repr(r)
    assert r.stdout == b"started\n"


@pytest.mark.parametrize("fault", ["killed", "frozen"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_server_failing_mid_transfer_is_an_error_not_a_hang(fault_lab, backend, fault, tmp_path, caplog):
    src = tmp_path / "big"
    with open(src, "wb") as f:
        f.truncate(32 * 1024 * 1024)  # at 50 ms / 5 % loss this takes minutes: the fault lands mid-way
    host = fault_lab.hosts[3]
    dst = f"{fault_lab.lab.scratch_dir}/{backend}-{fault}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(dst)
    stop = threading.Event()
    faulted: list[float] = []  # when the fault began
    killed = []
    # Connecting over the lossy link takes anything from 0.5 s to several seconds (a lost SYN
    # alone costs 1 s), so the fault waits for the copy's first bytes instead of a fixed time.
    # A killed server must end the copy promptly (a generous timeout is not what ends it);
    # a frozen one is ended by the 3 s timeout.
    timeout = 30 if fault == "killed" else 3

    def transferring() -> bool:
        try:
            return os.path.getsize(dst) > 0
        except OSError:
            return False

    def fail_mid_transfer() -> None:
        while not transferring():
            if stop.wait(0.02):
                return
        faulted.append(time.monotonic())
        if fault == "killed":
            killed.append(kill_sessions(fault_lab))
        else:
            with frozen(fault_lab):
                stop.wait(15)

    t = threading.Thread(target=fail_mid_transfer)
    t.start()
    try:
        t0 = time.monotonic()
        r = only(parallax.copy([host], str(src), dst, **lab_opts(fault_lab, backend, timeout=timeout)))
        ended = time.monotonic()
        elapsed = ended - t0
    finally:
        stop.set()
        t.join()
    print(f"{backend} {fault}: {r!r} after {elapsed:.2f} s")
    if fault == "killed":
        assert faulted and killed and killed[0] >= 1, (faulted, killed, r)  # the copy's own sshd, mid-way
        assert isinstance(r, (parallax.ConnectionFailed, parallax.TransferFailed)), repr(r)
        assert ended - faulted[0] < OVERSHOOT + 1, ended - faulted[0]  # noticed within a lossy RTT or two
    else:
        assert isinstance(r, parallax.Timeout), repr(r)
        assert elapsed < timeout + OVERSHOOT, elapsed
    gc.collect()  # a future whose failure nobody looked at is reported when it is collected
    unseen = [rec.getMessage() for rec in caplog.records if "never retrieved" in rec.getMessage()]
    assert not unseen, unseen  # issue 9 R11: the error is in the result, not on stderr


#: The next tests' link: sshd's answer to the exec request is 0.125 s away when the command
#: starts, and a second connection's banner (1.5 round trips) comes after CLEANUP_WAIT.
SLOW_RTT = 0.25


@pytest.fixture(scope="module")
def slow_lab():
    yield from fault_lab_or_fail(hosts=1, rtt=SLOW_RTT, seed=11)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_command_cancelled_before_its_start_is_confirmed_is_ended(slow_lab, backend):
    """Cancelled after the exec request left but before the server's answer arrived: the command
    sshd already started must be ended as well (closing the channel alone leaves it running),
    and TERMed until it ends: this one outlives its first TERM, as one whose TERM sshd lost
    (it came before the command's process group existed) does."""
    command = survives_one_term(f"parallax-slow-{token()}")

    async def main() -> bool:
        async with parallax.aio.Session(slow_lab.hosts, **lab_opts(slow_lab, backend)) as s:
            await s.call("true")  # connected: what follows is the channel, its requests, the command
            task = asyncio.ensure_future(s.call(command))
            while not shells_running(command):
                if task.done():
                    return False
                await asyncio.sleep(0.005)
            # sshd runs it now; its answer to the exec request is still about SLOW_RTT / 2 away
            pending = not task.done()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return pending

    cancelled_in_time = asyncio.run(main())
    left = ended_soon(command, 3 * SLOW_RTT + 2, shells_running)
    assert cancelled_in_time, "the call ended before it could be cancelled mid-start"
    assert not left, f"the command cancelled before its start was confirmed still runs: {left}"


def test_a_timed_out_command_behind_a_slow_link_is_ended_after_the_call(slow_lab):
    """A module-level call does not wait for a server that is slow to answer before it
    returns its Timeout; the command must be ended all the same.  Behind this link the
    openssh backend's second connection sees no banner within CLEANUP_WAIT, so it finishes
    after the call has returned (it used to be given up, and the command ran on).  The
    in-process backends end the command over its own channel before they return, as
    test_a_live_hosts_timeout_ends_on_time_and_its_command shows."""
    assert 1.5 * SLOW_RTT > CLEANUP_WAIT  # the TCP handshake and the banner take longer
    backend = "openssh"
    command = f"sleep 15.{token()}"
    timeout = 1 + 12 * SLOW_RTT  # time to log in behind the link (11 round trips), then the command runs
    started: list[bool] = []

    def watch() -> None:
        with contextlib.suppress(AssertionError):
            wait_started(command, timeout + 1)
            started.append(True)

    seen = threading.Thread(target=watch)
    seen.start()
    t0 = time.monotonic()
    r = only(parallax.call(slow_lab.hosts, command, **lab_opts(slow_lab, backend, timeout=timeout)))
    elapsed = time.monotonic() - t0
    seen.join()
    left = ended_soon(command)
    assert started, "the command never ran: there was nothing to end"
    assert isinstance(r, parallax.Timeout), repr(r)
    assert elapsed < timeout + OVERSHOOT, elapsed
    assert not left, f"the timed-out command still runs: {left}"
