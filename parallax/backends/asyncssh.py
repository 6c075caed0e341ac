"""The asyncssh backend: native asyncio SSH, one pooled connection per target.

Behaviour follows the openssh backend (the reference); where asyncssh differs:

* Configuration comes only from ``target.ssh_config`` (else the passwd home's
  ``~/.ssh/config``) and is read by parallax, once per host; asyncssh itself is
  always called with ``config=None`` and every setting passed explicitly, so
  ``$HOME/.ssh`` is never consulted behind the caller's back.  Precedence is
  OpenSSH's command-line order: host entry user/port and ``ssh_key``, then
  ``ssh_options`` (first value wins), then ``host_key_policy``/``known_hosts``,
  then the ssh config, then ``connect_timeout``.
* Client keys and known_hosts files are parsed once per backend instance
  (cached by path; known_hosts also by size and mtime) and handed to asyncssh
  as objects.  Without any explicit identity the passwd home's default keys
  (``~/.ssh/id_*``) are offered; encrypted ones only when a password is set.
  ``IdentitiesOnly yes`` disables the agent altogether.  GSSAPI is never used.
* Host keys: ``strict`` (also ``None``, ``StrictHostKeyChecking yes/ask``)
  rejects unknown keys; ``accept-new`` accepts and appends unknown keys to the
  first user known_hosts file and rejects changed ones;
  ``StrictHostKeyChecking no`` accepts anything and records unknown keys;
  ``off`` checks and records nothing.
* ``ProxyJump`` (option or config, comma-separated hops) is opened by this
  backend with the same keys, known_hosts and policy as the target; a hop's
  own ``ProxyJump`` is not followed.  ``ProxyCommand`` from the config works.
* Exit status: the remote status; a command killed by signal N reports
  ``128 + N`` (like a shell and the local backend); a channel closed without
  any status reports 255.
* Cancellation sends ``TERM`` to the remote command (OpenSSH >= 7.9 delivers it
  to the session's process group), closes the channel and re-raises.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import errno
import logging
import os
import signal
import socket
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from collections.abc import Awaitable, Callable

import asyncssh

from ..errors import (
    AuthenticationFailed,
    BadInput,
    ConnectionFailed,
    ConnectionLost,
    Error,
    HostKeyChanged,
    HostKeyUnknown,
    NameResolutionFailed,
    Timeout,
    TransferFailed,
    TransportError,
    UnsupportedOption,
)
from ..jobs import CheckJob, CommandJob, GetJob, PutJob, Target
from ..ssh import transfer
from ..ssh.config import USER_CONFIG, ConfigError, ConfigResolver
from ..ssh.policy import HostKeyPolicy
from .base import Backend, OutputSink, Stream, StreamSink
from .hostkeys import record_host_key, unrecordable

log = logging.getLogger("parallax")
T = TypeVar("T")

CLOSE_GRACE = 1.0  # seconds to wait for a cancelled channel to close
CANCEL_GRACE = 0.2  # seconds a cancelled command waits for its channel's close to be confirmed

#: Lower-case ssh option names this backend honours in ``ssh_options`` (values checked by the shared resolver).
SUPPORTED_OPTIONS = frozenset({
    "user", "port", "hostname", "identityfile", "identitiesonly", "identityagent", "stricthostkeychecking",
    "userknownhostsfile", "globalknownhostsfile", "hostkeyalias", "connecttimeout", "proxyjump",
    "batchmode",  # accepted: this backend never prompts
    "loglevel",  # accepted: parallax logs quietly whatever the level (crmsh sets it)
    "compression", "serveraliveinterval", "serveralivecountmax", "tcpkeepalive", "addressfamily",
    "passwordauthentication", "pubkeyauthentication", "kbdinteractiveauthentication", "preferredauthentications",
    "kexalgorithms", "ciphers", "macs", "hostkeyalgorithms", "setenv", "sendenv",
})

_POLICY_NAMES = {HostKeyPolicy.STRICT: "strict", HostKeyPolicy.ACCEPT_NEW: "accept-new", HostKeyPolicy.NO: "no",
                 HostKeyPolicy.OFF: "off"}
_FAMILIES = {"any": socket.AF_UNSPEC, "inet": socket.AF_INET, "inet6": socket.AF_INET6}


def _fast_ciphers() -> list[str]:
    """asyncssh's ciphers with AES-GCM first.

    asyncssh puts chacha20-poly1305 first, which it runs as several small
    calls into ``cryptography`` per packet; AES-GCM is one AEAD call (and
    AES-NI on the server), which measurably cuts CPU per command and per MiB.
    Every default cipher stays offered, so no server is refused.
    """
    from asyncssh.encryption import get_encryption_algs

    algs = [a.decode() for a in get_encryption_algs()]
    first = [a for a in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") if a in algs]
    return first + [a for a in algs if a not in first]


def _lenient_algs(value: str | None, possible: Callable[[], list[bytes]]) -> str | None:
    """Drop algorithm names asyncssh lacks from a config value (OpenSSH-only names)."""
    if not value:
        return None
    prefix = value[0] if value[0] in "+-^" else ""
    names = [n for n in value[len(prefix):].split(",") if n]
    try:
        known = {a.decode() for a in possible()}
    except Exception:  # pragma: no cover - internal API moved: pass through
        return value
    kept = [n for n in names if n in known or any(c in n for c in "*?!")]
    return prefix + ",".join(kept) if kept else None


def _possible(kind: str) -> Callable[[], list[bytes]]:
    def get() -> list[bytes]:
        if kind == "kex":
            from asyncssh.kex import get_kex_algs
            return get_kex_algs()
        if kind == "enc":
            from asyncssh.encryption import get_encryption_algs
            return get_encryption_algs()
        if kind == "mac":
            from asyncssh.mac import get_mac_algs
            return get_mac_algs()
        from asyncssh.public_key import get_certificate_algs, get_public_key_algs
        return get_certificate_algs() + get_public_key_algs()

    return get


def parse_jump(spec: str, target: Target) -> Target:
    """One ``ProxyJump`` hop (``[user@]host[:port]`` or ``ssh://...``) as a Target."""
    text = spec.strip()
    if text.startswith("ssh://"):
        text = text[len("ssh://"):].rstrip("/")
    user = None
    if "@" in text:
        user, text = text.rsplit("@", 1)
    port = None
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1:]
        if rest.startswith(":"):
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text
    if not host or host.startswith("-") or (port is not None and not (port.isdigit() and 1 <= int(port) <= 65535)):
        raise BadInput(f"ProxyJump {spec!r} is not [user@]host[:port]", host=target.key)
    keep = tuple((k, v) for k, v in target.ssh_options
                 if k.lower() not in ("user", "port", "hostname", "proxyjump", "hostkeyalias", "setenv", "sendenv"))
    return dataclasses.replace(target, key=f"{target.key} via {spec}", host=host, port=int(port) if port else None,
                               user=user or None, ssh_options=keep, ssh_extra=(), env=())


