"""The OpenSSH backend: the system ``ssh`` and ``scp`` binaries as subprocesses.

Argument order is deliberate.  OpenSSH keeps the first value it sees for
each option, command-line options beat config files, and ``-F``/``-E`` keep
the last value.  So the caller's settings come first (host entry user/port,
``ssh_key``, ``ssh_options``, ``PARALLAX_OPTIONS``, ``ssh_extra``), and
parallax's own defaults (BatchMode, ConnectTimeout, LogLevel) live in a
generated config file that *includes the user's ssh config before them*, so
that the user's ``~/.ssh/config`` wins over parallax's defaults too.

ssh's own diagnostics go to a per-job log file (``-E``), never into the
host's stderr; the log tells a remote exit status 255 apart from an SSH
failure ("Authenticated to" appears once the session is up).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import shlex
import shutil
import signal
import tempfile
import threading
import time
from typing import Any
from collections.abc import Coroutine, Iterable

from ..account import default_ssh_config
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
)
from ..jobs import CheckJob, CommandJob, GetJob, PutJob, Target
from ..ssh import transfer
from ..ssh.known_hosts_cache import prepare_openssh_record_file
from .askpass import AskpassServer
from .base import Backend, BackendInfo, BackendSetup, OutputSink, Stream, StreamSink
from .detached import DetachableProcess
from .grace import CLEANUP_CONNECT_TIMEOUT, CLEANUP_TIMEOUT, CLEANUP_WAIT, CLOSE_GRACE, MASTER_EXIT_GRACE
from .process import ProcessStream, close_process, run_process, start_process
from .sockets import tcp_client_address

log = logging.getLogger("parallax")

POLICY_OPTIONS = {
    "strict": (("StrictHostKeyChecking", "yes"),),
    "accept-new": (("StrictHostKeyChecking", "accept-new"),),
    "off": (("StrictHostKeyChecking", "no"), ("UserKnownHostsFile", "/dev/null"),
            ("GlobalKnownHostsFile", "/dev/null")),
}

# $1 $2: the cancelled session's client address and port, as the client's socket has them.
# The server's half of SSH_CONNECTION (its address and port) is taken from this script's own
# SSH_CONNECTION: it came the same way, so it reads the same even behind a port forward, and
# the whole four fields must match (the same client port in a connection to another address
# or port of the host, or to another sshd on it, is someone else's session).
# $3 (when not empty): a line of the cancelled command, for sessions multiplexed over one
# ControlMaster, which all share its SSH_CONNECTION: only processes whose command line holds
# it are ours.  Each match's process group (sshd makes every session one) gets TERM, except
# this script's own.  Scanned twice, 0.3 s apart: a command whose exec request was still on
# its way when the client was killed may start a moment after the first scan.  The second
# scan runs detached (its output to /dev/null), so the connection ends right after the first.
_KILL_SCRIPT = (
    '[ -n "$SSH_CONNECTION" ] || exit 0; s=${SSH_CONNECTION#* * }; '
    'me=$(cut -d" " -f5 /proc/$$/stat); scan() { '
    'for f in $(grep -l -a -z -x -F -e "SSH_CONNECTION=$1 $2 $s" /proc/[0-9]*/environ 2>/dev/null); do '
    'd=${f%/environ}; '
    '[ -z "$3" ] || grep -q -a -z -F -e "$3" "$d/cmdline" 2>/dev/null || continue; '
    'g=$(cut -d" " -f5 "$d/stat" 2>/dev/null) || continue; '
    '[ "$g" = "$me" ] || [ "$g" -le 1 ] || kill -TERM "-$g" 2>/dev/null; '
    'done; }; scan "$@"; (sleep 0.3; scan "$@") </dev/null >/dev/null 2>&1 & exit 0'
)
# In a -E log at DEBUG1: the server sent its banner (it is not frozen or gone).
_BANNER = "Remote protocol version "
# The verbosity every command's ssh runs at, whatever LogLevel the caller asked for: how it
# ended is read from the private -E log (a remote exit 255 is not an SSH failure, a dropped
# session is ConnectionLost).  Given first on the command line, "-o LogLevel=..." beats the
# caller's -o and every config file (the first value wins); a multiplexed client tells at
# DEBUG2 whether the master handed it an exit status.  Not "-v": ssh passes -v on to the ssh
# it runs for a ProxyJump hop, whose stderr is the host's stderr; a hop runs at the generated
# config's LogLevel ERROR instead, so only a failure of the hop shows there.  A "-q" in
# ssh_extra would lower the level (ssh applies it at once): it is dropped, as ssh's own
# diagnostics never reach a host's output anyway.
_VERBOSITY = ("-o", "LogLevel=DEBUG1")
_MUX_VERBOSITY = ("-o", "LogLevel=DEBUG2")
# What the ControlMaster runs at: the first -o wins over the caller's and every config file,
# and VERBOSE keeps a long-lived master's log small.
_MASTER_VERBOSITY = ("-o", "LogLevel=VERBOSE")
_GLOB = re.compile(r"([\\*?\[\]])")
_SUSPECT = re.compile(r'Server sent suspect path "(?P<name>.*)" during readdir of "(?P<dir>.*)"')
# ssh diagnostics that mean the session failed or dropped (not a remote exit 255);
# searched in ssh's own lines only (debug lines quote commands and server strings).
_FAILURE = re.compile(
    r"closed by remote host|Broken pipe|Connection reset|client_loop: .*|Connection refused|"
    r"Permission denied|Host key verification failed|Could not resolve hostname|timed out|"
    r"mux_client_request_session: .*|Timeout, server .* not responding"
)
# Lines of a -E log at VERBOSE that are no diagnostic.
_NOT_DIAGNOSTIC = ("debug", "Authenticated to", "Transferred: ", "Bytes per second: ")
# The session's outcome, in the log at the verbosity forced above.
_EXIT_RECEIVED = re.compile(r"^debug1: client_input_channel_req: channel \d+ rtype exit-(status|signal) ", re.M)
_MUX_EXIT_RECEIVED = "Received exit status from master"
_MUX_SESSION = "mux_client_request_session: master session id"
_LOST_ON_STDERR = re.compile(rb"Connection to \S+ closed by remote host\.")


def diagnostics(log: str) -> str:
    """ssh's own messages in a ``-E`` log, without its debug and progress lines."""
    return "\n".join(ln for ln in log.splitlines() if ln.strip() and not ln.startswith(_NOT_DIAGNOSTIC))


