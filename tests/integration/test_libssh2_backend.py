"""The libssh2 backend's own machinery (what the conformance suite does not reach): several
channels waiting on one non-blocking session at once, and libssh2's algorithm names."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("ssh2", reason="the libssh2 extra (ssh2-python) is not installed")

from parallax.backends.libssh2 import Libssh2Backend
from parallax.backends.libssh2_options import merge_algorithms
from parallax.ssh.keys import is_encrypted
from parallax.jobs import CommandJob, Target
from parallax.ssh.algorithms import AlgorithmError
from parallax.testing import SSHLab


class Collect:
    def __init__(self) -> None:
        self.out = bytearray()

    def stdout(self, data: bytes) -> None:
        self.out += data

    def stderr(self, data: bytes) -> None:
        pass


def test_concurrent_channels_on_one_session_all_finish(ssh_lab: SSHLab) -> None:
    """Eight commands at once on ONE pooled connection, their output interleaved in time: every
    channel must see all of its data although libssh2 reads other channels' packets for it."""
    lab = ssh_lab
    target = Target(key=lab.hosts[0], host=lab.addresses[0], port=lab.port, user=lab.user,
                    ssh_key=lab.client_key, known_hosts=lab.known_hosts, ssh_config="/dev/null")
    command = "for i in 1 2 3 4 5; do head -c 70000 /dev/zero | tr '\\0' {n}; sleep 0.05; done"

    async def main() -> list[tuple[int, bytes]]:
        backend = Libssh2Backend()
        try:
            await backend.run(CommandJob(target, "true"), Collect())  # one connection, pooled
            sinks = [Collect() for _ in range(8)]
            statuses = await asyncio.wait_for(asyncio.gather(*(
                backend.run(CommandJob(target, command.format(n=n)), sink) for n, sink in enumerate(sinks))), 60)
            assert len(backend._pool) == 1
            return [(s, bytes(k.out)) for s, k in zip(statuses, sinks)]
        finally:
            await backend.close()

    for n, (status, out) in enumerate(asyncio.run(main())):
        assert status == 0
        assert out == str(n).encode() * 350000, (n, len(out))