@dataclass
class _Conf:
    """Everything needed to connect to one target, resolved once."""

    target: Target
    host: str
    port: int
    user: str
    key_files: tuple[str, ...]
    required_key: str | None
    explicit_keys: bool
    agent_path: str | None
    policy: str  # strict | accept-new | no | off
    known_hosts_files: tuple[str, ...]
    record_file: str | None
    host_key_alias: str | None
    jumps: tuple[str, ...]
    connect_timeout: float | None
    env: dict[str, str]
    send_env: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Pooled:
    conn: asyncssh.SSHClientConnection
    jumps: list[asyncssh.SSHClientConnection]
    client: _Client


class _Client(asyncssh.SSHClient):
    """Applies the host key policy and tells the pool when the connection dies."""

    def __init__(self, backend: AsyncSSHBackend, conf: _Conf, known: Any, pool_key: Target | None) -> None:
        self.backend = backend
        self.conf = conf
        self.known = known
        self.pool_key = pool_key
        self.changed: bool | None = None
        self.unrecordable: Error | None = None  # accept-new could not record the key
        self.auth = "publickey"  # what authenticated (for check): "password" once the password was used

    def password_for(self, password: str | None) -> Callable[[], str] | None:
        """The password as asyncssh's callable form, noting that it was asked for."""
        if password is None:
            return None

        def give() -> str:
            self.auth = "password"
            return password

        return give

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        recorded = self.known.match(host, addr, port)[0] if self.known is not None else []
        self.changed = bool(recorded)
        policy = self.conf.policy
        if policy == "strict" or (policy == "accept-new" and recorded):
            return False
        if not recorded and self.conf.record_file:
            try:
                self.backend._record_host_key(self.conf.record_file, host, port, key)
            except OSError as e:  # a key accept-new cannot pin is not accepted
                self.unrecordable = unrecordable(self.conf.record_file, self.conf.target, e)
                return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.backend._connection_lost(self)


