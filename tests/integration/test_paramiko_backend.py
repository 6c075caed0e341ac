"""The paramiko backend against the real sshd lab, through the public API (and the backend itself for pooling)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import socket
import stat
import subprocess
import threading
import time

import pytest

import parallax
from parallax.backends.paramiko import ParamikoBackend
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
from parallax.jobs import CommandJob, GetJob, PutJob, Target
from parallax.testing import SSHLab

from helpers import lab_opts


def kw(lab: SSHLab, **extra):
    """The options every lab call needs, for the paramiko backend."""
    return lab_opts(lab, "paramiko", **{"timeout": 30, **extra})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def extra_threads(before: set[threading.Thread], grace: float = 2.0) -> set[threading.Thread]:
    """Threads started since *before* that are still alive after a short grace period."""
    deadline = time.monotonic() + grace
    while True:
        left = {t for t in threading.enumerate() if t not in before and t.is_alive()}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


class Sink:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.err: list[bytes] = []

    def stdout(self, data: bytes) -> None:
        self.out.append(data)

    def stderr(self, data: bytes) -> None:
        self.err.append(data)


def lab_target(lab: SSHLab, i: int = 0, **extra) -> Target:
    fields = dict(key=lab.hosts[i], host=lab.addresses[i], port=lab.port, user=lab.user,
                  ssh_key=lab.client_key, known_hosts=lab.known_hosts)
    fields.update(extra)
    return Target(**fields)


# --- commands -----------------------------------------------------------------


def test_call_results_and_shapes(ssh_lab: SSHLab):
    lab = ssh_lab
    res = parallax.call(lab.hosts, 'id -un; echo "$SSH_CONNECTION"; echo oops >&2', **kw(lab))
    assert list(res) == lab.hosts
    for host, addr in zip(lab.hosts, lab.addresses):
        r = res[host]
        assert not isinstance(r, parallax.Error), r
        rc, out, err = r
        assert rc == 0 and r.rc == 0
        lines = out.decode().splitlines()
        assert lines[0] == lab.user
        assert lines[1].split()[2:] == [addr, str(lab.port)]
        assert err == b"oops\n"
        assert r.host == host


def test_stdin_is_fed_then_closed(ssh_lab: SSHLab):
    lab = ssh_lab
    res = parallax.call(lab.hosts[:2], "cat; echo end", input_stream=b"line1\nline2\n", **kw(lab))
    for r in res.values():
        assert r.stdout == b"line1\nline2\nend\n"
    # Without input the command sees EOF at once instead of hanging.
    res = parallax.call(lab.hosts[:1], "cat; echo eof", **kw(lab, timeout=10))
    assert res[lab.hosts[0]].stdout == b"eof\n"


def test_large_output_and_binary_round_trip(ssh_lab: SSHLab):
    lab = ssh_lab
    size = 10 * 1024 * 1024
    res = parallax.call(lab.hosts[:2], f"head -c {size} /dev/zero | tr '\\0' x", **kw(lab))
    for r in res.values():
        assert len(r.stdout) == size and r.stdout.count(b"x") == size
    blob = bytes(range(256)) * 4096 + b"\x00\xff\r\n"
    res = parallax.call(lab.hosts[:1], "cat", input_stream=blob, **kw(lab))
    assert res[lab.hosts[0]].stdout == blob


def test_output_is_streamed_as_it_arrives(ssh_lab: SSHLab):
    lab = ssh_lab
    seen: list[tuple[float, bytes]] = []
    start = time.monotonic()
    res = parallax.call(lab.hosts[:1], "echo first; sleep 1; echo second", **kw(
        lab, on_output=lambda host, stream, data: seen.append((time.monotonic() - start, data))))
    total = res[lab.hosts[0]].duration
    assert b"".join(d for _, d in seen) == b"first\nsecond\n"
    first_at = next(t for t, d in seen if d.startswith(b"first"))
    assert first_at < total - 0.5


def test_exit_status_call_and_run(ssh_lab: SSHLab):
    lab = ssh_lab
    host = lab.hosts[0]
    res = parallax.call([host], "echo bad >&2; exit 3", **kw(lab))
    err = res[host]
    assert isinstance(err, CommandFailed) and err.rc == 3
    assert "Exited with error code 3" in str(err) and "bad" in str(err)
    res = parallax.run([host], "exit 3", **kw(lab))
    assert res[host].rc == 3
    res = parallax.run([host], "echo x; exit 255", **kw(lab))
    assert not isinstance(res[host], parallax.Error)
    assert res[host].rc == 255 and res[host].stdout == b"x\n"


def test_environment(ssh_lab: SSHLab):
    lab = ssh_lab
    host = lab.hosts[0]
    # The lab accepts PARALLAX_*; other names are refused by sshd without failing the command.
    res = parallax.call([host], 'echo "${PARALLAX_X-unset} ${OTHER_X-unset}"',
                        env={"PARALLAX_X": "a b", "OTHER_X": "no"}, **kw(lab))
    assert res[host].stdout == b"a b unset\n"
    res = parallax.call([host], 'echo "$PARALLAX_Y"', ssh_options=["SetEnv=PARALLAX_Y=from-setenv"], **kw(lab))
    assert res[host].stdout == b"from-setenv\n"


def test_sendenv_passes_local_variables(ssh_lab: SSHLab, monkeypatch):
    lab = ssh_lab
    host = lab.hosts[0]
    monkeypatch.setenv("PARALLAX_SENDTEST", "local value")
    res = parallax.call([host], 'echo "${PARALLAX_SENDTEST-unset}"', ssh_options=["SendEnv=PARALLAX_SEND*"], **kw(lab))
    assert res[host].stdout == b"local value\n"
    res = parallax.call([host], 'echo "${PARALLAX_SENDTEST-unset}"', **kw(lab))
    assert res[host].stdout == b"unset\n"


def test_loglevel_sets_paramiko_log_threshold(ssh_lab: SSHLab, caplog):
    lab = ssh_lab
    caplog.set_level(logging.DEBUG, logger="parallax.paramiko")
    parallax.call(lab.hosts[:1], "true", ssh_options=["LogLevel=DEBUG3"], **kw(lab))
    debug = [r for r in caplog.records if r.name.startswith("parallax.paramiko") and r.levelno == logging.DEBUG]
    assert debug
    caplog.clear()
    parallax.call(lab.hosts[:1], "true", ssh_options=["LogLevel=QUIET"], **kw(lab))
    assert not [r for r in caplog.records if r.name.startswith("parallax.paramiko")]


# --- connection failures ---------------------------------------------------------


def test_connection_refused_and_dns(ssh_lab: SSHLab):
    lab = ssh_lab
    port = free_port()
    bad = f"127.0.0.2:{port}"
    res = parallax.run([bad, lab.hosts[1], "nonexistent.invalid"], "true", **kw(lab))
    assert isinstance(res[bad], ConnectionFailed)
    assert f"Connection to {lab.user}@127.0.0.2:{port} failed" in str(res[bad])
    assert res[lab.hosts[1]].rc == 0
    dns = res["nonexistent.invalid"]
    assert isinstance(dns, NameResolutionFailed)
    assert dns.msg.startswith("Could not resolve hostname nonexistent.invalid")


def test_authentication_failure(ssh_lab: SSHLab):
    lab = ssh_lab
    res = parallax.run(lab.hosts[:1], "true", **kw(lab, ssh_key=lab.wrong_key))
    err = res[lab.hosts[0]]
    assert isinstance(err, AuthenticationFailed)
    assert err.msg.startswith(f"Authentication failed for {lab.user}@127.0.0.2:{lab.port}")
    assert "Permission denied" in str(err)


def test_encrypted_key_unlocked_by_password(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    key = str(tmp_path / "locked_key")
    shutil.copy(lab.client_key, key)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", "sekret", "-f", key], check=True,
                   capture_output=True, timeout=20)
    res = parallax.call(lab.hosts[:2], "echo in", **kw(lab, ssh_key=key, password="sekret"))
    assert all(r.stdout == b"in\n" for r in res.values()), res
    res = parallax.run(lab.hosts[:1], "true", **kw(lab, ssh_key=key))
    assert isinstance(res[lab.hosts[0]], AuthenticationFailed) and "encrypted" in str(res[lab.hosts[0]])
    res = parallax.run(lab.hosts[:1], "true", **kw(lab, ssh_key=key, password="wrong"))
    assert isinstance(res[lab.hosts[0]], AuthenticationFailed) and "passphrase" in str(res[lab.hosts[0]])


def test_keys_and_known_hosts_are_read_once(ssh_lab: SSHLab, monkeypatch):
    import paramiko

    lab = ssh_lab
    loads: list[str] = []
    reads: list[str] = []
    real_from_path = paramiko.PKey.from_path
    real_open = open

    def counting_from_path(path, password=None):
        loads.append(str(path))
        return real_from_path(path, password)

    def counting_open(file, *args, **kwargs):
        if file == lab.known_hosts:
            reads.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(paramiko.PKey, "from_path", staticmethod(counting_from_path))
    monkeypatch.setattr("builtins.open", counting_open)
    res = parallax.call(lab.hosts, "true", **kw(lab))
    assert all(r.rc == 0 for r in res.values()), res
    assert loads == [lab.client_key]
    assert reads == [lab.known_hosts]


def test_missing_identity_is_named(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    missing = str(tmp_path / "no-such-key")
    res = parallax.run(lab.hosts[:1], "true", **kw(lab, ssh_key=missing))
    err = res[lab.hosts[0]]
    assert isinstance(err, AuthenticationFailed) and missing in str(err)


def test_connect_timeout_on_silent_server(ssh_lab: SSHLab):
    lab = ssh_lab
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)  # accepts TCP but never sends a banner
        host = f"127.0.0.1:{server.getsockname()[1]}"
        start = time.monotonic()
        res = parallax.run([host], "true", **kw(lab, connect_timeout=1))
    assert isinstance(res[host], Timeout), res[host]
    assert "timed out" in str(res[host])
    assert time.monotonic() - start < 5


def test_cancelled_handshake_leaves_no_thread(ssh_lab: SSHLab):
    lab = ssh_lab
    before = set(threading.enumerate())
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        host = f"127.0.0.1:{server.getsockname()[1]}"
        res = parallax.run([host, lab.hosts[0]], "echo ok", **kw(lab, timeout=1))
    assert isinstance(res[host], Timeout)
    assert res[lab.hosts[0]].stdout == b"ok\n"
    assert not extra_threads(before)


# --- host keys ----------------------------------------------------------------------


def test_unknown_host_key_is_rejected_by_default_and_strict(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    for policy in (None, "strict"):
        res = parallax.run(lab.hosts[:1], "true", **kw(lab, known_hosts=str(empty), host_key_policy=policy))
        err = res[lab.hosts[0]]
        assert isinstance(err, HostKeyUnknown), err
        assert "is not trusted" in str(err)
    res = parallax.run(lab.hosts[:1], "true", **kw(lab, known_hosts=os.devnull))
    assert isinstance(res[lab.hosts[0]], HostKeyUnknown)
    assert empty.read_text() == ""


def test_accept_new_records_unknown_keys(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    kh = tmp_path / "sub" / "known_hosts"
    res = parallax.run(lab.hosts[:2], "true", **kw(lab, known_hosts=str(kh), host_key_policy="accept-new"))
    assert all(r.rc == 0 for r in res.values()), res
    key = " ".join(lab.host_key_pub.split()[:2])
    lines = kh.read_text().splitlines()
    assert sorted(lines) == sorted(f"[{a}]:{lab.port} {key}" for a in lab.addresses[:2])
    # The recorded keys now satisfy strict checking.
    res = parallax.run(lab.hosts[:2], "true", **kw(lab, known_hosts=str(kh), host_key_policy="strict"))
    assert all(r.rc == 0 for r in res.values()), res


def test_changed_host_key(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    with open(lab.wrong_key + ".pub") as f:
        other_key = " ".join(f.read().split()[:2])
    kh = tmp_path / "known_hosts"
    text = f"[127.0.0.2]:{lab.port} {other_key}\n"
    kh.write_text(text)
    for policy in ("strict", "accept-new", None):
        res = parallax.run(lab.hosts[:1], "true", **kw(lab, known_hosts=str(kh), host_key_policy=policy))
        err = res[lab.hosts[0]]
        assert isinstance(err, HostKeyChanged), (policy, err)
        assert err.msg.startswith(f"Host key for {lab.user}@127.0.0.2:{lab.port} has changed")
    res = parallax.run(lab.hosts[:1], "echo in", **kw(lab, known_hosts=str(kh), host_key_policy="off"))
    assert res[lab.hosts[0]].stdout == b"in\n"
    assert kh.read_text() == text  # "off" records nothing


# --- timeouts and threads ------------------------------------------------------------


def test_timeout_while_another_host_answers_leaves_no_thread(ssh_lab: SSHLab):
    lab = ssh_lab
    before = set(threading.enumerate())
    slow, fast = lab.hosts[0], lab.hosts[1]
    start = time.monotonic()
    res = parallax.run([slow, fast], 'case "$SSH_CONNECTION" in *" 127.0.0.2 "*) sleep 5;; esac; echo ok',
                       **kw(lab, timeout=1))
    assert time.monotonic() - start < 4
    assert isinstance(res[slow], Timeout)
    assert res[fast].stdout == b"ok\n"
    assert not extra_threads(before)


def test_pool_reuse_disconnect_and_dead_transport(ssh_lab: SSHLab):
    lab = ssh_lab
    before = set(threading.enumerate())
    target = lab_target(lab, 2)
    job = CommandJob(target, "echo hi")

    async def scenario() -> list[int]:
        backend = ParamikoBackend(None)
        counts = [lab.connection_count()]
        try:
            sink = Sink()
            assert await backend.run(job, sink) == 0
            assert await backend.run(job, sink) == 0
            assert b"".join(sink.out) == b"hi\nhi\n"
            counts.append(lab.connection_count())
            await backend.disconnect(target)
            assert await backend.run(job, Sink()) == 0
            counts.append(lab.connection_count())
            # Kill the pooled transport behind the backend's back: reconnected once, transparently.
            pooled = backend._pool.pooled(target)
            assert pooled is not None
            pooled.transport.close()
            assert await backend.run(job, Sink()) == 0
            counts.append(lab.connection_count())
        finally:
            await backend.close()
        return counts

    counts = asyncio.run(scenario())
    assert [b - a for a, b in itertools.pairwise(counts)] == [1, 1, 1]
    assert not extra_threads(before)


# --- file transfer ----------------------------------------------------------------


def remote_listing(lab: SSHLab, path: str) -> str:
    res = parallax.call(lab.hosts[:1], f"cd '{path}' && find . | sort | while read -r f; do "
                        f"echo \"$f $(stat -c %a \"$f\")\"; done", **kw(lab))
    return res[lab.hosts[0]].stdout.decode()


def test_copy_file_keeps_mode(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    src = tmp_path / "payload.bin"
    data = os.urandom(300_000)
    src.write_bytes(data)
    os.chmod(src, 0o640)
    dst = f"{lab.scratch_dir}/copy-file-{os.getpid()}"
    res = parallax.copy(lab.hosts[:2], str(src), dst, **kw(lab))
    for r in res.values():
        rc, out, err = r
        assert rc == 0, r
    res = parallax.call(lab.hosts[:1], f"stat -c %a '{dst}'; cat '{dst}'", **kw(lab))
    out = res[lab.hosts[0]].stdout
    assert out.startswith(b"640\n") and out[4:] == data
    # An existing directory as destination receives the file under its name.
    res = parallax.copy(lab.hosts[:1], str(src), lab.scratch_dir, **kw(lab))
    assert res[lab.hosts[0]].rc == 0
    res = parallax.call(lab.hosts[:1], f"cmp '{lab.scratch_dir}/payload.bin' '{dst}' && echo same", **kw(lab))
    assert res[lab.hosts[0]].stdout == b"same\n"


def test_copy_directory_recursive_like_scp(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.sh").write_text("#!/bin/sh\n")
    os.chmod(tree / "a.sh", 0o755)
    (tree / "sub" / "b.txt").write_text("b")
    os.chmod(tree / "sub" / "b.txt", 0o600)
    dst = f"{lab.scratch_dir}/copy-dir-{os.getpid()}"
    res = parallax.copy(lab.hosts[:1], str(tree), dst, recursive=True, **kw(lab))
    assert res[lab.hosts[0]].rc == 0, res
    expected = "./a.sh 755\n./sub/b.txt 600\n"
    listing = remote_listing(lab, dst)
    assert "./a.sh 755" in listing and "./sub/b.txt 600" in listing and "./tree" not in listing
    # dst now exists: a second copy lands in dst/tree, as scp -r does.
    res = parallax.copy(lab.hosts[:1], str(tree), dst, recursive=True, **kw(lab))
    assert res[lab.hosts[0]].rc == 0
    listing = remote_listing(lab, dst)
    assert "./tree/a.sh 755" in listing and "./tree/sub/b.txt 600" in listing
    assert expected.splitlines()[0] in listing


def test_copy_into_missing_parent_fails_naming_path(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    src = tmp_path / "f"
    src.write_text("x")
    dst = f"{lab.scratch_dir}/no/such/dir/f"
    res = parallax.copy(lab.hosts[:1], str(src), dst, **kw(lab))
    err = res[lab.hosts[0]]
    assert isinstance(err, TransferFailed) and dst in str(err)
    assert err.msg.startswith(f"Transfer with {lab.user}@127.0.0.2:{lab.port} failed")


def test_slurp_file_and_directory(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    base = f"{lab.scratch_dir}/slurp-{os.getpid()}"
    setup = (f"rm -rf '{base}' && mkdir -p '{base}/d/e' && printf one > '{base}/d/one' && "
             f"printf two > '{base}/d/e/two' && chmod 751 '{base}/d/one' && echo \"$SSH_CONNECTION\" > '{base}/f'")
    # The lab's hosts share one file system: set up once, through the first host.
    assert parallax.call(lab.hosts[:1], setup, **kw(lab))[lab.hosts[0]].rc == 0
    local = tmp_path / "local"
    res = parallax.slurp(lab.hosts[:2], f"{base}/f", "conn.txt", localdir=str(local), **kw(lab))
    for host in lab.hosts[:2]:
        rc, out, err, path = res[host]
        assert rc == 0 and path == os.path.join(str(local), host, "conn.txt")
        assert open(path).read().split()[2] == lab.addresses[0]
    res = parallax.slurp(lab.hosts[:1], f"{base}/d", "dir", localdir=str(local), recursive=True, **kw(lab))
    path = res[lab.hosts[0]].path
    assert open(os.path.join(path, "one")).read() == "one"
    assert open(os.path.join(path, "e", "two")).read() == "two"
    assert stat.S_IMODE(os.stat(os.path.join(path, "one")).st_mode) == 0o751
    res = parallax.slurp(lab.hosts[:1], f"{base}/missing", "m", localdir=str(local), **kw(lab))
    err = res[lab.hosts[0]]
    assert isinstance(err, TransferFailed) and f"{base}/missing" in str(err)


def test_tilde_paths_are_relative_to_home(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    src = tmp_path / "t"
    src.write_text("tilde")
    name = f"parallax-tilde-{os.getpid()}"
    res = parallax.copy(lab.hosts[:1], str(src), f"~/{name}", **kw(lab))
    assert res[lab.hosts[0]].rc == 0, res
    res = parallax.call(lab.hosts[:1], f'cat "$HOME/{name}" && rm "$HOME/{name}"', **kw(lab))
    assert res[lab.hosts[0]].stdout == b"tilde"


# --- ssh config, ProxyJump, options ------------------------------------------------------------


def write_config(lab: SSHLab, path, body: str) -> str:
    path.write_text(body.format(port=lab.port, user=lab.user, key=lab.client_key, kh=lab.known_hosts))
    return str(path)


def test_ssh_config_alias(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    cfg = write_config(lab, tmp_path / "config", (
        "Host myalias\n  HostName 127.0.0.3\n  Port {port}\n  User {user}\n"
        "  IdentityFile {key}\n  UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n"))
    res = parallax.call(["myalias"], 'echo "$SSH_CONNECTION"; id -un', backend="paramiko", ssh_config=cfg)
    r = res["myalias"]
    assert not isinstance(r, parallax.Error), r
    conn, user = r.stdout.decode().splitlines()
    assert conn.split()[2:] == ["127.0.0.3", str(lab.port)] and user == lab.user
    # Explicit values win over the config file.
    res = parallax.run(["myalias"], "true", backend="paramiko", ssh_config=cfg, default_user="no-such-user-x")
    assert isinstance(res["myalias"], AuthenticationFailed) and "no-such-user-x@" in str(res["myalias"])
    res = parallax.run(["myalias"], "true", backend="paramiko", ssh_config=cfg, port=free_port())
    assert isinstance(res["myalias"], ConnectionFailed)


def test_missing_ssh_config_is_bad_input(ssh_lab: SSHLab, tmp_path):
    with pytest.raises(BadInput, match="no-such-config"):
        parallax.call(["h1"], "true", backend="paramiko", ssh_config=str(tmp_path / "no-such-config"))


def test_proxy_jump(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    cfg = write_config(lab, tmp_path / "config", (
        "Host h1\n  HostName 127.0.0.2\n"
        "Host behind\n  HostName 127.0.0.3\n  ProxyJump h1\n"
        "Host behind2\n  HostName 127.0.0.4\n  ProxyJump h1\n"
        "Host loop1\n  ProxyJump loop2\n"
        "Host loop2\n  ProxyJump loop1\n"
        "Host *\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  UserKnownHostsFile {kh}\n"))
    before = lab.log_text().count(f"on 127.0.0.2 port {lab.port}")
    res = parallax.call(["behind", "behind2"], 'echo "$SSH_CONNECTION"', backend="paramiko", ssh_config=cfg)
    for alias, addr in (("behind", "127.0.0.3"), ("behind2", "127.0.0.4")):
        r = res[alias]
        assert not isinstance(r, parallax.Error), r
        assert r.stdout.decode().split()[2:] == [addr, str(lab.port)]
    # The jump host saw exactly one more connection: the hop, shared by both targets.
    deadline = time.monotonic() + 2
    while lab.log_text().count(f"on 127.0.0.2 port {lab.port}") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab.log_text().count(f"on 127.0.0.2 port {lab.port}") == before + 1
    # ProxyJump given as an option, to an address of the lab, works too; as with ssh -J, the hop takes
    # its identity and known_hosts from the ssh config, not from the call's ssh_key/known_hosts.
    jump = [f"ProxyJump={lab.user}@127.0.0.2:{lab.port}"]
    res = parallax.call([lab.hosts[3]], 'echo "$SSH_CONNECTION"', ssh_options=jump, ssh_config=cfg, **kw(lab))
    assert res[lab.hosts[3]].stdout.decode().split()[2] == "127.0.0.5"
    res = parallax.run([lab.hosts[3]], "true", ssh_options=jump, **kw(lab, ssh_config=os.devnull))
    assert isinstance(res[lab.hosts[3]], HostKeyUnknown) and "127.0.0.2" in str(res[lab.hosts[3]])
    res = parallax.run(["loop1"], "true", backend="paramiko", ssh_config=cfg, timeout=10)
    assert isinstance(res["loop1"], BadInput) and "loop" in str(res["loop1"])


def test_proxy_jump_failure_is_reported(ssh_lab: SSHLab):
    lab = ssh_lab
    port = free_port()
    res = parallax.run(lab.hosts[:1], "true", ssh_options=[f"ProxyJump=127.0.0.2:{port}"], **kw(lab))
    err = res[lab.hosts[0]]
    assert isinstance(err, ConnectionFailed) and str(port) in str(err)


def test_unsupported_options_refused_before_anything_runs(ssh_lab: SSHLab):
    lab = ssh_lab
    count = lab.connection_count()
    with pytest.raises(UnsupportedOption, match="ForwardAgent.*paramiko"):
        parallax.call(lab.hosts, "true", ssh_options=["ForwardAgent=yes"], **kw(lab))
    with pytest.raises(UnsupportedOption, match="ssh_extra.*paramiko"):
        parallax.call(lab.hosts, "true", ssh_extra=["-v"], **kw(lab))
    with pytest.raises(BadInput, match="Port"):
        parallax.call(lab.hosts, "true", ssh_options=["Port=abc"], **kw(lab))
    with pytest.raises(BadInput, match="LogLevel"):
        parallax.call(lab.hosts, "true", ssh_options=["LogLevel=chatty"], **kw(lab))
    assert lab.connection_count() == count


def test_supported_options_are_honoured(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    opts = ["BatchMode=yes", "Compression=yes", "ServerAliveInterval=30", "LogLevel=ERROR",
            "NumberOfPasswordPrompts=1", "IdentitiesOnly=yes", "ConnectTimeout=5",
            f"UserKnownHostsFile={lab.known_hosts}", "StrictHostKeyChecking=yes"]
    res = parallax.call(lab.hosts[:1], "echo ok", ssh_options=opts, backend="paramiko",
                        ssh_key=lab.client_key, default_user=lab.user)
    assert res[lab.hosts[0]].stdout == b"ok\n"
    # PubkeyAuthentication=no leaves no way in.
    res = parallax.run(lab.hosts[:1], "true", ssh_options=["PubkeyAuthentication=no"], **kw(lab))
    assert isinstance(res[lab.hosts[0]], AuthenticationFailed)
    # UserKnownHostsFile from ssh_options beats known_hosts (openssh order).
    res = parallax.run(lab.hosts[:1], "true", ssh_options=[f"UserKnownHostsFile={os.devnull}"], **kw(lab))
    assert isinstance(res[lab.hosts[0]], HostKeyUnknown)


def test_backend_close_leaves_no_threads(ssh_lab: SSHLab, tmp_path):
    lab = ssh_lab
    before = set(threading.enumerate())
    src = tmp_path / "f"
    src.write_text("data")

    async def scenario() -> None:
        backend = ParamikoBackend(None)
        try:
            targets = [lab_target(lab, i) for i in range(len(lab.addresses))]
            codes = await asyncio.gather(*(backend.run(CommandJob(t, "true"), Sink()) for t in targets))
            assert codes == [0] * len(targets)
            await backend.put(PutJob(targets[0], str(src), f"{lab.scratch_dir}/close-{os.getpid()}"), Sink())
            await backend.get(GetJob(targets[0], f"{lab.scratch_dir}/close-{os.getpid()}",
                                     str(tmp_path / "back")), Sink())
            assert (tmp_path / "back").read_text() == "data"
            assert len(extra_threads(before, grace=0)) >= len(targets)  # transports are threads
        finally:
            await backend.close()

    asyncio.run(scenario())
    assert not extra_threads(before)
