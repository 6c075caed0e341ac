"""The asyncssh backend against the real private sshd lab, through the public API."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time

import asyncssh
import pytest

import parallax
from parallax.backends.asyncssh import AsyncSSHBackend
from parallax.errors import (
    AuthenticationFailed,
    BadInput,
    ConnectionFailed,
    HostKeyChanged,
    HostKeyUnknown,
    NameResolutionFailed,
    Timeout,
    UnsupportedOption,
)
from parallax.jobs import CommandJob, Target
from parallax.backends.sockets import ESTABLISHED, tcp_sockets
from parallax.testing import SSHLab

from helpers import lab_opts

MiB = 1024 * 1024


def kw(lab: SSHLab, **extra) -> dict:
    # never the real ~/.ssh/config
    return lab_opts(lab, "asyncssh", **{"timeout": 30, "ssh_config": os.devnull, **extra})


def server_addr(out: bytes) -> str:
    return out.decode().split()[2]


def established_to(port: int) -> int:
    """Client-side ESTABLISHED TCP connections to *port* on this machine."""
    return sum(1 for state, _, remote, _ in tcp_sockets() if state == ESTABLISHED and remote[1] == port)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sink:
    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()

    def stdout(self, data: bytes) -> None:
        self.out += data

    def stderr(self, data: bytes) -> None:
        self.err += data


def lab_target(lab: SSHLab, address: str) -> Target:
    return Target(key=address, host=address, port=lab.port, user=lab.user, ssh_key=lab.client_key,
                  known_hosts=lab.known_hosts, ssh_config="/dev/null")


# --- commands -------------------------------------------------------------------------


def test_killed_by_signal_reports_128_plus_n(ssh_lab: SSHLab):
    result = parallax.run(ssh_lab.hosts[:1], "kill -9 $$", **kw(ssh_lab))[ssh_lab.hosts[0]]
    assert result.rc == 128 + 9


def test_output_streams_to_callbacks_as_it_arrives(ssh_lab: SSHLab):
    seen: list[tuple[str, bytes, float]] = []
    start = time.monotonic()
    parallax.run(ssh_lab.hosts[:1], "echo first; sleep 1; echo second",
                 on_output=lambda host, stream, data: seen.append((stream, data, time.monotonic() - start)),
                 **kw(ssh_lab))
    first = [t for stream, data, t in seen if b"first" in data]
    second = [t for stream, data, t in seen if b"second" in data]
    assert first and second and second[0] - first[0] > 0.5


# --- connection failures ---------------------------------------------------------------


def test_unresolvable_host(ssh_lab: SSHLab):
    results = parallax.run(["no-such-host.invalid"], "true", **kw(ssh_lab, timeout=20))
    error = results["no-such-host.invalid"]
    assert isinstance(error, NameResolutionFailed)
    assert error.msg.startswith("Could not resolve hostname no-such-host.invalid")


def test_connect_timeout_against_a_silent_listener(ssh_lab: SSHLab):
    silent = socket.socket()
    silent.bind(("127.0.0.2", 0))
    silent.listen(5)  # accepts TCP but never speaks SSH
    try:
        host = f"127.0.0.2:{silent.getsockname()[1]}"
        start = time.monotonic()
        error = parallax.run([host], "true", **kw(ssh_lab, connect_timeout=1))[host]
        assert isinstance(error, Timeout)
        assert error.msg.startswith(f"Connection to {ssh_lab.user}@{host} timed out")
        assert time.monotonic() - start < 10
    finally:
        silent.close()


def test_cancel_while_connecting_leaves_nothing_behind(ssh_lab: SSHLab):
    silent = socket.socket()
    silent.bind(("127.0.0.2", 0))
    silent.listen(5)
    host = f"127.0.0.2:{silent.getsockname()[1]}"

    async def main() -> tuple[dict, set]:
        results = await parallax.aio.run([host, ssh_lab.hosts[1]], "echo ok", **kw(ssh_lab, timeout=2))
        await asyncio.sleep(0)
        return results, {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    try:
        results, leftover = asyncio.run(main())
    finally:
        silent.close()
    assert isinstance(results[host], Timeout)  # the scheduler's limit, cancelling the handshake
    assert results[ssh_lab.hosts[1]].stdout == b"ok\n"
    assert leftover == set()


# --- host keys ----------------------------------------------------------------------------


def host_key_line(lab: SSHLab, address: str = "127.0.0.2") -> str:
    return f"[{address}]:{lab.port} " + " ".join(lab.host_key_pub.split()[:2])


def other_key_line() -> str:
    """``ssh-ed25519 AAAA...`` of a fresh key that is not the lab's host key."""
    return " ".join(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2])