class _Session(asyncssh.SSHClientSession[bytes]):
    """Streams a command's output straight into the sink."""

    def __init__(self, sink: OutputSink, done: asyncio.Future[Exception | None] | None = None) -> None:
        self.sink = sink
        self.done = done

    def data_received(self, data: bytes, datatype: Any) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self.sink.stderr(data)
        else:
            self.sink.stdout(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(exc)


class _StreamSession(_Session):
    """A long-lived channel (see :meth:`AsyncSSHBackend.open_stream`): output to the sink."""

    sink: StreamSink

    def __init__(self, sink: StreamSink) -> None:
        super().__init__(sink)
        self.chan: Any = None

    def connection_made(self, chan: Any) -> None:
        self.chan = chan

    def connection_lost(self, exc: Exception | None) -> None:
        self.sink.closed(exc)

    # --- the Stream side ---
    def write(self, data: bytes) -> None:
        self.chan.write(data)

    def signal(self, name: str) -> None:
        try:
            self.chan.send_signal(name)
        except Exception:
            pass

    def close(self) -> None:
        self.chan.close()


def _signal_status(name: str) -> int:
    try:
        return 128 + signal.Signals["SIG" + name.upper().removeprefix("SIG")].value
    except KeyError:
        return 255


def _copy_error(exc: Error) -> Error:
    new = type(exc)(exc.msg)
    new.__cause__ = exc.__cause__
    return new


class AsyncSSHBackend(Backend):
    """asyncssh transport: pooled connections, channels per job, SFTP transfers."""

    name = "asyncssh"
    capabilities = frozenset({"remote-kill", "stream", "check"})
    supported_options = SUPPORTED_OPTIONS

    def __init__(self, settings: object = None) -> None:
        self.settings = settings
        self._pool: dict[Target, asyncio.Future[_Pooled]] = {}
        self._resolvers: dict[str | None, ConfigResolver] = {}
        self._waiting: dict[Target, int] = {}
        self._confs: dict[tuple[Target, tuple[tuple[str, str], ...]], _Conf] = {}
        self._keys: dict[tuple[str, str | None, bool], list[Any]] = {}
        self._known: dict[tuple[tuple[str, int, int], ...], Any] = {}
        self._recorded: set[tuple[str, str, bytes]] = set()

    # --- checks and settings ------------------------------------------------
    def check_target(self, target: Target) -> None:
        """Refuse unsupported options and raw ssh arguments, and bad option values."""
        super().check_target(target)
        if target.ssh_extra:
            raise UnsupportedOption(
                f"ssh_extra {list(target.ssh_extra)!r} (raw OpenSSH arguments) is not supported by the "
                f"{self.name} backend; use ssh_options", host=target.key)
        self._conf(target)  # the shared resolver checks the options and the config file

    def _conf(self, target: Target) -> _Conf:
        key = (target.connection, target.env)
        conf = self._confs.get(key)
        if conf is None:
            conf = self._confs[key] = self._build_conf(target)
        return conf

    def _resolver(self, target: Target) -> ConfigResolver:
        path = target.ssh_config
        found = self._resolvers.get(path)
        if found is None:
            try:
                found = self._resolvers[path] = ConfigResolver(path if path is not None else USER_CONFIG)
            except ConfigError as e:
                raise BadInput(f"ssh_config: {e}", host=target.key) from None
        return found

    def _build_conf(self, target: Target) -> _Conf:
        """The target through the shared resolver (:mod:`parallax.ssh.config`), as asyncssh's arguments."""
        options: list[tuple[str, str]] = list(target.ssh_options)
        if target.known_hosts is not None and target.host_key_policy != "off":
            options.append(("UserKnownHostsFile", target.known_hosts))  # after ssh_options, as on ssh's argv
        try:
            hc = self._resolver(target).resolve(
                target.host, user=target.user, port=target.port,
                identity_files=[target.ssh_key] if target.ssh_key else [],
                ssh_options=options, host_key_policy=target.host_key_policy)
        except ConfigError as e:
            raise BadInput(str(e), host=target.key) from None
        jumps = tuple(str(hop) for hop in hc.proxy_jump)
        user_files = [p for p in hc.user_known_hosts_files if p != "/dev/null"]
        known_files = tuple(user_files + [p for p in hc.global_known_hosts_files if p != "/dev/null"])
        env = hc.environment()
        env.update(dict(target.env))
        kwargs: dict[str, Any] = {
            "gss_kex": False, "gss_auth": False,
            "x509_trusted_certs": None, "x509_trusted_cert_paths": [],
            "compression_algs": "zlib@openssh.com,zlib,none" if hc.compression else "none",
            "password_auth": hc.password_authentication, "public_key_auth": hc.pubkey_authentication,
            "kbdint_auth": hc.kbd_interactive_authentication, "family": _FAMILIES[hc.address_family],
            "tcp_keepalive": hc.tcp_keep_alive,
        }
        for value, arg, kind in ((hc.kex_algorithms, "kex_algs", "kex"), (hc.ciphers, "encryption_algs", "enc"),
                                 (hc.macs, "mac_algs", "mac"), (hc.host_key_algorithms, "server_host_key_algs", "key")):
            algs = _lenient_algs(value, _possible(kind))
            if algs:
                kwargs[arg] = algs
        kwargs.setdefault("encryption_algs", _fast_ciphers())
        if hc.server_alive_interval:
            kwargs["keepalive_interval"] = hc.server_alive_interval
            kwargs["keepalive_count_max"] = hc.server_alive_count_max
        if hc.preferred_authentications:
            kwargs["preferred_auth"] = ",".join(hc.preferred_authentications)
        if hc.bind_address:
            kwargs["local_addr"] = (hc.bind_address, 0)
        if hc.proxy_command and not jumps:
            kwargs["proxy_command"] = hc.proxy_command
        return _Conf(
            target=target, host=hc.hostname, port=hc.port, user=hc.user,
            key_files=hc.identity_files, required_key=target.ssh_key, explicit_keys=not hc.default_identities,
            agent_path=None if hc.identities_only else hc.agent_socket(),
            policy=_POLICY_NAMES[hc.host_key_policy], known_hosts_files=known_files,
            record_file=user_files[0] if user_files else None,
            host_key_alias=hc.host_key_alias, jumps=jumps,
            connect_timeout=float(hc.connect_timeout) if hc.connect_timeout else target.connect_timeout,
            env=env, send_env=(), kwargs=kwargs,
        )

    # --- cached keys and known_hosts -----------------------------------------
    def _client_keys(self, conf: _Conf) -> list[Any]:
        target = conf.target
        passphrase = target.key_passphrase  # unlocks keys only; never sent as a password
        if conf.required_key and not os.path.exists(conf.required_key):
            # as ssh and the other backends report it: the identity cannot be offered, so authentication fails
            raise AuthenticationFailed.at(target, f"identity file {conf.required_key} not found")
        if conf.explicit_keys:
            paths, ignore_encrypted = conf.key_files, False
        else:
            paths, ignore_encrypted = conf.key_files, passphrase is None  # OpenSSH's defaults
        keys: list[Any] = []
        for path in paths:
            cache_key = (path, passphrase, ignore_encrypted)
            loaded = self._keys.get(cache_key)
            if loaded is None:
                if not os.path.exists(path):
                    continue  # like ssh: a configured but missing identity is skipped
                try:
                    loaded = list(asyncssh.load_keypairs([path], passphrase, ignore_encrypted=ignore_encrypted))
                except asyncssh.KeyEncryptionError as e:
                    raise AuthenticationFailed.at(
                        target, f"cannot decrypt key {path}: {e}") from None
                except asyncssh.KeyImportError as e:
                    if "assphrase" in str(e):
                        raise AuthenticationFailed.at(
                            target, f"key {path} is encrypted "
                            f"and no passphrase was given") from None
                    raise AuthenticationFailed.at(
                        target, f"cannot load key {path}: {e}") from None
                except OSError as e:
                    raise AuthenticationFailed.at(
                        target, f"cannot read key {path}: {e.strerror}") from None
                self._keys[cache_key] = loaded
            keys.extend(loaded)
        return keys

    def _known_hosts(self, conf: _Conf) -> Any:
        stamps = []
        for path in conf.known_hosts_files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            stamps.append((path, st.st_mtime_ns, st.st_size))
        key = tuple(stamps)
        known = self._known.get(key)
        if known is None:
            try:
                paths = [p for p, _, _ in stamps]
                known = asyncssh.read_known_hosts(paths) if paths else asyncssh.import_known_hosts("")
            except (OSError, ValueError) as e:
                raise BadInput(f"known_hosts for {conf.target.label} cannot be read: {e}",
                               host=conf.target.key) from None
            self._known[key] = known
        return known

    def _record_host_key(self, path: str, host: str, port: int, key: asyncssh.SSHKey) -> None:
        """Pin *key* for *host* in *path* (created 0600, its directory 0700); ``OSError``
        if it cannot be written (the caller then refuses the key)."""
        pattern = host if port in (None, 22) else f"[{host}]:{port}"
        words = key.export_public_key("openssh").decode().split()
        entry = (path, pattern, words[1].encode())
        if entry in self._recorded:
            return
        record_host_key(path, pattern, words[0], words[1])
        self._recorded.add(entry)

    # --- connections ------------------------------------------------------------
    async def _open(self, conf: _Conf, tunnel: Any, pool_key: Target | None) -> tuple[Any, _Client]:
        target = conf.target
        keys = self._client_keys(conf)
        known = None if conf.policy == "off" else self._known_hosts(conf)
        client = _Client(self, conf, known, pool_key)
        kwargs = dict(conf.kwargs)
        if conf.connect_timeout:
            kwargs["connect_timeout"] = conf.connect_timeout
        try:
            conn = await asyncssh.connect(
                conf.host, conf.port, tunnel=tunnel, config=None, client_factory=lambda: client,
                username=conf.user, client_keys=keys, agent_path=conf.agent_path, agent_identities=None,
                password=client.password_for(target.password), passphrase=target.key_passphrase, known_hosts=known,
                host_key_alias=conf.host_key_alias, **kwargs)
        except (Error, asyncio.CancelledError):
            raise
        except Exception as e:
            raise self._connect_error(e, conf, client) from e
        return conn, client

    def _connect_error(self, exc: Exception, conf: _Conf, client: _Client) -> Error:
        label, detail = conf.target.label, str(exc) or type(exc).__name__
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            if client.unrecordable is not None:
                return client.unrecordable
            changed = client.changed
            if changed is None and client.known is not None:
                changed = bool(client.known.match(conf.host_key_alias or conf.host, "", conf.port)[0])
            if changed:
                return HostKeyChanged.at(conf.target, detail)
            return HostKeyUnknown.at(conf.target, detail)
        if isinstance(exc, asyncssh.PermissionDenied):
            return AuthenticationFailed.at(conf.target, detail)
        if isinstance(exc, (asyncssh.KeyExchangeFailed, asyncssh.ProtocolNotSupported)):
            return TransportError.at(conf.target, detail)
        if isinstance(exc, (asyncssh.DisconnectError, asyncssh.ChannelOpenError)):
            return ConnectionFailed.at(conf.target, detail)
        if isinstance(exc, socket.gaierror):
            return NameResolutionFailed(f"Could not resolve hostname {conf.host}: {exc.strerror or detail}")
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return Timeout.at(conf.target, f"no answer within {conf.connect_timeout:g} s"
                              if conf.connect_timeout else detail)
        if isinstance(exc, OSError):
            reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or detail)
            return ConnectionFailed.at(conf.target, reason)
        if isinstance(exc, ValueError):
            return BadInput(f"Invalid SSH settings for {label}: {detail}", host=conf.target.key)
        return TransportError.at(conf.target, f"{type(exc).__name__}: {detail}")

    async def _connect(self, target: Target, pool_key: Target) -> _Pooled:
        conf = self._conf(target)
        jumps: list[Any] = []
        try:
            tunnel = None
            for hop in conf.jumps:
                hop_conf = self._conf(parse_jump(hop, target))
                if hop_conf.jumps:
                    hop_conf = dataclasses.replace(hop_conf, jumps=())
                tunnel, _ = await self._open(hop_conf, tunnel, None)
                jumps.append(tunnel)
            conn, client = await self._open(conf, tunnel, pool_key)
        except BaseException:
            await _close_all(reversed(jumps))
            raise
        return _Pooled(conn, jumps, client)

    async def _acquire(self, target: Target) -> tuple[_Pooled, bool]:
        """The pooled connection for *target* (connecting if needed) and whether it is new."""
        key = target.connection
        task = self._pool.get(key)
        if task is not None and task.done():
            if task.cancelled() or task.exception() is not None or task.result().conn.is_closed():
                self._pool.pop(key, None)
                if not task.cancelled() and task.exception() is None:
                    await self._close_pooled(task.result())
                task = None
            else:
                return task.result(), False
        if task is None:
            task = asyncio.ensure_future(self._connect(target, key))
            self._pool[key] = task
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            return await asyncio.shield(task), True
        except asyncio.CancelledError:
            if self._waiting.get(key) == 1 and not task.done():
                task.cancel()
                await asyncio.wait([task])
                if self._pool.get(key) is task:
                    self._pool.pop(key, None)
            raise
        except Error as e:
            if self._pool.get(key) is task:
                self._pool.pop(key, None)
            raise _copy_error(e) from e.__cause__
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]

    async def _with_connection(self, target: Target, opener: Callable[[Any], Awaitable[T]],
                               refused: Callable[[Exception], Error]) -> T:
        """Open a channel with *opener*; re-establish a dead pooled connection once."""
        for attempt in (0, 1):
            pooled, fresh = await self._acquire(target)
            try:
                return await opener(pooled.conn)
            except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, ConnectionError, BrokenPipeError) as e:
                if not pooled.conn.is_closed() and isinstance(e, asyncssh.ChannelOpenError):
                    raise refused(e) from e
                await self._drop(target, pooled)
                if fresh or attempt:
                    raise ConnectionFailed.at(target, str(e)) from e
                log.debug("%s: pooled connection is dead (%s); reconnecting", target.key, e)
        raise AssertionError("unreachable")

    def _connection_lost(self, client: _Client) -> None:
        key = client.pool_key
        if key is None:
            return
        task = self._pool.get(key)
        if task is not None and task.done() and not task.cancelled() and task.exception() is None \
                and task.result().client is client:
            pooled = self._pool.pop(key).result()
            for jump in pooled.jumps:
                jump.close()

    async def _drop(self, target: Target, pooled: _Pooled) -> None:
        key = target.connection
        task = self._pool.get(key)
        if task is not None and task.done() and not task.cancelled() and task.exception() is None \
                and task.result() is pooled:
            self._pool.pop(key, None)
        await self._close_pooled(pooled)

    @staticmethod
    async def _close_pooled(pooled: _Pooled) -> None:
        await _close_all([pooled.conn, *reversed(pooled.jumps)])

    async def disconnect(self, target: Target) -> None:
        task = self._pool.pop(target.connection, None)
        await self._discard(task)

    async def _discard(self, task: asyncio.Future[_Pooled] | None) -> None:
        if task is None:
            return
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
        if not task.cancelled() and task.exception() is None:
            await self._close_pooled(task.result())

    async def close(self) -> None:
        tasks = list(self._pool.values())
        self._pool.clear()
        await asyncio.gather(*(self._discard(t) for t in tasks), return_exceptions=True)

    # --- operations ------------------------------------------------------------
    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        target = job.target
        conf = self._conf(target)
        done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

        async def opener(conn: Any) -> Any:
            chan, _ = await conn.create_session(
                lambda: _Session(sink, done), job.command, env=conf.env or (), send_env=conf.send_env or (),
                request_pty=False, encoding=None)
            return chan

        def refused(e: Exception) -> Error:
            return TransportError.at(target, f"cannot open a session: {e}")

        chan = await self._with_connection(target, opener, refused)
        try:
            if job.stdin:
                chan.write(job.stdin)
            chan.write_eof()
            exc = await asyncio.shield(done)  # cancelling us must not cancel *done*: cleanup waits on it
        except BaseException:
            try:
                chan.send_signal("TERM")
            except Exception:
                pass
            chan.close()
            try:  # briefly: a frozen server never confirms, and a timeout must end on time
                await asyncio.wait_for(asyncio.shield(done), CANCEL_GRACE)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            raise
        if exc is not None:
            raise ConnectionLost.at(target, str(exc) or type(exc).__name__)
        status = chan.get_exit_status()
        if status is not None and status >= 0:
            return int(status)
        exit_signal = chan.get_exit_signal()
        return _signal_status(exit_signal[0]) if exit_signal else 255

    async def check(self, job: CheckJob, sink: OutputSink) -> str:
        """Connect and authenticate (the pooled connection), opening no channel."""
        pooled, _ = await self._acquire(job.target)
        return pooled.client.auth

    async def open_stream(self, target: Target, command: str, sink: StreamSink) -> Stream:
        conf = self._conf(target)

        async def opener(conn: Any) -> _StreamSession:
            _, session = await conn.create_session(
                lambda: _StreamSession(sink), command, env=conf.env or (), send_env=conf.send_env or (),
                request_pty=False, encoding=None)
            stream: _StreamSession = session
            return stream

        def refused(e: Exception) -> Error:
            return TransportError.at(target, f"cannot open a session: {e}")

        return await self._with_connection(target, opener, refused)

    async def _sftp(self, target: Target) -> Any:
        def refused(e: Exception) -> Error:
            return TransferFailed.at(target, f"SFTP is not available: {e}")

        async def opener(conn: Any) -> Any:
            try:
                return await conn.start_sftp_client()
            except asyncssh.SFTPError as e:
                raise refused(e) from e

        return await self._with_connection(target, opener, refused)

    async def _transfer(self, target: Target, action: Callable[[_SFTPFS], Awaitable[None]]) -> None:
        """Run a :mod:`parallax.ssh.transfer` walk over an SFTP session; a lost connection is
        ``ConnectionFailed`` (per-path failures are already ``TransferFailed``)."""
        sftp = await self._sftp(target)
        try:
            await action(_SFTPFS(sftp))
        except (asyncssh.SFTPError, asyncssh.DisconnectError, ConnectionError) as e:
            reason = getattr(e, "reason", None) or str(e) or type(e).__name__
            raise ConnectionFailed(f"Connection to {target.label} lost: {reason}") from e
        finally:
            sftp.exit()
            try:
                await asyncio.wait_for(sftp.wait_closed(), CLOSE_GRACE)
            except (asyncio.TimeoutError, Exception):
                pass

    async def put(self, job: PutJob, sink: OutputSink) -> None:
        await self._transfer(job.target, lambda fs: transfer.put(
            fs, job.src, transfer.sftp_path(job.dst), target=job.target, recursive=job.recursive))

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        await self._transfer(job.target, lambda fs: transfer.get(
            fs, transfer.sftp_path(job.src), job.dst, target=job.target, root=transfer.slurp_root(job),
            recursive=job.recursive, label=job.src))