def session_outcome(log: str) -> str:
    """How an ``ssh`` that exited 255 ended, from its log at the forced verbosity.

    ``"exit"``: the remote command's own status (or death by a signal, which ssh
    reports as 255 too) came back, so 255 is a result; ``"lost"``: the session
    was up but ended without one; ``"mux-lost"``: a multiplexed client whose master
    handed it no status (the master's connection dropped, or the remote command
    died by a signal: the caller tells them apart by the master's fate);
    ``"failed"``: no session was established.
    """
    if _EXIT_RECEIVED.search(log) or _MUX_EXIT_RECEIVED in log:
        return "exit"
    if "Authenticated to " in log:  # direct, or a multiplexed client that fell back to connecting
        return "lost"
    if _MUX_SESSION in log:
        return "mux-lost"
    return "failed"


def classify(log: str, target: Target, *, transfer: bool = False) -> Error:
    """Map ssh/scp diagnostics onto the shared error classes (debug lines are ignored)."""
    text = diagnostics(log)
    lines = text.splitlines()
    detail = lines[-1].strip() if lines else "ssh failed without a diagnostic"
    if "Could not resolve hostname" in text or "Name or service not known" in text:
        return NameResolutionFailed.at(target, detail)
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or ("Host key for" in text and "has changed" in text):
        return HostKeyChanged.at(target, detail)
    if "Host key verification failed" in text or "No matching host key" in text:
        return HostKeyUnknown.at(target, detail)
    # "user@host: Permission denied (publickey)." is authentication; a bare
    # "Permission denied" from scp is about a remote file.
    if "Permission denied (" in text or "Too many authentication failures" in text:
        return AuthenticationFailed.at(target, detail)
    if "timed out" in text.lower():
        return Timeout.at(target, detail)
    for marker in ("Connection refused", "No route to host", "Network is unreachable", "Connection reset",
                   "Connection closed", "kex_exchange_identification", "closed by remote host",
                   "Broken pipe", "Connection to"):
        if marker in text and not (transfer and marker == "Connection to"):
            return ConnectionFailed.at(target, detail)
    if "contains invalid characters" in text:  # ssh's own refusal of a host or user name
        return BadInput.at(target, f"ssh refused the entry: {detail}")
    if transfer:
        return TransferFailed.at(target, detail)
    return TransportError.at(target, detail)