def test_host_key_refusals_name_what_known_hosts_says(ssh_lab: SSHLab, tmp_path):
    """The shared lookup's verdict reaches the message: the files searched, or the line that differs."""
    known = tmp_path / "known_hosts"
    known.write_text("# comment\n")
    host = ssh_lab.hosts[0]
    unknown = parallax.run([host], "true", **kw(ssh_lab, known_hosts=str(known)))[host]
    assert isinstance(unknown, HostKeyUnknown), unknown
    assert unknown.msg.startswith(f"Host key for {ssh_lab.user}@127.0.0.2:{ssh_lab.port} is not trusted: "
                                  f"no ssh-ed25519 key for [127.0.0.2]:{ssh_lab.port} in {known}, "), unknown.msg
    assert "(fingerprint SHA256:" in unknown.msg
    known.write_text(f"# comment\n[127.0.0.2]:{ssh_lab.port} {other_key_line()}\n")
    changed = parallax.run([host], "true", **kw(ssh_lab, known_hosts=str(known), host_key_policy="accept-new"))[host]
    assert isinstance(changed, HostKeyChanged), changed
    assert f"{known} line 2 has ssh-ed25519 SHA256:" in changed.msg
    assert known.read_text().count("\n") == 2  # nothing recorded
    # asyncssh's own matcher fell back to a port-less entry; OpenSSH (and parallax's lookup) do not
    known.write_text("127.0.0.2 " + " ".join(ssh_lab.host_key_pub.split()[:2]) + "\n")
    portless = parallax.run([host], "true", **kw(ssh_lab, known_hosts=str(known)))[host]
    assert isinstance(portless, HostKeyUnknown), portless


def test_accept_new_records_the_openssh_name(ssh_lab: SSHLab, tmp_path):
    known = tmp_path / "known_hosts"
    hosts = ssh_lab.hosts[:2]
    results = parallax.run(hosts, "true", **kw(ssh_lab, known_hosts=str(known), host_key_policy="accept-new"))
    assert all(results[h].rc == 0 for h in hosts), results
    assert sorted(known.read_text().splitlines()) == [host_key_line(ssh_lab, a) for a in ("127.0.0.2", "127.0.0.3")]


def test_the_recorded_host_key_type_is_the_one_negotiated(make_ssh_lab, tmp_path):
    """With several host keys on the server, the one known_hosts records is asked for (not "changed")."""
    ecdsa = tmp_path / "ecdsa_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(ecdsa)], check=True)
    lab = make_ssh_lab(hosts=1, extra_config=f"HostKey {ecdsa}\n")
    ecdsa_line = " ".join(open(f"{ecdsa}.pub").read().split()[:2])
    ed25519_line = " ".join(lab.host_key_pub.split()[:2])
    host = lab.hosts[0]
    for recorded in (ecdsa_line, ed25519_line):
        known = tmp_path / "known_hosts"
        known.write_text(f"[{lab.addresses[0]}]:{lab.port} {recorded}\n")
        result = parallax.run([host], "echo in", **kw(lab, known_hosts=str(known)))[host]
        assert not isinstance(result, Exception) and result.stdout == b"in\n", (recorded.split()[0], result)


def test_asyncssh_algorithm_tables_are_where_the_adapter_reads_them():
    """asyncssh_options reads asyncssh's (undocumented) algorithm tables: fail loudly if they move."""
    from parallax.backends.asyncssh_options import algorithms

    expected = {"kex": b"curve25519-sha256", "enc": b"aes128-gcm@openssh.com", "mac": b"hmac-sha2-256",
                "key": b"ssh-ed25519"}
    for kind, name in expected.items():
        assert name in algorithms(kind), kind
    with pytest.raises(ValueError, match="algorithm kind"):
        algorithms("nope")


# --- timeouts and cleanup -------------------------------------------------------------------


def remote_processes(pattern: str) -> list[str]:
    r = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True)
    return [line for line in r.stdout.splitlines() if "pgrep" not in line]


def test_no_connections_tasks_or_threads_left_after_a_call(ssh_lab: SSHLab):
    threads_before = threading.active_count()

    async def main() -> set:
        results = await parallax.aio.run(ssh_lab.hosts, "echo ok", **kw(ssh_lab))
        assert all(r.stdout == b"ok\n" for r in results.values())
        await asyncio.sleep(0)
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    leftover = asyncio.run(main())
    assert leftover == set()
    deadline = time.monotonic() + 2
    while established_to(ssh_lab.port) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert established_to(ssh_lab.port) == 0
    assert threading.active_count() == threads_before


# --- pooling ------------------------------------------------------------------------------------


def test_pool_reuses_one_connection_for_sequential_and_concurrent_jobs(ssh_lab: SSHLab):
    target = lab_target(ssh_lab, "127.0.0.3")
    before = ssh_lab.connection_count()

    async def main() -> list[int]:
        backend = AsyncSSHBackend()
        try:
            sinks = [Sink() for _ in range(6)]
            rcs = [await backend.run(CommandJob(target, "echo one"), sinks[0])]
            rcs += await asyncio.gather(*(backend.run(CommandJob(target, f"echo {i}; exit {i}"), sinks[i])
                                          for i in range(1, 6)))
            assert [bytes(s.out) for s in sinks] == [b"one\n"] + [f"{i}\n".encode() for i in range(1, 6)]
            assert ssh_lab.connection_count() == before + 1
            await backend.disconnect(target)
            rcs.append(await backend.run(CommandJob(target, "true"), Sink()))
            assert ssh_lab.connection_count() == before + 2
            return rcs
        finally:
            await backend.close()

    assert asyncio.run(main()) == [0, 1, 2, 3, 4, 5, 0]