# SFTP failures that mean the session is gone (the rest are about one path)
_SFTP_LOST = (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection)
_SFTP_ERRNO = ((asyncssh.SFTPNoSuchFile, errno.ENOENT), (asyncssh.SFTPNoSuchPath, errno.ENOENT),
               (asyncssh.SFTPPermissionDenied, errno.EACCES), (asyncssh.SFTPNotADirectory, errno.ENOTDIR),
               (asyncssh.SFTPNoSpaceOnFilesystem, errno.ENOSPC))
_SFTP_TYPES = {asyncssh.FILEXFER_TYPE_REGULAR: stat.S_IFREG, asyncssh.FILEXFER_TYPE_DIRECTORY: stat.S_IFDIR,
               asyncssh.FILEXFER_TYPE_SYMLINK: stat.S_IFLNK}


def _os_error(e: asyncssh.SFTPError) -> OSError:
    """A failure about one path, as the transfer walk takes it."""
    code = next((n for cls, n in _SFTP_ERRNO if isinstance(e, cls)), errno.EIO)
    return OSError(code, e.reason or type(e).__name__)


def _attrs(a: asyncssh.SFTPAttrs) -> transfer.Attrs:
    mode = a.permissions or 0
    if not stat.S_IFMT(mode):
        mode |= _SFTP_TYPES.get(a.type, 0)
    return transfer.Attrs(mode, a.size, a.atime, a.mtime)