def _quote_config(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class OpenSSHBackend(Backend):
    """Runs ``ssh``/``scp`` per job; every process is killed if its job is cancelled."""

    info = BackendInfo("openssh", supported_options=None, capabilities=frozenset({"remote-kill", "stream", "check"}))

    def __init__(self, setup: BackendSetup | None = None, ssh: str = "ssh", scp: str = "scp") -> None:
        self.ssh = shutil.which(ssh) or ssh
        self.scp = shutil.which(scp) or scp
        self._dir: str | None = None
        self._default_config = default_ssh_config()  # once, not per job
        self._configs: dict[tuple[object, ...], str] = {}
        self._askpass: AskpassServer | None = None  # answers ssh's password/passphrase prompts
        self._masters: dict[Target, _Master] = {}
        self._master_locks: dict[Target, asyncio.Lock] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self._streams: set[_Stream] = set()
        # remote cleanups running in the background
        self._cleanups: dict[asyncio.Task[None], _Cleanup] = {}

    def check_target(self, target: Target) -> None:
        """A named ssh_config that does not exist is refused before anything runs (as on every backend)."""
        super().check_target(target)
        if target.ssh_config is not None and not os.path.exists(target.ssh_config):
            raise BadInput(f"ssh_config file {target.ssh_config!r} does not exist", host=target.key)

    # --- private files -------------------------------------------------
    def _workdir(self) -> str:
        """A private 0700 directory for logs, configs and control sockets.

        Kept short: a Unix socket path must fit in 104 bytes, and a long
        ``$TMPDIR`` (macOS) would not leave room for ControlPath sockets.
        """
        if self._dir is None:
            base = tempfile.gettempdir()
            if len(base) > 60 and os.path.isdir("/tmp"):
                base = "/tmp"
            self._dir = tempfile.mkdtemp(prefix="parallax-ssh-", dir=base)
        return self._dir

    def _next_log(self) -> str:
        with self._lock:
            self._seq += 1
            return os.path.join(self._workdir(), f"{self._seq}.log")

    def config_file(self, target: Target, *, for_scp: bool = False) -> str:
        """The generated ``-F`` file: the user's config first, then parallax's defaults."""
        user_config = target.ssh_config if target.ssh_config is not None else self._default_config
        if target.ssh_config is not None and not os.path.exists(target.ssh_config):
            raise BadInput(f"ssh_config file {target.ssh_config!r} does not exist", host=target.key)
        batch = not (target.askpass or target.password is not None or target.passphrase is not None)
        # no login password: never try password auth (ssh would send an empty one)
        no_password = not batch and not target.askpass and target.password is None
        key = (user_config, batch, no_password, target.connect_timeout, for_scp)
        path = self._configs.get(key)
        if path is not None:
            return path
        lines = ["# generated by parallax: the user's config first, so that it wins"]
        if user_config:
            lines.append(f"Include {_quote_config(os.path.abspath(user_config))}")
        lines.append("Host *")
        if batch:
            lines.append("  BatchMode yes")
        lines.append("  NumberOfPasswordPrompts 1")
        if no_password:
            lines += ["  PasswordAuthentication no", "  KbdInteractiveAuthentication no"]
        if target.connect_timeout:
            lines.append(f"  ConnectTimeout {max(1, round(target.connect_timeout))}")
        lines.append("  LogLevel ERROR")  # what a ProxyJump hop runs at; the commands' own level is on argv
        if os.path.exists("/etc/ssh/ssh_config"):
            lines.append('Include "/etc/ssh/ssh_config"')
        with self._lock:
            self._seq += 1
            path = os.path.join(self._workdir(), f"config-{self._seq}")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self._configs[key] = path
        return path

    def _env(self, target: Target) -> dict[str, str] | None:
        """ssh's environment when it may need a secret: SSH_ASKPASS points at a helper
        that asks this process over a private socket (see :mod:`.askpass`); no secret
        is written to disk, argv or the environment."""
        password, passphrase = target.password, target.key_passphrase
        if not (target.askpass or password is not None or passphrase is not None):
            return None
        if password is None and passphrase is None:
            raise BadInput("askpass is set but no password was obtained", host=target.key)
        with self._lock:
            if self._askpass is None:
                self._askpass = AskpassServer(self._workdir())
            extra = self._askpass.environment(password, passphrase)
        env = dict(os.environ)
        env.update(extra, DISPLAY=env.get("DISPLAY", ":0"))
        return env

    # --- argument vectors ------------------------------------------------
    def _common(self, target: Target, port_flag: str, *, for_scp: bool, control: str | None = None) -> list[str]:
        argv = ["-F", self.config_file(target, for_scp=for_scp)]
        if target.user:
            argv += ["-o", f"User={target.user}"] if for_scp else ["-l", target.user]
        if target.port:
            argv += [port_flag, str(target.port)]
        if target.ssh_key:
            argv += ["-i", target.ssh_key]
        for key, value in target.ssh_options:
            argv += ["-o", f"{key}={value}"]
        argv += list(target.ssh_extra)
        if target.host_key_policy:
            for key, value in POLICY_OPTIONS[target.host_key_policy]:
                argv += ["-o", f"{key}={value}"]
        if target.known_hosts and target.host_key_policy != "off":
            argv += ["-o", f"UserKnownHostsFile={target.known_hosts}"]
        prepare_openssh_record_file(target)
        for key, value in target.env:
            argv += ["-o", f"SetEnv={key}={_quote_config(value)}"]
        if control:
            argv += ["-o", f"ControlPath={control}", "-o", "ControlMaster=no"]
        return argv

    def ssh_argv(self, target: Target, command: str, log_path: str, control: str | None = None) -> list[str]:
        """The full ``ssh`` command line for *command* on *target* (host after ``--``)."""
        common = self._common(target, "-p", for_scp=False, control=control)
        verbosity = _MUX_VERBOSITY if control else _VERBOSITY
        common = [arg for arg in common if arg != "-q"]  # see _VERBOSITY
        return [self.ssh, "-E", log_path, *verbosity, *common, "-T", "--", target.host, command]

    def master_argv(self, target: Target, control: str, log_path: str) -> list[str]:
        """The ControlMaster a persistent session multiplexes over.

        ``ControlMaster=yes`` alone: adding ``-M`` as well would mean "ask",
        and an unattended master would refuse every session.
        """
        common = self._common(target, "-p", for_scp=False)
        return [self.ssh, "-E", log_path, *_MASTER_VERBOSITY, *common, "-o", f"ControlPath={control}",
                "-o", "ControlMaster=yes",
                "-o", "ControlPersist=no", "-N", "-T", "--", target.host]

    def scp_argv(self, target: Target, sources: Iterable[str], dest: str, recursive: bool,
                 control: str | None = None) -> list[str]:
        """The full ``scp`` command line (operands after ``--``)."""
        argv = [self.scp, *self._common(target, "-P", for_scp=True, control=control), "-p"]
        if recursive:
            argv.append("-r")
        return [*argv, "--", *sources, dest]

    def _remote(self, target: Target, path: str) -> str:
        host = f"[{target.host}]" if ":" in target.host else target.host
        return f"{host}:{path}"

    # --- operations ------------------------------------------------------
    # --- persistent sessions: one ControlMaster per target ----------------
    async def _control(self, target: Target) -> str | None:
        """The control socket of *target*'s master, started (or restarted) on demand."""
        if not self.keep_connections:
            return None
        key = target.connection
        lock = self._master_locks.setdefault(key, asyncio.Lock())
        async with lock:
            master = self._masters.get(key)
            if master is not None and master.proc.returncode is None and os.path.exists(master.control):
                return master.control
            if master is not None:
                await master.stop()
            with self._lock:
                self._seq += 1
                n = self._seq
            control = os.path.join(self._workdir(), f"cm{n}")
            log_path = os.path.join(self._workdir(), f"cm{n}.log")
            master = await _Master.start(self.master_argv(target, control, log_path), control, log_path,
                                         self._env(target))
            if master.proc.returncode is not None or not os.path.exists(control):
                log = _read(log_path)
                await master.stop()
                raise classify(log, target)
            self._masters[key] = master
            return control

    async def disconnect(self, target: Target) -> None:
        master = self._masters.pop(target.connection, None)
        if master is not None:
            await master.stop()

    # --- operations ------------------------------------------------------
    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        target = job.target
        control = await self._control(target)
        log_path = self._next_log()
        argv = self.ssh_argv(target, job.command, log_path, control)
        client: list[tuple[str, int] | None] = []
        tail = _StderrTail(sink)

        def note_connection(pid: int) -> None:
            master = self._masters.get(target.connection) if control else None
            client.append(tcp_client_address(master.proc.pid if master else pid))

        try:
            try:
                rc = await run_process(argv, tail, job.stdin, self._env(target), before_kill=note_connection)
            except asyncio.CancelledError:
                # Only a session that got as far as authenticating can have started the command;
                # ending it takes another connection, which must not hold up the caller's
                # timeout or deadline: it runs in the background, awaited by close().
                if client and client[0] and (control or "Authenticated to " in _read(log_path)):
                    cleanup = _Cleanup(self._next_log(), control is None)
                    self._background(self._kill_remote(target, control, client[0], cleanup, job.command), cleanup)
                raise
            if rc == 255:
                log = _read(log_path)
                outcome = session_outcome(log)
                if outcome == "mux-lost" and await self._master_alive(target):
                    outcome = "exit"  # the master's connection is fine: the command died by a signal
                if outcome == "failed":  # no session: stderr holds only ssh's (and a ProxyJump hop's) words
                    raise classify("\n".join(t for t in (log, tail.text().replace("\r", "")) if t), target)
                if outcome != "exit":
                    failed = _FAILURE.search(diagnostics(log)) or _LOST_ON_STDERR.search(tail.data)
                    detail = failed.group(0) if failed else "the session ended before the command's exit status"
                    raise ConnectionLost.at(target, detail if isinstance(detail, str) else detail.decode())
            return rc
        finally:
            _unlink(log_path)

    async def _master_alive(self, target: Target) -> bool:
        """Whether *target*'s ControlMaster outlives a session it ended without a status."""
        master = self._masters.get(target.connection)
        if master is None:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(master.proc.wait()), MASTER_EXIT_GRACE)
        except asyncio.TimeoutError:
            return True
        return False

    def _background(self, coro: Coroutine[Any, Any, None], cleanup: _Cleanup) -> None:
        """Run remote cleanup without making the caller wait; :meth:`close` awaits it."""
        task = asyncio.ensure_future(coro)
        self._cleanups[task] = cleanup
        task.add_done_callback(lambda t: self._cleanups.pop(t, None))

    async def _await_cleanups(self) -> None:
        """Wait for the remote cleanups of cancelled jobs (each bounded by CLEANUP_TIMEOUT).

        The close of a one-call session that completed (its hosts' timeouts or the deadline
        cancelled those jobs) does not wait for a cleanup whose server has not sent its
        banner CLEANUP_WAIT after it started: the host is far, loaded, frozen or gone, and
        waiting would hold the call's results back.  Such a cleanup is left to finish on its
        own (its ``ssh`` goes on, reaped by a thread, ended at CLEANUP_TIMEOUT; see
        :mod:`.detached`).  A Session, or a call that is itself being cancelled (Ctrl-C),
        waits for every cleanup.
        """
        while self._cleanups:
            cleanups = dict(self._cleanups)
            if not (self.keep_connections or _being_cancelled()):
                for task, cleanup in sorted(cleanups.items(), key=lambda item: item[1].started):
                    left = cleanup.started + CLEANUP_WAIT - time.monotonic()
                    if left > 0 and not task.done():
                        await asyncio.wait([task], timeout=left)
                    if not task.done() and cleanup.detachable and _BANNER not in _read(cleanup.log_path):
                        log.debug("leaving a remote cleanup to finish after the call: the server sent no "
                                  "banner within %g s", CLEANUP_WAIT)
                        if cleanup.proc is not None:
                            cleanup.proc.detach()
                        task.cancel()
            await asyncio.gather(*cleanups, return_exceptions=True)

    async def check(self, job: CheckJob, sink: OutputSink) -> str:
        """Connect and authenticate with ``ssh -N`` (no session, no command); see :mod:`.openssh_check`."""
        from .openssh_check import check

        return await check(self, job)

    async def open_stream(self, target: Target, command: str, sink: StreamSink) -> Stream:
        control = await self._control(target)
        stream = _Stream(self, target, control, self._next_log(), sink)
        await stream.start(command)
        self._streams.add(stream)
        return stream

    async def _kill_remote(self, target: Target, control: str | None, client: tuple[str, int], cleanup: _Cleanup,
                           job_command: str | None = None) -> None:
        """End a cancelled command on the host: the OpenSSH client cannot signal it.

        A second connection sends TERM to every process whose environment
        holds our session's ``SSH_CONNECTION`` (Linux hosts, via /proc).
        Best effort and bounded in time (it runs in the background, see
        :meth:`_background`); failures are only logged.
        """
        log_path = cleanup.log_path
        ip, port = client
        lines = [ln for ln in (job_command or "").splitlines() if ln.strip()] if control else []
        command = (f"sh -c {shlex.quote(_KILL_SCRIPT)} parallax-kill {shlex.quote(ip)} {port} "
                   f"{shlex.quote(lines[0] if lines else '')}")
        try:
            argv = self.ssh_argv(target, command, log_path, control)
            # A host that accepted the session and then froze must not hold a call's close up
            # for long: the first -o wins over the caller's ConnectTimeout (which ends with the banner).
            argv[3:3] = ["-o", f"ConnectTimeout={CLEANUP_CONNECT_TIMEOUT}"]
            cleanup.proc = DetachableProcess(argv, self._env(target), CLEANUP_TIMEOUT)
            await cleanup.proc.wait()
        except Exception as e:  # a timeout, ssh missing, no password: the call's results are in already
            log.debug("%s: could not end the remote command: %s", target.key, e)
        finally:
            _unlink(log_path)

    async def _scp(self, job: PutJob | GetJob, argv: list[str]) -> None:
        collected = _Collect()
        rc = await run_process(argv, collected, None, self._env(job.target))
        if rc != 0:
            err = classify(collected.text(), job.target, transfer=True)
            raise err

    async def put(self, job: PutJob, sink: OutputSink) -> None:
        src = os.path.abspath(job.src)
        control = await self._control(job.target)
        await self._scp(job, self.scp_argv(job.target, [src], self._remote(job.target, job.dst), job.recursive,
                                           control))

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        # scp follows symlinks on the local side: refuse one leading outside <localdir> first, and
        # clear setuid/setgid bits afterwards (SFTP-mode scp masks them; legacy -O keeps them).
        root = transfer.slurp_root(job)
        landed = transfer.landing_path(job.src, job.dst)
        refused = transfer.check_local_destination(landed, root, recursive=job.recursive)
        if refused is not None:
            raise TransferFailed.at(job.target, refused)
        remote = self._remote(job.target, _GLOB.sub(r"\\\1", job.src))
        control = await self._control(job.target)
        argv = self.scp_argv(job.target, [remote], os.path.abspath(job.dst), job.recursive, control)
        collected = _Collect()
        rc = await run_process(argv, collected, None, self._env(job.target))
        transfer.strip_special_bits(landed, root)
        if rc != 0:
            raise classify(collected.text(), job.target, transfer=True)
        # scp skips a listed name with a slash but still exits 0: a failure here, as on every backend
        suspect = _SUSPECT.search(collected.text())
        if suspect:
            raise TransferFailed.at(job.target, f"{suspect['dir']}: the server listed "
                                                f"{transfer.bad_name(suspect['name']) or repr(suspect['name'])}")

    async def close(self) -> None:
        await self._await_cleanups()  # remote commands of cancelled jobs being ended
        streams, self._streams = list(self._streams), set()
        for stream in streams:
            stream.close()
        await asyncio.gather(*(s.wait() for s in streams), return_exceptions=True)
        masters, self._masters = list(self._masters.values()), {}
        await asyncio.gather(*(m.stop() for m in masters), return_exceptions=True)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self._configs.clear()
        if self._askpass is not None:
            self._askpass.close()
            self._askpass = None

    def abandon(self) -> None:
        for master in self._masters.values():
            master.kill()
        self._masters = {}
        if self._askpass is not None:
            self._askpass.close()
            self._askpass = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __del__(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


@dataclasses.dataclass
class _Cleanup:
    """A remote cleanup running in the background: its ``ssh``'s ``-E`` log (which tells
    whether the server answered), whether a one-call close may leave it to finish on its own
    (not through a ControlMaster, which the close ends), when it started, its process."""

    log_path: str
    detachable: bool
    started: float = dataclasses.field(default_factory=time.monotonic)
    proc: DetachableProcess | None = None


class _Master:
    """A ControlMaster ssh process owned by this backend (its own process group)."""

    STARTUP = 0.005  # seconds between checks for the control socket

    def __init__(self, proc: asyncio.subprocess.Process, control: str, log_path: str) -> None:
        self.proc = proc
        self.control = control
        self.log_path = log_path

    @classmethod
    async def start(cls, argv: list[str], control: str, log_path: str, env: dict[str, str] | None) -> _Master:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True, env=env,
        )
        master = cls(proc, control, log_path)
        try:
            while proc.returncode is None and not os.path.exists(control):
                try:
                    await asyncio.wait_for(proc.wait(), cls.STARTUP)
                except asyncio.TimeoutError:
                    pass
        except BaseException:
            await master.stop()
            raise
        return master

    def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        _unlink(self.control)

    async def stop(self) -> None:
        self.kill()
        try:
            await asyncio.wait_for(self.proc.wait(), CLOSE_GRACE)
        except asyncio.TimeoutError:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            await self.proc.wait()
        close_process(self.proc)


