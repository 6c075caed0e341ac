"""An embedded SSH test host: an asyncssh server in a background thread.

Used where :class:`parallax.testing.SSHLab` cannot run (no root, no
``openssh-server``).  :class:`EmbeddedSSHHost` exposes the same attributes as
``SSHLab``::

    with EmbeddedSSHHost(hosts=2) as host:
        subprocess.run(["ssh", "-F", host.ssh_config, "h1", "true"], check=True)
        parallax.call(host.hosts, "uname", ssh_key=host.client_key,
                      known_hosts=host.known_hosts, default_user=host.user, backend="asyncssh")

Every exec request runs ``/bin/sh -c <command>`` as a real subprocess of the
test process (as the current user, in its passwd home directory) with the
session's stdin/stdout/stderr pumped through, the client's environment
requests applied and the exit status (or signal) reported back.  SFTP and SCP
work on the real file system; relative paths start at the home directory.
Only public-key authentication with ``client_key`` for ``user`` is accepted.

The server listens on ``127.0.0.2``, ``127.0.0.3``, ... sharing one port.  If
those addresses cannot be bound (systems where only ``127.0.0.1`` exists) it
listens on ``127.0.0.1`` with one port per host instead; ``hosts`` and the
``ssh_config`` aliases stay distinct either way.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import tempfile
import threading
import time
import weakref
from typing import Any

import asyncssh

from parallax.backends.process import close_process

__all__ = ["EmbeddedSSHHost"]

_START_TIMEOUT = 15.0
_KILL_GRACE = 2.0
_CHUNK = 65536


def _free_port(addresses: list[str]) -> int:
    """A TCP port bindable on every address right now (never 22)."""
    for _ in range(100):
        socks = []
        try:
            first = socket.socket()
            socks.append(first)
            first.bind((addresses[0], 0))
            port: int = first.getsockname()[1]
            for addr in addresses[1:]:
                s = socket.socket()
                socks.append(s)
                s.bind((addr, port))
            if port != 22:
                return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no TCP port is free on all of {', '.join(addresses)}")


def _addresses(n: int) -> list[str]:
    if not 1 <= n <= 250:
        raise ValueError(f"hosts must be between 1 and 250, not {n}")
    return [f"127.0.0.{i}" for i in range(2, 2 + n)]


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _State:
    """What cleanup needs; holds no reference to the EmbeddedSSHHost."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.servers: list[Any] = []
        self.conns: set[Any] = set()
        self.pids: set[int] = set()
        #: asyncio's child-watcher threads of our commands (Python < 3.12 waits for each child in one).
        self.reapers: list[threading.Thread] = []
        self.workdir: str | None = None
        self.lock = threading.Lock()
        self.connections = 0
        self.logins = 0


async def _shutdown(state: _State) -> None:
    for server in state.servers:
        server.close()
    for conn in list(state.conns):
        conn.close()
    for pid in list(state.pids):
        _killpg(pid, signal.SIGKILL)
    for server in state.servers:
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except Exception:
            pass
    for conn in list(state.conns):
        try:
            await asyncio.wait_for(conn.wait_closed(), 5)
        except Exception:
            pass
    state.servers = []
    current = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not current]
    if rest:  # the sessions of killed commands end by themselves once their exit is reported
        _, rest = await asyncio.wait(rest, timeout=_KILL_GRACE)
    for t in rest:
        t.cancel()
    if rest:
        await asyncio.wait(rest, timeout=5)
    await asyncio.get_running_loop().shutdown_default_executor()


def _cleanup(state: _State) -> None:
    loop, thread = state.loop, state.thread
    if loop is not None and thread is not None and thread.is_alive():
        try:
            asyncio.run_coroutine_threadsafe(_shutdown(state), loop).result(15)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
    deadline = time.monotonic() + _KILL_GRACE
    for reaper in state.reapers:  # each ends right after reporting its (killed) command's exit
        reaper.join(max(0.0, deadline - time.monotonic()))
    state.reapers = []
    if loop is not None and not loop.is_running() and not loop.is_closed():
        loop.close()
    state.loop = state.thread = None
    if state.workdir:
        shutil.rmtree(state.workdir, ignore_errors=True)
        state.workdir = None