def test_default_cipher_and_mac_are_ctr_and_encrypt_then_mac_unless_configured(ssh_lab: SSHLab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With no Ciphers/MACs configured libssh2 negotiates AES-128-CTR with an encrypt-then-MAC
    SHA-2 MAC (the cheapest pair it has: its GCM goes to OpenSSL a block at a time); a Ciphers
    or MACs line in the ssh config still decides."""
    from ssh2.session import LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC, LIBSSH2_METHOD_MAC_CS

    lab = ssh_lab
    configured = tmp_path / "ssh_config"
    configured.write_text("Ciphers aes256-ctr\nMACs hmac-sha2-512\n")

    async def negotiated(ssh_config: str) -> tuple[str, str, str]:
        target = Target(key=lab.hosts[0], host=lab.addresses[0], port=lab.port, user=lab.user,
                        ssh_key=lab.client_key, known_hosts=lab.known_hosts, ssh_config=ssh_config)
        backend = Libssh2Backend()
        try:
            assert await backend.run(CommandJob(target, "true"), Collect()) == 0
            conn = backend._pool.pooled(target)
            assert conn is not None
            session = conn.wire.session
            return (session.methods(LIBSSH2_METHOD_CRYPT_CS), session.methods(LIBSSH2_METHOD_CRYPT_SC),
                    session.methods(LIBSSH2_METHOD_MAC_CS))
        finally:
            await backend.close()

    assert asyncio.run(negotiated("/dev/null")) == ("aes128-ctr", "aes128-ctr", "hmac-sha2-256-etm@openssh.com")
    assert asyncio.run(negotiated(str(configured))) == ("aes256-ctr", "aes256-ctr", "hmac-sha2-512")


def test_algorithm_lists_follow_openssh_over_libssh2_names() -> None:
    supported = ["aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes128-ctr"]
    assert merge_algorithms("Ciphers", None, supported, ["aes128-ctr"]) == \
        "aes128-ctr,aes256-gcm@openssh.com,aes128-gcm@openssh.com"
    assert merge_algorithms("Ciphers", "-aes256*", supported) == "aes128-gcm@openssh.com,aes128-ctr"
    assert merge_algorithms("Ciphers", "chacha20-poly1305@openssh.com,aes128-ctr", supported) == "aes128-ctr"
    with pytest.raises(AlgorithmError, match="Ciphers"):
        merge_algorithms("Ciphers", "chacha20-poly1305@openssh.com", supported)


def test_encrypted_keys_are_recognised(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    for name, phrase in (("plain", ""), ("locked", "secret phrase")):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", phrase, "-f", str(tmp_path / name)], check=True)
    assert not is_encrypted(str(tmp_path / "plain"))
    assert is_encrypted(str(tmp_path / "locked"))


def test_a_closed_session_keeps_its_descriptor_until_libssh2_lets_go(ssh_lab: SSHLab) -> None:
    """libssh2 writes on its socket when a session's channels or SFTP handles are freed, which the
    garbage collector may do long after the connection closed.  Closing must therefore end the TCP
    connection but keep the descriptor number, or a later connection that reuses the number gets
    those bytes (CI saw another backend's connection fail with 'Max packet size exceeded')."""
    import gc
    import os
    import socket

    from parallax.backends.libssh2_io import Wire
    from ssh2.session import Session

    lab = ssh_lab

    async def main() -> None:
        sock = socket.create_connection((lab.addresses[0], lab.port))
        session = Session()
        wire = Wire(sock, session, asyncio.get_running_loop())
        session.set_blocking(False)
        await wire.call(session.handshake, sock)
        await wire.call(session.userauth_publickey_fromfile, lab.user, lab.client_key)
        channel = await wire.call(session.open_session)  # freed only later, by the collector
        fd = sock.fileno()
        wire.close()
        os.fstat(fd)  # still ours
        assert sock.recv(1) == b""  # but the connection has ended (no need to wait for the server)
        newcomer = socket.socket()
        assert newcomer.fileno() != fd
        newcomer.close()
        del channel, session, wire, sock
        gc.collect()
        with pytest.raises(OSError):  # gone with the session (nothing else has opened a descriptor)
            os.fstat(fd)

    asyncio.run(main())


def test_a_large_copy_arrives_whole_when_libssh2_answers_writes_short(ssh_lab: SSHLab, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """put_file passes libssh2 placeholder bytes for what a short write left it holding (it never
    reads them: libssh2_sftp_write's write-ahead); if a libssh2 release ever read them, the file
    would arrive with zeros in it.  The wrapper checks that short answers really happened."""
    import contextlib
    import hashlib
    import os

    import parallax
    from parallax.backends import libssh2_sftp

    short = []

    class Counting:
        def __init__(self, handle) -> None:  # type: ignore[no-untyped-def]
            self._handle = handle

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self._handle, name)

        def write(self, buf: bytes):  # type: ignore[no-untyped-def]
            rc, written = self._handle.write(buf)
            if written < len(buf):
                short.append(written)
            return rc, written

    original = libssh2_sftp.SFTPFS._open

    @contextlib.asynccontextmanager
    async def counting_open(self, fn, *args):  # type: ignore[no-untyped-def]
        async with original(self, fn, *args) as handle:
            yield Counting(handle)

    monkeypatch.setattr(libssh2_sftp.SFTPFS, "_open", counting_open)
    data = os.urandom(12 * 1024 * 1024 + 12345)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    lab = ssh_lab
    opts = dict(ssh_key=lab.client_key, known_hosts=lab.known_hosts, default_user=lab.user, backend="libssh2",
                timeout=60)
    remote = f"{lab.scratch_dir}/big.bin"
    res = parallax.copy(lab.hosts[:1], str(src), remote, **opts)
    assert not isinstance(res[lab.hosts[0]], parallax.Error), res
    assert short, "no write answered short: the placeholder path was not exercised"
    res = parallax.call(lab.hosts[:1], f"sha256sum {remote}; rm -f {remote}", **opts)
    assert res[lab.hosts[0]].stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_stdout_queued_by_the_stderr_read_is_not_waited_for(ssh_lab: SSHLab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """libssh2's stderr read drains the socket, queueing the stdout that came after the stdout
    read; the socket then stays silent once the window is full.  A pause before every stderr
    read makes that the usual case (a CI run hung on it for 30 s, about 1 call in 70): the
    output must still arrive whole, at once."""
    import time

    import parallax
    from parallax.backends import libssh2

    pulled = []

    class LateStderr:
        def __init__(self, chan) -> None:  # type: ignore[no-untyped-def]
            self._chan = chan

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self._chan, name)

        def read_stderr(self, size: int):  # type: ignore[no-untyped-def]
            time.sleep(0.005)  # sshd fills the socket with stdout meanwhile
            answer = self._chan.read_stderr(size)
            if answer[0] < 0 and self._chan.poll_channel_read(0):
                pulled.append(1)  # this read queued stdout and answered EAGAIN: the case at issue
            return answer

    original = libssh2._start

    async def start(*args):  # type: ignore[no-untyped-def]
        return LateStderr(await original(*args))

    monkeypatch.setattr(libssh2, "_start", start)
    lab = ssh_lab
    size = 8 * 1024 * 1024
    res = parallax.call(lab.hosts[:1], f"head -c {size} /dev/zero", ssh_key=lab.client_key,
                        known_hosts=lab.known_hosts, default_user=lab.user, backend="libssh2", timeout=20)
    result = res[lab.hosts[0]]
    assert not isinstance(result, parallax.Error), result
    assert len(result.stdout) == size
    assert pulled, "no stderr read queued stdout: the case was not exercised"