class _SFTPFS:
    """:class:`parallax.ssh.transfer.RemoteFS` over an asyncssh ``SFTPClient``.

    A file moves with up to as many reads (writes) in flight as asyncssh's own
    copy uses, read until the end of the file whatever size the server listed;
    every request task is awaited or cancelled before a call returns, so a
    dropped connection leaves no task with an unretrieved exception.
    """

    def __init__(self, sftp: asyncssh.SFTPClient) -> None:
        self._sftp = sftp

    @staticmethod
    async def _call(aw: Awaitable[T]) -> T:
        try:
            return await aw
        except _SFTP_LOST:
            raise
        except asyncssh.SFTPError as e:
            raise _os_error(e) from None

    async def stat(self, path: str) -> transfer.Attrs:
        return _attrs(await self._call(self._sftp.stat(path)))

    async def listdir(self, path: str) -> list[transfer.Entry]:
        try:
            names = await self._sftp.readdir(path)
        except _SFTP_LOST:
            raise
        except asyncssh.SFTPError as e:
            if isinstance(e, asyncssh.SFTPBadMessage) and "decode" in (e.reason or ""):
                raise OSError(errno.EILSEQ, transfer.NOT_UTF8) from None  # as the paramiko adapter says
            raise _os_error(e) from None
        return [transfer.Entry(n.filename if isinstance(n.filename, str) else
                               n.filename.decode("utf-8", "surrogateescape"), _attrs(n.attrs)) for n in names]

    async def mkdir(self, path: str) -> None:
        await self._call(self._sftp.mkdir(path, asyncssh.SFTPAttrs(permissions=0o700)))

    async def chmod(self, path: str, mode: int) -> None:
        await self._call(self._sftp.chmod(path, mode))

    async def utime(self, path: str, atime: float, mtime: float) -> None:
        await self._call(self._sftp.utime(path, (atime, mtime)))

    async def get_file(self, remote: str, local: transfer.Writer, size: int | None) -> None:
        # block_size=0: one SFTP request per read call (as asyncssh's own copy opens files)
        f = await self._call(self._sftp.open(remote, "rb", block_size=0))
        try:
            await self._call(_read_all(f, local, size or 0, self._sftp.limits.max_read_len or 16384))
        finally:
            await _close_file(f)

    async def put_file(self, local: transfer.Reader, remote: str, size: int) -> None:
        f = await self._call(self._sftp.open(remote, "wb", block_size=0))
        try:
            await self._call(_write_all(f, local, self._sftp.limits.max_write_len or 16384))
        except BaseException:
            await _close_file(f)
            raise
        await self._call(f.close())


