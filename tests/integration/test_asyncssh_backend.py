"""The asyncssh backend against the real private sshd lab, through the public API."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
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
    CommandFailed,
    ConnectionFailed,
    HostKeyChanged,
    HostKeyUnknown,
    NameResolutionFailed,
    Timeout,
    TransferFailed,
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


def test_call_reaches_every_host_with_result_shapes(ssh_lab: SSHLab):
    results = parallax.call(ssh_lab.hosts, 'id -un; echo "$SSH_CONNECTION"; echo to-stderr >&2', **kw(ssh_lab))
    assert list(results) == ssh_lab.hosts
    for host, addr in zip(ssh_lab.hosts, ssh_lab.addresses):
        result = results[host]
        rc, out, err = result
        assert rc == 0 and result.rc == 0 and result.host == host
        user, connection = out.decode().splitlines()
        assert user == ssh_lab.user
        assert connection.split()[2:] == [addr, str(ssh_lab.port)]
        assert err == b"to-stderr\n" and result.stderr == err


def test_nonzero_exit_is_a_run_result_and_a_call_error(ssh_lab: SSHLab):
    hosts = ssh_lab.hosts[:2]
    cmd = 'case "$SSH_CONNECTION" in *" 127.0.0.2 "*) echo partial; exit 3;; *) exit 255;; esac'
    results = parallax.run(hosts, cmd, **kw(ssh_lab))
    assert results[hosts[0]].rc == 3 and results[hosts[0]].stdout == b"partial\n"
    assert results[hosts[1]].rc == 255  # a remote 255 is a result, not an SSH failure
    called = parallax.call(hosts[:1], "echo bad >&2; exit 3", **kw(ssh_lab))
    error = called[hosts[0]]
    assert isinstance(error, CommandFailed) and error.rc == 3
    assert "Exited with error code 3" in str(error) and "bad" in str(error)


def test_killed_by_signal_reports_128_plus_n(ssh_lab: SSHLab):
    result = parallax.run(ssh_lab.hosts[:1], "kill -9 $$", **kw(ssh_lab))[ssh_lab.hosts[0]]
    assert result.rc == 128 + 9


def test_stdin_binary_round_trip(ssh_lab: SSHLab):
    payload = bytes(range(256)) * 4096 + b"\r\n\x00end"
    results = parallax.run(ssh_lab.hosts[:2], "cat", input_stream=payload, **kw(ssh_lab))
    for host in ssh_lab.hosts[:2]:
        assert results[host].rc == 0
        assert results[host].stdout == payload


def test_no_stdin_means_eof(ssh_lab: SSHLab):
    result = parallax.run(ssh_lab.hosts[:1], "cat; echo done", **kw(ssh_lab))[ssh_lab.hosts[0]]
    assert result.stdout == b"done\n"


def test_ten_mib_of_output(ssh_lab: SSHLab):
    results = parallax.run(ssh_lab.hosts[:2], f"head -c {10 * MiB} /dev/zero; echo tail >&2", **kw(ssh_lab))
    for host in ssh_lab.hosts[:2]:
        assert len(results[host].stdout) == 10 * MiB
        assert results[host].stdout.count(b"\0") == 10 * MiB
        assert results[host].stderr == b"tail\n"


def test_env_is_sent_and_server_filters_it(ssh_lab: SSHLab):
    result = parallax.run(ssh_lab.hosts[:1], 'echo "${PARALLAX_PROBE-unset} ${OTHER_PROBE-unset}"',
                          env={"PARALLAX_PROBE": "a b", "OTHER_PROBE": "x"}, **kw(ssh_lab))[ssh_lab.hosts[0]]
    assert result.stdout == b"a b unset\n"  # the lab's sshd only accepts PARALLAX_*


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


def test_connection_refused_does_not_hide_other_hosts(ssh_lab: SSHLab):
    dead = f"127.0.0.2:{closed_port()}"
    results = parallax.run([dead, ssh_lab.hosts[1]], "echo ok", **kw(ssh_lab))
    assert isinstance(results[dead], ConnectionFailed)
    assert results[dead].msg.startswith(f"Connection to {ssh_lab.user}@127.0.0.2:")
    assert "refused" in str(results[dead]).lower()
    assert results[ssh_lab.hosts[1]].stdout == b"ok\n"


def test_unresolvable_host(ssh_lab: SSHLab):
    results = parallax.run(["no-such-host.invalid"], "true", **kw(ssh_lab, timeout=20))
    error = results["no-such-host.invalid"]
    assert isinstance(error, NameResolutionFailed)
    assert error.msg.startswith("Could not resolve hostname no-such-host.invalid")


def test_wrong_key_is_an_authentication_failure(ssh_lab: SSHLab):
    results = parallax.run(ssh_lab.hosts[:1], "true", **kw(ssh_lab, ssh_key=ssh_lab.wrong_key))
    error = results[ssh_lab.hosts[0]]
    assert isinstance(error, AuthenticationFailed)
    assert error.msg.startswith(f"Authentication failed for {ssh_lab.user}@127.0.0.2:{ssh_lab.port}")


def test_missing_key_file_is_named(ssh_lab: SSHLab, tmp_path):
    missing = str(tmp_path / "nokey")
    error = parallax.run(ssh_lab.hosts[:1], "true", **kw(ssh_lab, ssh_key=missing))[ssh_lab.hosts[0]]
    assert isinstance(error, AuthenticationFailed) and missing in str(error)  # as on every backend


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


def host_key_line(lab: SSHLab) -> str:
    return f"[127.0.0.2]:{lab.port} " + " ".join(lab.host_key_pub.split()[:2])


def test_unknown_host_key_rejected_by_default_and_strict(ssh_lab: SSHLab, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    for policy in (None, "strict"):
        error = parallax.run(ssh_lab.hosts[:1], "true",
                             **kw(ssh_lab, known_hosts=str(empty), host_key_policy=policy))[ssh_lab.hosts[0]]
        assert isinstance(error, HostKeyUnknown), (policy, error)
        assert error.msg.startswith(f"Host key for {ssh_lab.user}@127.0.0.2:{ssh_lab.port} is not trusted")
    assert empty.read_text() == ""


def test_accept_new_records_the_key_once(ssh_lab: SSHLab, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    hosts = ssh_lab.hosts[:2]
    results = parallax.run(hosts, "echo ok", **kw(ssh_lab, known_hosts=str(known), host_key_policy="accept-new"))
    assert all(results[h].stdout == b"ok\n" for h in hosts), results
    lines = known.read_text().splitlines()
    assert sorted(lines) == sorted([host_key_line(ssh_lab),
                                    host_key_line(ssh_lab).replace("127.0.0.2", "127.0.0.3", 1)])
    # The recorded keys are now trusted under strict checking.
    again = parallax.run(hosts, "echo ok", **kw(ssh_lab, known_hosts=str(known), host_key_policy="strict"))
    assert all(again[h].stdout == b"ok\n" for h in hosts), again
    assert known.read_text().splitlines() == lines


def test_off_accepts_anything_and_records_nothing(ssh_lab: SSHLab, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.2]:{ssh_lab.port} {other_key_line()}\n")
    before = known.read_text()
    result = parallax.run(ssh_lab.hosts[:1], "echo ok",
                          **kw(ssh_lab, known_hosts=str(known), host_key_policy="off"))[ssh_lab.hosts[0]]
    assert result.stdout == b"ok\n"
    assert known.read_text() == before


def other_key_line() -> str:
    """``ssh-ed25519 AAAA...`` of a fresh key that is not the lab's host key."""
    return " ".join(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2])


