"""An example third-party backend: asyncssh on :mod:`parallax.ssh` (ssh config, ProxyJump as ``ssh -J``, host
keys, pool, copy/slurp) and the built-in asyncssh backend's public helpers (connect arguments, SFTP, errors).
Imported by :mod:`parallax_example_plugin`'s factory on first use.  Not claimed: ``stream``, ``check``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncssh

from parallax.backends import asyncssh_errors as errors
from parallax.backends.asyncssh import end_command
from parallax.backends.asyncssh_options import connect_kwargs, recorded_host_key_algs
from parallax.backends.asyncssh_sftp import SFTPFS
from parallax.backends.base import Backend, BackendInfo, BackendSetup, OutputSink
from parallax.errors import AuthenticationFailed, Error, HostKeyError
from parallax.jobs import CommandJob, GetJob, PutJob, Target
from parallax.ssh import transfer
from parallax.ssh.hostconfig import HostConfig
from parallax.ssh.hostkey_check import check_host_key
from parallax.ssh.hostkeys import HostKey, KnownHosts
from parallax.ssh.keys import KeyCache, permission_denied
from parallax.ssh.keywords import IN_PROCESS_OPTIONS
from parallax.ssh.known_hosts_cache import KnownHostsCache
from parallax.ssh.pool import ConnectionPool
from parallax.ssh.targets import TargetConfigs, connect_timeout, environment, identity_paths
from parallax.ssh.tcp import open_tcp

class _Client(asyncssh.SSHClient):
    """asyncssh trusts nothing itself: every host key comes here, to the shared check."""

    def __init__(self, target: Target, hc: HostConfig, known: KnownHosts | None) -> None:
        self.target, self.hc, self.known = target, hc, known
        self.refusal: Error | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        try:
            check_host_key(self.target, self.hc, self.known, HostKey.from_openssh(key.export_public_key().decode()))
        except (Error, ValueError) as e:
            self.refusal = e if isinstance(e, Error) else HostKeyError.at(self.target, str(e))
            return False
        return True


_Chain = list[asyncssh.SSHClientConnection]  # a pooled connection: the ProxyJump hops, then the target's own


class ExampleBackend(Backend):
    """``backend="example"``: one asyncssh connection per host, counting the commands it ran."""

    info = BackendInfo("example", IN_PROCESS_OPTIONS, frozenset({"remote-kill"}))
    jobs_run = 0

    def __init__(self, setup: BackendSetup | None = None) -> None:
        self._configs, self._known, self._keys = TargetConfigs(), KnownHostsCache(), KeyCache(errors.load_keypairs)
        self._pool: ConnectionPool[_Chain] = ConnectionPool(self._connect, lambda c: not c[-1].is_closed(), self._drop)

    def check_target(self, target: Target) -> None:
        super().check_target(target)  # and: a bad option, config file, ProxyJump loop, Ciphers asyncssh lacks
        self._configs.check_in_process(target, self.name, connect_kwargs)

    async def _open(self, target: Target, hc: HostConfig, tunnel: Any) -> asyncssh.SSHClientConnection:
        known = self._known.for_host(target, hc)  # None under host_key_policy off
        client, timeout, kwargs = _Client(target, hc, known), connect_timeout(hc, target), connect_kwargs(hc)
        if known is not None and "server_host_key_algs" not in kwargs:  # show the recorded key, as ssh
            kwargs["server_host_key_algs"] = recorded_host_key_algs(known.known_types(hc.host_key_name)) or ()
        notes: list[str] = []  # why a key file was skipped (as ssh skips it), for the "Permission denied"
        keys = [k for ks in self._keys.usable(identity_paths(hc, target), target.key_passphrase, notes) for k in ks]
        with errors.connecting(
                target, hc.hostname, timeout, lambda d: client.refusal or HostKeyError.at(target, d),
                lambda: AuthenticationFailed.at(target, permission_denied(hc.user, hc.hostname, [], notes))):
            direct = tunnel is None and "proxy_command" not in kwargs  # TCP as every in-process backend does it
            sock = await open_tcp(target, hc, timeout) if direct else None
            try:
                return await asyncssh.connect(
                    hc.hostname, hc.port, tunnel=tunnel, sock=sock, config=None, client_factory=lambda: client,
                    username=hc.user, client_keys=keys, password=target.password,
                    agent_path=None if hc.identities_only else hc.agent_socket(), connect_timeout=timeout,
                    known_hosts=None if known is None else ([], [], []), host_key_alias=hc.host_key_alias, **kwargs)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise

    async def _connect(self, target: Target) -> _Chain:
        hc, chain = self._configs.resolve(target), _Chain()
        try:
            for step in (*self._configs.resolver(target).jump_chain(hc), hc):
                chain.append(await self._open(target, step, chain[-1] if chain else None))
        except BaseException:
            await self._drop(chain)
            raise
        return chain

    async def _drop(self, chain: _Chain) -> None:
        for c in reversed(chain):
            c.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.wait_closed(), 2)

    async def _channel(self, target: Target, open_: Callable[[asyncssh.SSHClientConnection], Awaitable[Any]],
                       refused: Callable[[Exception], Error]) -> Any:
        async def on(chain: _Chain) -> Any:
            with errors.opening_channel(refused, chain[-1].is_closed):
                return await open_(chain[-1])

        with errors.on_connection(target):
            return await self._pool.use(target, on, errors.is_dead)

    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        type(self).jobs_run += 1
        env = environment(self._configs.resolve(job.target), job.target)
        proc = await self._channel(job.target, lambda c: c.create_process(job.command, env=env, encoding=None),
                                   errors.session_refused(job.target))

        async def pump(stream: asyncssh.SSHReader[bytes], emit: Callable[[bytes], None]) -> None:
            while data := await stream.read(1 << 16):
                emit(data)

        try:
            with contextlib.suppress(BrokenPipeError):  # a command that ended already reads no stdin
                proc.stdin.write(job.stdin or b"")
                proc.stdin.write_eof()
            await asyncio.gather(pump(proc.stdout, sink.stdout), pump(proc.stderr, sink.stderr))
            await proc.wait_closed()
        except (asyncssh.Error, ConnectionError) as e:
            proc.close()
            errors.lost(job.target, e)
        except BaseException:  # cancelled or timed out: end the remote command too
            await end_command(proc)
            raise
        rc = proc.returncode
        return 255 if rc is None else rc if rc >= 0 else 128 - rc

    async def _sftp(self, target: Target, walk: Callable[[SFTPFS], Awaitable[None]]) -> None:
        sftp = await self._channel(target, lambda c: c.start_sftp_client(), errors.sftp_refused(target))
        async with sftp:  # asyncssh ends the SFTP session on the way out
            with errors.in_sftp_session(target):
                await walk(SFTPFS(sftp))

    async def put(self, job: PutJob, sink: OutputSink) -> None:
        await self._sftp(job.target, lambda fs: transfer.put(fs, job.src, transfer.sftp_path(job.dst),
                                                             target=job.target, recursive=job.recursive))

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        await self._sftp(job.target, lambda fs: transfer.get(
            fs, transfer.sftp_path(job.src), job.dst, target=job.target, root=transfer.slurp_root(job),
            recursive=job.recursive, label=job.src))

    async def disconnect(self, target: Target) -> None:
        await self._pool.discard(target)

    async def close(self) -> None:
        await self._pool.close()
