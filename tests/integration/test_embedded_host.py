"""The embedded asyncssh test host, used through parallax (asyncssh backend) and plain OpenSSH."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import threading
import time

import pytest

import parallax
from parallax.backends.sockets import LISTEN, tcp_sockets
from parallax.errors import AuthenticationFailed, HostKeyUnknown, Timeout
from parallax.testing.embedded import EmbeddedSSHHost

from helpers import lab_opts

TIMEOUT = 20


@pytest.fixture(scope="module")
def host():
    with EmbeddedSSHHost(hosts=2) as h:
        yield h


def kw(h: EmbeddedSSHHost, **extra) -> dict:
    # never the real ~/.ssh/config
    return lab_opts(h, "asyncssh", **{"timeout": 30, "ssh_config": os.devnull, **extra})


def ssh(h: EmbeddedSSHHost, alias: str, command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", h.ssh_config, alias, command], capture_output=True, timeout=TIMEOUT,
                          stdin=kwargs.pop("stdin", subprocess.DEVNULL), **kwargs)


def listening(port: int) -> bool:
    return any(state == LISTEN and local[1] == port for state, local, _, _ in tcp_sockets())


def test_layout_matches_sshlab(host: EmbeddedSSHHost):
    assert host.addresses == ["127.0.0.2", "127.0.0.3"]
    assert host.hosts == [f"127.0.0.2:{host.port}", f"127.0.0.3:{host.port}"]
    assert host.port not in (0, 22)
    for key in (host.client_key, host.wrong_key):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    key_part = " ".join(host.host_key_pub.split()[:2])
    assert f"[127.0.0.2]:{host.port},[h1]:{host.port},h1 {key_part}" in open(host.known_hosts).read()
    assert "Host h2\n    HostName 127.0.0.3\n" in open(host.ssh_config).read()
    assert host.running and os.path.isdir(host.workdir)


def test_command_exit_status_stderr_and_address(host: EmbeddedSSHHost):
    results = parallax.run(host.hosts, 'echo "$SSH_CONNECTION"; id -un; echo oops >&2; exit 7', **kw(host))
    for h, addr in zip(host.hosts, host.addresses):
        rc, out, err = results[h]
        assert rc == 7
        connection, user = out.decode().splitlines()
        assert connection.split()[2:] == [addr, str(host.port)]
        assert user == host.user
        assert err == b"oops\n"
    called = parallax.call(host.hosts[:1], "exit 3", **kw(host))[host.hosts[0]]
    assert called.rc == 3 and "Exited with error code 3" in str(called)


def test_stdin_env_and_large_binary_output(host: EmbeddedSSHHost):
    payload = bytes(range(256)) * 2048
    result = parallax.run(host.hosts[:1], 'cat; printf "%s" "$PARALLAX_EMB"', input_stream=payload,
                          env={"PARALLAX_EMB": "env ok"}, **kw(host))[host.hosts[0]]
    assert result.stdout == payload + b"env ok"
    big = parallax.run(host.hosts[:1], "head -c 3000000 /dev/zero", **kw(host))[host.hosts[0]]
    assert len(big.stdout) == 3_000_000


def test_signal_death_and_timeout_kill_the_command(host: EmbeddedSSHHost):
    killed = parallax.run(host.hosts[:1], "kill -9 $$", **kw(host))[host.hosts[0]]
    assert killed.rc == 128 + 9
    marker = "5.8371"
    results = parallax.run(host.hosts, f'case "$SSH_CONNECTION" in *" 127.0.0.2 "*) sleep {marker};; '
                                       f"*) echo fast;; esac", **kw(host, timeout=2))
    assert isinstance(results[host.hosts[0]], Timeout)
    assert results[host.hosts[1]].stdout == b"fast\n"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).returncode != 0:
            break
        time.sleep(0.05)
    assert subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).returncode != 0


def test_only_the_client_key_and_known_host_key_work(host: EmbeddedSSHHost, tmp_path):
    denied = parallax.run(host.hosts[:1], "true", **kw(host, ssh_key=host.wrong_key))[host.hosts[0]]
    assert isinstance(denied, AuthenticationFailed)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    unknown = parallax.run(host.hosts[:1], "true", **kw(host, known_hosts=str(empty)))[host.hosts[0]]
    assert isinstance(unknown, HostKeyUnknown)


def test_sftp_copy_and_slurp_through_parallax(host: EmbeddedSSHHost, tmp_path):
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.bin").write_bytes(os.urandom(50_000))
    os.chmod(src / "sub" / "f.bin", 0o604)
    remote = os.path.join(host.scratch_dir, f"tree-{os.getpid()}")
    copied = parallax.copy(host.hosts[:1], str(src), remote, recursive=True, **kw(host))[host.hosts[0]]
    assert copied.rc == 0, copied
    assert open(os.path.join(remote, "sub", "f.bin"), "rb").read() == (src / "sub" / "f.bin").read_bytes()
    assert stat.S_IMODE(os.stat(os.path.join(remote, "sub", "f.bin")).st_mode) == 0o604
    back = parallax.slurp(host.hosts, os.path.join(remote, "sub", "f.bin"), "f.bin", localdir=str(tmp_path / "out"),
                          **kw(host))
    for h in host.hosts:
        rc, out, err, path = back[h]
        assert rc == 0 and open(path, "rb").read() == (src / "sub" / "f.bin").read_bytes()
    shutil.rmtree(remote)


def test_sftp_relative_paths_start_at_home(host: EmbeddedSSHHost, tmp_path):
    name = f"parallax-embedded-{os.getpid()}.txt"
    src = tmp_path / "h.txt"
    src.write_text("home")
    try:
        assert parallax.copy(host.hosts[:1], str(src), f"~/{name}", **kw(host))[host.hosts[0]].rc == 0
        assert open(os.path.join(host.home, name)).read() == "home"
    finally:
        if os.path.exists(os.path.join(host.home, name)):
            os.unlink(os.path.join(host.home, name))


def test_plain_openssh_client(host: EmbeddedSSHHost, tmp_path):
    r = ssh(host, "h2", 'echo "$SSH_CONNECTION"; cat; exit 5', input=b"piped", stdin=None)
    assert r.returncode == 5, r.stderr
    lines = r.stdout.split(b"\n", 1)
    assert lines[0].split()[2].decode() == "127.0.0.3" and lines[1] == b"piped"
    r = subprocess.run(host.ssh_argv("h1", "echo", "argv"), capture_output=True, timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, b"argv\n"), r.stderr
    r = subprocess.run(host.ssh_argv("h1", "true", key=host.wrong_key), capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 255 and b"Permission denied" in r.stderr
    # scp (SFTP protocol by default) and legacy scp -O both work.
    src = tmp_path / "scp.txt"
    src.write_text("scp")
    for flags in ([], ["-O"]):
        dst = tmp_path / f"scp-back{len(flags)}.txt"
        r = subprocess.run(["scp", "-F", host.ssh_config, *flags, str(src), f"h1:{dst}"], capture_output=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert dst.read_text() == "scp"


def test_proxyjump_through_the_embedded_host(host: EmbeddedSSHHost, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text(f'Include "{host.ssh_config}"\n\nHost behind\n    HostName 127.0.0.3\n    ProxyJump h1\n')
    before = host.connection_count()
    result = parallax.call(["behind"], 'echo "$SSH_CONNECTION"', backend="asyncssh", ssh_config=str(config),
                           timeout=30)["behind"]
    assert result.stdout.split()[2] == b"127.0.0.3"
    assert host.connection_count() == before + 2


def test_connection_count(host: EmbeddedSSHHost):
    before, logins = host.connection_count(), host.login_count()
    assert ssh(host, "h1", "true").returncode == 0
    parallax.run(host.hosts, "true", **kw(host))
    parallax.run(host.hosts[:1], "true", **kw(host, ssh_key=host.wrong_key))
    assert host.connection_count() == before + 4
    assert host.login_count() == logins + 3


def test_stop_leaves_no_thread_socket_process_or_files():
    threads = {t.ident for t in threading.enumerate()}
    h = EmbeddedSSHHost(hosts=2).start()
    port, workdir = h.port, h.workdir
    assert listening(port)
    session = subprocess.Popen(["ssh", "-F", h.ssh_config, "h1", "sleep 7.2931"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while "sleep 7.2931" not in h.log_text():
            assert time.monotonic() < deadline and session.poll() is None
            time.sleep(0.02)
        h.stop()
        h.stop()  # idempotent
        assert session.wait(timeout=TIMEOUT) == 255
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    left = [t.name for t in threading.enumerate() if t.ident not in threads]
    assert not left, f"threads left running: {left}"  # asyncio's waitpid and executor threads too
    assert not listening(port)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=1).close()
    assert not os.path.exists(workdir)
    assert subprocess.run(["pgrep", "-f", "sleep 7.2931"], capture_output=True).returncode != 0
    assert not h.running
    with pytest.raises(RuntimeError):
        h.start()