class _Stream:
    """A long-lived ``ssh`` (through the target's master when a session keeps one)
    with stdin open; see :meth:`OpenSSHBackend.open_stream`."""

    def __init__(self, backend: OpenSSHBackend, target: Target, control: str | None, log_path: str,
                 sink: StreamSink) -> None:
        self.backend = backend
        self.target = target
        self.control = control
        self.log_path = log_path
        self.sink = sink
        self.proc: ProcessStream | None = None
        #: The remote command's process id, once the caller learned it: the
        #: OpenSSH client cannot send signal requests, so :meth:`signal` runs
        #: ``kill`` on its process group (sshd makes every session a group,
        #: and signals the whole group for a signal request).
        self.remote_pid: int | None = None
        self._signals: set[asyncio.Task[None]] = set()

    async def start(self, command: str) -> None:
        argv = self.backend.ssh_argv(self.target, command, self.log_path, self.control)
        self.proc = await start_process(argv, self.sink, self._exited, self.backend._env(self.target))

    def _exited(self, status: int) -> None:
        text = _read(self.log_path)
        _unlink(self.log_path)
        self.backend._streams.discard(self)
        outcome = session_outcome(text) if status == 255 else "exit"
        if outcome == "mux-lost":  # no status from the master: lost only if the master is gone
            master = self.backend._masters.get(self.target.connection)
            outcome = "exit" if master is not None and master.proc.returncode is None else "lost"
        failed = _FAILURE.search(diagnostics(text))
        lost = outcome != "exit" and (failed.group(0) if failed else "the session ended without an exit status")
        self.sink.closed(ConnectionError(lost) if lost else None)

    def write(self, data: bytes) -> None:
        assert self.proc is not None
        self.proc.write(data)

    def signal(self, name: str) -> None:
        if self.remote_pid is None or not name.isalnum():
            return
        log_path = self.backend._next_log()
        argv = self.backend.ssh_argv(self.target, f"kill -{name} -{int(self.remote_pid)}", log_path, self.control)
        task = asyncio.ensure_future(self._run_kill(argv, log_path))
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)

    async def _run_kill(self, argv: list[str], log_path: str) -> None:
        try:
            await asyncio.wait_for(run_process(argv, _Collect(), None, self.backend._env(self.target)),
                                   CLEANUP_TIMEOUT)
        except (asyncio.TimeoutError, OSError) as e:
            log.debug("%s: could not signal the remote shell: %s", self.target.key, e)
        finally:
            _unlink(log_path)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.close()

    async def wait(self) -> None:
        if self.proc is not None:
            await self.proc.wait()
        if self._signals:
            await asyncio.wait(list(self._signals), timeout=CLEANUP_TIMEOUT)


class _StderrTail:
    """Passes output on to *sink* unchanged, keeping the end of stderr: where ssh writes
    what it prints outside its log (a refused host name, "Connection to X closed by
    remote host.")."""

    KEEP = 4096

    def __init__(self, sink: OutputSink) -> None:
        self.sink = sink
        self.data = b""

    def stdout(self, data: bytes) -> None:
        self.sink.stdout(data)

    def stderr(self, data: bytes) -> None:
        self.sink.stderr(data)
        self.data = (self.data + data)[-self.KEEP:]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class _Collect:
    """A sink that keeps scp's diagnostics for error mapping."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def stdout(self, data: bytes) -> None:
        self.parts.append(data)

    def stderr(self, data: bytes) -> None:
        self.parts.append(data)

    def text(self) -> str:
        return b"".join(self.parts).decode("utf-8", "replace")


def _being_cancelled() -> bool:
    """Whether the running task is being cancelled (Ctrl-C reaching a call); ``True`` where
    Python cannot tell (3.10 has no ``Task.cancelling``): then every cleanup is awaited."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return cancelling is None or bool(cancelling())


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


__all__ = ["OpenSSHBackend", "classify"]