@pytest.mark.parametrize("policy", [None, "strict", "accept-new"])
def test_changed_host_key_is_rejected(ssh_lab: SSHLab, tmp_path, policy):
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.2]:{ssh_lab.port} {other_key_line()}\n")
    before = known.read_text()
    error = parallax.run(ssh_lab.hosts[:1], "true",
                         **kw(ssh_lab, known_hosts=str(known), host_key_policy=policy))[ssh_lab.hosts[0]]
    assert isinstance(error, HostKeyChanged), error
    assert error.msg.startswith(f"Host key for {ssh_lab.user}@127.0.0.2:{ssh_lab.port} has changed")
    assert known.read_text() == before


# --- timeouts and cleanup -------------------------------------------------------------------


def remote_processes(pattern: str) -> list[str]:
    r = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True)
    return [line for line in r.stdout.splitlines() if "pgrep" not in line]


def test_timeout_stops_remote_command_while_other_host_answers(ssh_lab: SSHLab):
    hosts = ssh_lab.hosts[:2]
    marker = "5.9731"
    cmd = f'case "$SSH_CONNECTION" in *" 127.0.0.2 "*) sleep {marker};; *) echo fast;; esac'
    start = time.monotonic()
    results = parallax.run(hosts, cmd, **kw(ssh_lab, timeout=2))  # 2 s: the fast host may be slow on a busy box
    assert time.monotonic() - start < 4.5
    assert isinstance(results[hosts[0]], Timeout)
    assert results[hosts[1]].stdout == b"fast\n"
    deadline = time.monotonic() + 3
    while remote_processes(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert remote_processes(f"sleep {marker}") == []


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


def test_copy_file_preserves_content_and_mode(ssh_lab: SSHLab, tmp_path):
    src = tmp_path / "payload.bin"
    data = os.urandom(300_000)
    src.write_bytes(data)
    os.chmod(src, 0o640)
    dst = f"{ssh_lab.scratch_dir}/copy-{os.getpid()}.bin"
    results = parallax.copy(ssh_lab.hosts[:2], str(src), dst, **kw(ssh_lab))
    for host in ssh_lab.hosts[:2]:
        rc, out, err = results[host]
        assert rc == 0
    out = remote_run(ssh_lab, ssh_lab.hosts[1], f"stat -c %a {dst}; md5sum < {dst}; rm {dst}")
    mode, digest = out.decode().split()[:2]
    assert mode == "640"
    import hashlib
    assert digest == hashlib.md5(data).hexdigest()


def test_copy_directory_recursive_like_scp(ssh_lab: SSHLab, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("A")
    (tree / "sub" / "b.txt").write_text("B")
    dst = f"{ssh_lab.scratch_dir}/dir-{os.getpid()}"
    host = ssh_lab.hosts[0]
    first = parallax.copy([host], str(tree), dst, recursive=True, **kw(ssh_lab))[host]
    assert first.rc == 0, first
    # dst existed now: the second copy lands in dst/tree, like scp -r.
    second = parallax.copy([host], str(tree), dst, recursive=True, **kw(ssh_lab))[host]
    assert second.rc == 0, second
    listing = remote_run(ssh_lab, host, f"cd {dst} && find . -type f | sort && cat sub/b.txt tree/a.txt; rm -r {dst}")
    assert listing.decode().split() == ["./a.txt", "./sub/b.txt", "./tree/a.txt", "./tree/sub/b.txt", "BA"]


def test_copy_failure_names_the_path(ssh_lab: SSHLab, tmp_path):
    src = tmp_path / "f"
    src.write_text("x")
    dst = f"{ssh_lab.scratch_dir}/no/such/dir/f"
    error = parallax.copy(ssh_lab.hosts[:1], str(src), dst, **kw(ssh_lab))[ssh_lab.hosts[0]]
    assert isinstance(error, TransferFailed)
    assert error.msg.startswith(f"Transfer with {ssh_lab.user}@127.0.0.2:{ssh_lab.port} failed")
    assert "no/such/dir/f" in str(error)


def test_slurp_file_and_directory(ssh_lab: SSHLab, tmp_path):
    hosts = ssh_lab.hosts[:2]
    base = f"{ssh_lab.scratch_dir}/slurp-{os.getpid()}"
    # Every lab address is this machine: one remote file serves both hosts.
    remote_run(ssh_lab, hosts[0], f'mkdir -p {base}/d && echo "$SSH_CONNECTION" > {base}/d/who && '
                                  f"chmod 604 {base}/d/who")
    try:
        files = parallax.slurp(hosts, f"{base}/d/who", "who.txt", localdir=str(tmp_path), **kw(ssh_lab))
        for host in hosts:
            rc, out, err, path = files[host]
            assert rc == 0 and path == os.path.join(str(tmp_path), host, "who.txt")
            assert server_addr(open(path, "rb").read()) == ssh_lab.addresses[0]
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o604
        dirs = parallax.slurp(hosts[:1], f"{base}/d", "copy", localdir=str(tmp_path), recursive=True, **kw(ssh_lab))
        assert os.path.isfile(os.path.join(dirs[hosts[0]].path, "who"))
        missing = parallax.slurp(hosts[:1], f"{base}/nope", "x", localdir=str(tmp_path), **kw(ssh_lab))[hosts[0]]
        assert isinstance(missing, TransferFailed) and f"{base}/nope" in str(missing)
        notdir = parallax.slurp(hosts[:1], f"{base}/d", "y", localdir=str(tmp_path), recursive=False,
                                **kw(ssh_lab))[hosts[0]]
        assert isinstance(notdir, TransferFailed)
    finally:
        remote_run(ssh_lab, hosts[0], f"rm -rf {base}")


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


def test_ssh_config_alias_supplies_hostname_port_user_key(ssh_lab: SSHLab, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        "Host web\n"
        "    HostName 127.0.0.3\n"
        f"    Port {ssh_lab.port}\n"
        f"    User {ssh_lab.user}\n"
        f"    IdentityFile {ssh_lab.client_key}\n"
        f"    UserKnownHostsFile {ssh_lab.known_hosts}\n"
    )
    result = parallax.call(["web"], 'id -un; echo "$SSH_CONNECTION"', backend="asyncssh",
                           ssh_config=str(cfg), timeout=30)["web"]
    user, connection = result.stdout.decode().splitlines()
    assert user == ssh_lab.user and connection.split()[2] == "127.0.0.3"


def test_lab_ssh_config_aliases(ssh_lab: SSHLab):
    results = parallax.call(["h2", "h4"], 'echo "$SSH_CONNECTION"', backend="asyncssh",
                            ssh_config=ssh_lab.ssh_config, timeout=30)
    assert server_addr(results["h2"].stdout) == "127.0.0.3"
    assert server_addr(results["h4"].stdout) == "127.0.0.5"


def test_missing_ssh_config_is_bad_input(ssh_lab: SSHLab, tmp_path):
    path = str(tmp_path / "nope")
    with pytest.raises(BadInput, match=re.escape(path)):  # the call's own input: refused before anything runs
        parallax.run(ssh_lab.hosts[:1], "true", **kw(ssh_lab, ssh_config=path))


def test_proxyjump_from_config_alias(ssh_lab: SSHLab, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f'Include "{ssh_lab.ssh_config}"\n\nHost behind\n    HostName 127.0.0.3\n    ProxyJump h1\n')
    before = ssh_lab.connection_count()
    result = parallax.call(["behind"], 'echo "$SSH_CONNECTION"', backend="asyncssh", ssh_config=str(cfg),
                           timeout=30)["behind"]
    assert server_addr(result.stdout) == "127.0.0.3"
    assert ssh_lab.connection_count() == before + 2  # the jump host, then the target through it
    log = ssh_lab.log_text()
    assert "direct-tcpip" in log or ssh_lab.login_count() >= 2


def test_proxyjump_option(ssh_lab: SSHLab):
    before = ssh_lab.connection_count()
    jump = f"{ssh_lab.user}@127.0.0.2:{ssh_lab.port}"
    host = ssh_lab.hosts[2]
    result = parallax.call([host], 'echo "$SSH_CONNECTION"', ssh_options=[f"ProxyJump={jump}"],
                           **kw(ssh_lab))[host]
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