def test_dead_pooled_connection_is_reestablished_once(ssh_lab: SSHLab):
    target = lab_target(ssh_lab, "127.0.0.4")
    before = ssh_lab.connection_count()

    async def main() -> bytes:
        backend = AsyncSSHBackend()
        try:
            # The command kills its own sshd connection process shortly after returning.
            rc = await backend.run(CommandJob(target, "(sleep 0.2; kill -9 $PPID) >/dev/null 2>&1 &"), Sink())
            assert rc == 0
            time.sleep(0.6)  # block the loop: the client has not noticed the loss yet
            sink = Sink()
            assert await backend.run(CommandJob(target, "echo again"), sink) == 0
            return bytes(sink.out)
        finally:
            await backend.close()

    assert asyncio.run(main()) == b"again\n"
    assert ssh_lab.connection_count() == before + 2


def test_connection_lost_during_command_is_connection_failed(ssh_lab: SSHLab):
    error = parallax.run(ssh_lab.hosts[3:], "kill -9 $PPID; sleep 5", **kw(ssh_lab))[ssh_lab.hosts[3]]
    assert isinstance(error, ConnectionFailed)
    assert "lost" in str(error) or "failed" in str(error)


# --- file transfers --------------------------------------------------------------------------


def remote_run(lab: SSHLab, host: str, cmd: str) -> bytes:
    result = parallax.call([host], cmd, **kw(lab))[host]
    assert not isinstance(result, Exception), result
    return result.stdout


def test_home_relative_paths(ssh_lab: SSHLab, tmp_path):
    src = tmp_path / "home.txt"
    src.write_text("home")
    host = ssh_lab.hosts[0]
    name = f"parallax-home-{os.getpid()}.txt"
    assert parallax.copy([host], str(src), f"~/{name}", **kw(ssh_lab))[host].rc == 0
    try:
        assert remote_run(ssh_lab, host, f"cat ~/{name}") == b"home"
        got = parallax.slurp([host], f"~/{name}", "h.txt", localdir=str(tmp_path), **kw(ssh_lab))[host]
        assert open(got.path).read() == "home"
    finally:
        remote_run(ssh_lab, host, f"rm -f ~/{name}")


# --- ssh config, ProxyJump, options ------------------------------------------------------------------


def test_proxyjump_option(ssh_lab: SSHLab, tmp_path):
    # As ssh -J: the hop takes its identity and known_hosts from the ssh config, not from the call.
    config = tmp_path / "ssh_config"
    config.write_text(f'Host 127.0.0.2\n  IdentityFile "{ssh_lab.client_key}"\n'
                      f'  UserKnownHostsFile "{ssh_lab.known_hosts}"\n')
    before = ssh_lab.connection_count()
    jump = f"{ssh_lab.user}@127.0.0.2:{ssh_lab.port}"
    host = ssh_lab.hosts[2]
    result = parallax.call([host], 'echo "$SSH_CONNECTION"', ssh_options=[f"ProxyJump={jump}"],
                           **kw(ssh_lab, ssh_config=str(config)))[host]
    assert server_addr(result.stdout) == "127.0.0.4"
    assert ssh_lab.connection_count() == before + 2


def test_supported_ssh_options_are_honoured(ssh_lab: SSHLab, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host = ssh_lab.hosts[0]
    ok = parallax.call([host], 'echo "$PARALLAX_SET"', ssh_options=[
        f"UserKnownHostsFile={ssh_lab.known_hosts}", "StrictHostKeyChecking=yes", "BatchMode=yes",
        "Compression=yes", "ServerAliveInterval=5", "ConnectTimeout=5", "Ciphers=aes128-ctr",
        "SetEnv=PARALLAX_SET=from-option"], **kw(ssh_lab, known_hosts=str(empty)))[host]
    assert ok.stdout == b"from-option\n"
    denied = parallax.run([host], "true", ssh_options=["PubkeyAuthentication=no"], **kw(ssh_lab))[host]
    assert isinstance(denied, AuthenticationFailed)


def test_unsupported_option_refused_before_anything_runs(ssh_lab: SSHLab):
    before = ssh_lab.connection_count()
    with pytest.raises(UnsupportedOption) as info:
        parallax.call(ssh_lab.hosts, "true", ssh_options=["ControlMaster=auto"], **kw(ssh_lab))
    assert "ControlMaster" in str(info.value) and "asyncssh" in str(info.value)
    with pytest.raises(UnsupportedOption) as info:
        parallax.call(ssh_lab.hosts, "true", ssh_extra=["-v"], **kw(ssh_lab))
    assert "ssh_extra" in str(info.value) and "asyncssh" in str(info.value)
    with pytest.raises(BadInput) as info:
        parallax.call(ssh_lab.hosts, "true", ssh_options=["Port=http"], **kw(ssh_lab))
    assert "Port" in str(info.value)
    assert ssh_lab.connection_count() == before