def _depth(block: int) -> int:
    """Requests in flight per file: what asyncssh's own copy uses."""
    return max(16, min(4 * 1024 * 1024 // block, 128))


async def _read_all(f: asyncssh.SFTPClientFile, out: transfer.Writer, hint: int, block: int) -> None:
    """Copy *f* into *out* until its end.  Reads sized to *hint* (the listed size) are in flight
    together with one just past it, which finds the end in the same round trip; beyond the hint
    (a file that grew, or a server that lied) more reads follow while data keeps coming."""
    pending: collections.deque[tuple[int, int, asyncio.Future[bytes]]] = collections.deque()
    offset = 0
    try:
        while True:
            while (len(pending) < _depth(block) and (offset <= hint or not pending)
                   and not _failed(task for _, _, task in pending)):
                size = min(block, hint - offset) if offset < hint else block
                pending.append((offset, size, asyncio.ensure_future(f.read(size, offset))))
                offset += size
                await asyncio.sleep(0)  # let it send: on a dead connection the next one then fails fast
            if not pending:
                return
            start, size, task = pending.popleft()
            data = await task
            if not data:
                return  # the end (every read still pending is past it)
            out.write(data)
            pos = start + len(data)
            if pos > hint:
                hint = 2 * pos
            while pos < start + size:  # a short read: the rest of this range, in order
                more = cast(bytes, await f.read(start + size - pos, pos))  # opened binary
                if not more:
                    return
                out.write(more)
                pos += len(more)
    finally:
        await _abandon(task for _, _, task in pending)


async def _write_all(f: asyncssh.SFTPClientFile, src: transfer.Reader, block: int) -> None:
    pending: collections.deque[asyncio.Future[int]] = collections.deque()
    offset = 0
    try:
        while True:
            data = src.read(block)
            if not data:
                break
            pending.append(asyncio.ensure_future(f.write(data, offset)))
            offset += len(data)
            await asyncio.sleep(0)  # as in _read_all
            if len(pending) >= _depth(block) or _failed(pending):
                await pending.popleft()
        while pending:
            await pending.popleft()
    finally:
        await _abandon(pending)


def _failed(tasks: Iterable[asyncio.Future[Any]]) -> bool:
    """Whether a request already failed: then no new one is sent (on a dead connection each
    would be one more write asyncio complains about)."""
    return any(t.done() and not t.cancelled() and t.exception() is not None for t in tasks)


async def _abandon(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel and await request tasks no longer wanted (their failures are expected)."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def _close_file(f: asyncssh.SFTPClientFile) -> None:
    try:
        await asyncio.wait_for(f.close(), CLOSE_GRACE)
    except (asyncio.TimeoutError, asyncssh.Error, OSError):
        pass  # the transfer's own failure is what the caller sees


async def _close_all(conns: Any) -> None:
    conns = list(conns)
    for conn in conns:
        conn.close()
    for conn in conns:
        try:
            await asyncio.wait_for(conn.wait_closed(), CLOSE_GRACE * 5)
        except (asyncio.TimeoutError, Exception):
            pass


__all__ = ["SUPPORTED_OPTIONS", "AsyncSSHBackend", "parse_jump"]