class _Server(asyncssh.SSHServer):
    """Per-connection policy: public key of ``user`` only; counts connections."""

    def __init__(self, host: EmbeddedSSHHost, state: _State) -> None:
        self.host = host
        self.state = state
        self.conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self.conn = conn
        with self.state.lock:
            self.state.connections += 1
        self.state.conns.add(conn)
        peer = conn.get_extra_info("peername") or ("?", 0)
        local = conn.get_extra_info("sockname") or ("?", 0)
        self.host._log(f"Connection from {peer[0]} port {peer[1]} on {local[0]} port {local[1]}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.conns.discard(self.conn)
        if exc is not None:  # e.g. a failed key exchange: what the client offered shows here
            self.host._log(f"Connection closed: {exc}")

    def begin_auth(self, username: str) -> bool:
        return True

    def auth_completed(self) -> None:
        with self.state.lock:
            self.state.logins += 1

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        # TCP forwarding (ProxyJump through this host), to loopback only: tests stay on this machine.
        return dest_host == "localhost" or dest_host.startswith("127.") or dest_host == "::1"

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self.host.user and key == self.host._client_public


class _SFTPServer(asyncssh.SFTPServer):
    """Real file system; relative paths start at the login (home) directory."""

    def __init__(self, chan: Any, home: str) -> None:
        super().__init__(chan)
        self.home = home.encode()

    def exit(self) -> None:
        # asyncssh closes SFTP/SCP channels without an exit status, which
        # OpenSSH's scp and sftp clients report as a failure: send one.
        try:
            if not self.channel.is_closing():
                self.channel.exit(0)
        except Exception:
            pass

    def map_path(self, path: bytes) -> bytes:
        if not path.startswith(b"/"):
            path = os.path.join(self.home, path) if path not in (b"", b".") else self.home
        return path


class EmbeddedSSHHost:
    """asyncssh SSH server on loopback with N host addresses, API-compatible with SSHLab."""

    def __init__(self, hosts: int = 3, *, workdir: str | None = None) -> None:
        self.addresses: list[str] = _addresses(hosts)
        self.aliases: list[str] = [f"h{i}" for i in range(1, hosts + 1)]
        self.ports: list[int] = []
        self.port: int = 0
        pw = pwd.getpwuid(os.getuid())
        self.user: str = pw.pw_name
        self.home: str = pw.pw_dir
        self._requested_workdir = workdir
        self.workdir = self.client_key = self.wrong_key = self.known_hosts = self.ssh_config = ""
        self.host_key_pub = self.scratch_dir = self.log_file = ""
        self._client_public: Any = None
        self._state = _State()
        self._finalizer = weakref.finalize(self, _cleanup, self._state)
        self._started = self._stopped = False

    # -- SSHLab-compatible API -------------------------------------------------
    @property
    def hosts(self) -> list[str]:
        """``"addr:port"`` strings, ready to pass as parallax hosts."""
        return [f"{a}:{p}" for a, p in zip(self.addresses, self.ports)]

    def host_tuples(self) -> list[tuple[str, int, str]]:
        """``(address, port, user)`` for every host."""
        return [(a, p, self.user) for a, p in zip(self.addresses, self.ports)]

    @property
    def running(self) -> bool:
        thread = self._state.thread
        return self._started and not self._stopped and thread is not None and thread.is_alive()

    def log_text(self) -> str:
        """The server's log so far (one line per connection and command)."""
        try:
            with open(self.log_file) as f:
                return f.read()
        except OSError:
            return ""

    def _log(self, line: str) -> None:
        try:
            with open(self.log_file, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass

    def connection_count(self) -> int:
        """TCP connections accepted so far (including ones that failed to authenticate)."""
        return self._state.connections

    def login_count(self) -> int:
        """Successful public-key logins so far."""
        return self._state.logins

    def ssh_argv(self, address: str, *command: str, key: str | None = None, options: Any = ()) -> list[str]:
        """A plain ``ssh`` command line reaching ``address`` (or alias ``hN``)."""
        if address in self.aliases:
            address = self.addresses[self.aliases.index(address)]
        port = self.ports[self.addresses.index(address)] if address in self.addresses else self.port
        return ["ssh", "-F", "/dev/null", "-p", str(port), "-l", self.user, "-i", key or self.client_key,
                *(f"-o{o}" for o in self._client_options()), *options, "--", address, *command]

    def start(self) -> EmbeddedSSHHost:
        """Generate keys and files, start the server thread; returns self."""
        if self._stopped:
            raise RuntimeError("this EmbeddedSSHHost was stopped; create a new one")
        if self._started:
            return self
        try:
            self._prepare()
            st = self._state
            st.loop = asyncio.new_event_loop()
            st.thread = threading.Thread(target=st.loop.run_forever, name="parallax-embedded-ssh", daemon=True)
            st.thread.start()
            asyncio.run_coroutine_threadsafe(self._listen(), st.loop).result(_START_TIMEOUT)
            self._write_client_files()
        except BaseException:
            self._stopped = True
            self._finalizer()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        """Close every connection, kill running commands, stop the thread, remove workdir.  Idempotent."""
        self._stopped = True
        self._finalizer()

    def __enter__(self) -> EmbeddedSSHHost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "new")
        return f"<EmbeddedSSHHost {state} {len(self.addresses)} hosts {self.hosts[:1]}... user {self.user}>"

    # -- internals -------------------------------------------------------------
    def _client_options(self) -> list[str]:
        return [
            "IdentitiesOnly=yes", "IdentityAgent=none", f"UserKnownHostsFile={self.known_hosts}",
            "GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes", "UpdateHostKeys=no", "CheckHostIP=no",
            "BatchMode=yes", "PreferredAuthentications=publickey", "ControlMaster=no", "ControlPath=none",
            "ConnectTimeout=10",
        ]

    def _prepare(self) -> None:
        if self._requested_workdir:
            os.makedirs(self._requested_workdir, exist_ok=True)
            wd = tempfile.mkdtemp(prefix="embedded-", dir=self._requested_workdir)
        else:
            wd = tempfile.mkdtemp(prefix="parallax-embedded-ssh-")
        self._state.workdir = self.workdir = wd
        def j(name: str) -> str:
            return os.path.join(wd, name)

        self._host_key = asyncssh.generate_private_key("ssh-ed25519", comment="parallax-embedded-host")
        self.host_key_pub = self._host_key.export_public_key().decode().strip()
        self.client_key, self.wrong_key = j("client_key"), j("wrong_key")
        for path, comment in ((self.client_key, "parallax-embedded-client"),
                              (self.wrong_key, "parallax-embedded-wrong")):
            key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
            key.write_private_key(path)
            os.chmod(path, 0o600)
            key.write_public_key(path + ".pub")
            if path == self.client_key:
                self._client_public = key.convert_to_public()
        self.scratch_dir = j("scratch")
        os.makedirs(self.scratch_dir, mode=0o700)
        self.log_file = j("server.log")
        open(self.log_file, "w").close()

    async def _listen(self) -> None:
        st = self._state
        common = dict(
            server_host_keys=[self._host_key], server_factory=lambda: _Server(self, st),
            process_factory=self._handle, sftp_factory=lambda chan: _SFTPServer(chan, self.home), allow_scp=True,
            encoding=None,
            password_auth=False, kbdint_auth=False, keepalive_interval=0,
        )
        last: Exception | None = None
        for _ in range(5):
            try:
                port = _free_port(self.addresses)
                for addr in self.addresses:
                    st.servers.append(await asyncssh.listen(addr, port, **common))
                self.port, self.ports = port, [port] * len(self.addresses)
                return
            except OSError as e:
                last = e
                for server in st.servers:
                    server.close()
                st.servers = []
        # Only 127.0.0.1 exists here: one port per host instead of one address per host.
        try:
            for _ in self.addresses:
                st.servers.append(await asyncssh.listen("127.0.0.1", 0, **common))
        except OSError as e:
            raise RuntimeError(f"EmbeddedSSHHost: cannot listen on loopback: {e} (before: {last})") from e
        self.ports = [s.get_port() for s in st.servers]
        self.port = self.ports[0]
        self.addresses = ["127.0.0.1"] * len(self.ports)

    def _write_client_files(self) -> None:
        wd = self.workdir
        key_part = " ".join(self.host_key_pub.split()[:2])
        self.known_hosts = os.path.join(wd, "known_hosts")
        with open(self.known_hosts, "w") as f:
            for addr, port, alias in zip(self.addresses, self.ports, self.aliases):
                f.write(f"[{addr}]:{port},[{alias}]:{port},{alias} {key_part}\n")
        common = [f"User {self.user}", f'IdentityFile "{self.client_key}"']
        for option in self._client_options():
            name, value = option.split("=", 1)
            common.append(f'{name} "{value}"' if any(c.isspace() for c in value) else f"{name} {value}")
        lines = ["# ssh_config generated by parallax.testing.EmbeddedSSHHost", ""]
        for addr, port, alias in zip(self.addresses, self.ports, self.aliases):
            lines += [f"Host {alias}", f"    HostName {addr}", f"    Port {port}", *(f"    {c}" for c in common), ""]
        lines += ["Host *", f"    Port {self.port}", *(f"    {c}" for c in common)]
        self.ssh_config = os.path.join(wd, "ssh_config")
        with open(self.ssh_config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _environment(self, process: Any) -> dict[str, str]:
        env = {
            "HOME": self.home, "USER": self.user, "LOGNAME": self.user, "SHELL": "/bin/sh",
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        }
        peer = process.get_extra_info("peername") or ("", 0)
        local = process.get_extra_info("sockname") or ("", 0)
        env["SSH_CONNECTION"] = f"{peer[0]} {peer[1]} {local[0]} {local[1]}"
        for name, value in dict(process.env).items():
            env[name.decode() if isinstance(name, bytes) else name] = (
                value.decode() if isinstance(value, bytes) else value)
        return env

    async def _handle(self, process: Any) -> None:
        """Run one exec (or shell) request as ``/bin/sh -c`` with the channel's streams."""
        await self._run_command(process, process.command)

    async def _run_command(self, process: Any, command: str | None) -> None:
        """Run one exec (or shell) request as ``/bin/sh -c`` with the channel's streams."""
        st = self._state
        argv = ["/bin/sh", "-c", command] if command is not None else ["/bin/sh"]
        before = set(threading.enumerate())
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self._environment(process), cwd=self.home,
                start_new_session=True)
            st.reapers = [t for t in st.reapers if t.is_alive()]
            st.reapers.extend(t for t in set(threading.enumerate()) - before if t.name.startswith("asyncio-waitpid-"))
        except OSError as e:
            process.stderr.write(f"cannot run {argv[0]}: {e}\n".encode())
            process.exit(127)
            return
        st.pids.add(proc.pid)
        self._log(f"Starting session: command {command!r} pid {proc.pid}")
        process.set_redirect_pid(proc.pid)

        async def pump_out(reader: asyncio.StreamReader, writer: Any) -> None:
            while True:
                chunk = await reader.read(_CHUNK)
                if not chunk:
                    return
                try:
                    writer.write(chunk)
                    await writer.drain()
                except (BrokenPipeError, ConnectionError, asyncssh.DisconnectError):
                    return

        async def pump_in() -> None:
            assert proc.stdin is not None
            try:
                while True:
                    try:
                        chunk = await process.stdin.read(_CHUNK)
                    except asyncssh.SignalReceived as sig:
                        name = "SIG" + sig.signal.upper().removeprefix("SIG")
                        if hasattr(signal, name):
                            _killpg(proc.pid, getattr(signal, name))
                        continue
                    except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
                        continue
                    if not chunk:
                        break
                    proc.stdin.write(chunk)
                    await proc.stdin.drain()
            except (BrokenPipeError, ConnectionError, asyncssh.DisconnectError):
                pass
            finally:
                proc.stdin.close()

        feeder = asyncio.ensure_future(pump_in())
        outputs = asyncio.ensure_future(asyncio.gather(
            pump_out(proc.stdout, process.stdout), pump_out(proc.stderr, process.stderr)))  # type: ignore[arg-type]
        closed = asyncio.ensure_future(process.wait_closed())
        exited = asyncio.ensure_future(proc.wait())
        try:
            await asyncio.wait([exited, closed], return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():  # the client went away: stop the command like sshd would
                _killpg(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(exited), _KILL_GRACE)
                except asyncio.TimeoutError:
                    _killpg(proc.pid, signal.SIGKILL)
                    await exited
            await asyncio.wait([outputs], timeout=_KILL_GRACE)
            rc = exited.result()
            if not closed.done():
                if rc < 0:
                    name = signal.Signals(-rc).name.removeprefix("SIG")
                    process.exit_with_signal(name)
                else:
                    process.exit(rc)
        finally:
            st.pids.discard(proc.pid)
            for task in (feeder, outputs, closed, exited):
                if not task.done():
                    task.cancel()
            await asyncio.gather(feeder, outputs, closed, exited, return_exceptions=True)
            close_process(proc)
