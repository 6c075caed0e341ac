"""A throwaway, private OpenSSH server for tests.

:class:`SSHLab` starts the system's ``/usr/sbin/sshd`` on loopback with N
distinct host addresses (``127.0.0.2``, ``127.0.0.3``, ...), all sharing one
free TCP port, with freshly generated host and client keys, a matching
``known_hosts`` file and an ``ssh_config`` with ``h1`` ... ``hN`` aliases::

    with SSHLab(hosts=3) as lab:
        subprocess.run(["ssh", "-F", lab.ssh_config, "h1", "true"], check=True)
        subprocess.run(lab.ssh_argv(lab.addresses[1], "uname", "-a"), check=True)

Notes on this implementation:

* OpenSSH compiles in ``MAX_LISTEN_SOCKS = 16``: one sshd cannot listen on
  more than 16 addresses.  Bigger labs run one sshd per 16 addresses (same
  port, host key, authorized keys and shared log file).
* Running as root, the login account is a dedicated ``parallaxtest`` account
  with ``/bin/sh`` (root's own shell may run a slow ``.bashrc``).  It is
  created on first use with the password field ``*``: with ``UsePAM no``
  sshd refuses accounts whose password field starts with ``!`` ("account is
  locked"), which is what ``useradd`` writes by default.
* Running unprivileged, sshd can only authenticate the current user, so that
  is the login account.
* Readiness is detected without connecting (``/proc/net/tcp``), so that
  :meth:`SSHLab.connection_count` only counts real client connections.

This module imports nothing from ``parallax`` outside ``parallax.testing``.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable

from .processes import process_table

__all__ = ["SSHD_PATH", "TEST_ACCOUNT", "SSHLab", "can_start_sshd"]

#: The OpenSSH server binary the lab runs.
SSHD_PATH = "/usr/sbin/sshd"
#: Login account used when the lab is started by root.
TEST_ACCOUNT = "parallaxtest"
TEST_ACCOUNT_HOME = "/var/lib/parallaxtest"
#: OpenSSH's compile-time limit of listening sockets per sshd process.
MAX_LISTEN_PER_SSHD = 16
#: Fast key exchange every client can use (paramiko knows only the @libssh name).
KEX_ALGORITHMS = "curve25519-sha256,curve25519-sha256@libssh.org"

#: Set this environment variable (non-empty) to keep lab workdirs for debugging.
KEEP_ENV = "PARALLAX_SSHLAB_KEEP"

_START_TIMEOUT = 10.0
_TERM_GRACE = 3.0
_PORT_ATTEMPTS = 5

# Keywords that may appear several times in sshd_config and accumulate, so an
# extra_config line with them adds to (instead of replacing) the lab defaults.
_ACCUMULATING = {"acceptenv", "hostkey", "listenaddress", "setenv"}


def can_start_sshd() -> tuple[bool, str]:
    """Can an :class:`SSHLab` run here?  Returns ``(ok, reason_if_not)``."""
    if sys.platform != "linux":
        return False, f"SSHLab needs Linux (loopback 127.0.0.0/8 aliases); this is {sys.platform}"
    if not os.path.isfile(SSHD_PATH) or not os.access(SSHD_PATH, os.X_OK):
        return False, f"{SSHD_PATH} not found (install openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return False, "ssh-keygen not found on PATH (install openssh-client)"
    if os.geteuid() == 0:
        return True, ""
    # Unprivileged sshd works (no privsep chroot) but can only log in the
    # current user, who needs a usable shell.
    try:
        pw = pwd.getpwuid(os.getuid())
    except KeyError:
        return False, f"uid {os.getuid()} has no passwd entry; unprivileged sshd cannot log it in"
    shell = pw.pw_shell or "/bin/sh"
    if not os.access(shell, os.X_OK) or os.path.basename(shell) in ("nologin", "false"):
        return False, f"user {pw.pw_name!r} has no usable login shell ({shell!r})"
    return True, ""


# --------------------------------------------------------------------------
# helpers


def _lab_addresses(n: int) -> list[str]:
    out: list[str] = []
    addr = ipaddress.IPv4Address("127.0.0.2")
    while len(out) < n:
        if addr not in ipaddress.IPv4Network("127.0.0.0/8") or addr == ipaddress.IPv4Address("127.255.255.255"):
            raise ValueError(f"too many lab hosts: {n}")
        last = int(addr) & 0xFF
        if last not in (0, 255):
            out.append(str(addr))
        addr += 1
    return out


def _pick_port(addresses: list[str]) -> int:
    """A TCP port that is currently bindable on every address (never 22)."""
    for _ in range(100):
        socks: list[socket.socket] = []
        try:
            first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(first)
            first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            first.bind((addresses[0], 0))
            port = first.getsockname()[1]
            if port == 22:
                continue
            ok = True
            for addr in addresses[1:]:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((addr, port))
                except OSError:
                    ok = False
                    break
            if ok:
                return int(port)
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"could not find a TCP port free on all of {addresses[0]}..{addresses[-1]}")


def _proc_hex(addr: str) -> str:
    return f"{int.from_bytes(socket.inet_aton(addr), sys.byteorder):08X}"


def _listening(port: int, pid: int | None = None) -> set[str] | None:
    """Hex IPv4 addresses with a LISTEN socket on ``port`` (None if /proc is unavailable),
    in the network namespace of *pid* (default: ours)."""
    try:
        with open(f"/proc/{pid}/net/tcp" if pid else "/proc/net/tcp") as f:
            lines = f.readlines()[1:]
    except OSError:
        return None
    suffix = f":{port:04X}"
    found = set()
    for line in lines:
        parts = line.split(None, 4)
        if len(parts) >= 4 and parts[3] == "0A" and parts[1].endswith(suffix):
            found.add(parts[1][:8])
    return found


def _tcp_accepts(addr: str, port: int) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=0.2):
            return True
    except OSError:
        return False


def _descendant_levels(roots: Iterable[int], table: dict[int, tuple[int, str]] | None = None) -> list[list[int]]:
    """Descendants of ``roots`` grouped by depth: [[children], [grandchildren], ...]."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    levels: list[list[int]] = []
    current = list(roots)
    seen = set(current)
    while True:
        nxt = [c for pid in current for c in children.get(pid, ()) if c not in seen]
        if not nxt:
            return levels
        seen.update(nxt)
        levels.append(nxt)
        current = nxt


def _descendants(roots: Iterable[int], table: dict[int, tuple[int, str]] | None = None) -> list[int]:
    return [pid for level in _descendant_levels(roots, table) for pid in level]


def _stat(pid: int) -> tuple[int, str] | None:
    """(ppid, state) of pid, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    return int(rest[1]), rest[0].decode()


def _alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    st = _stat(pid)
    return st is not None and st[1] != "Z"


def _signal(pid: int, sig: int, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _ensure_test_account(name: str = TEST_ACCOUNT, home: str = TEST_ACCOUNT_HOME) -> pwd.struct_passwd:
    """Create (as root) the dedicated login account if missing; make it usable by sshd."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        pw = None
    if pw is None:
        last = None
        for _ in range(40):
            r = subprocess.run(
                ["useradd", "--system", "--shell", "/bin/sh", "--home-dir", home,
                 "--create-home", "--password", "*", name],
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
            )
            try:
                pw = pwd.getpwnam(name)  # created by us or by a concurrent process
                break
            except KeyError:
                pass
            last = r
            # 10: cannot lock /etc/passwd (a concurrent useradd); retry.
            if r.returncode not in (9, 10):
                break
            time.sleep(0.05 + random.random() * 0.1)
        if pw is None:
            detail = f"exit {last.returncode}: {last.stderr.strip()}" if last else "unknown error"
            raise RuntimeError(f"could not create test account {name!r} with useradd ({detail})")
    if not os.path.isdir(pw.pw_dir):
        os.makedirs(pw.pw_dir, mode=0o755, exist_ok=True)
        os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
    # With UsePAM no, sshd rejects accounts whose password field starts with "!".
    try:
        with open("/etc/shadow") as f:
            for line in f:
                fields = line.split(":")
                if fields[0] == name and len(fields) > 1 and fields[1].startswith("!"):
                    subprocess.run(["usermod", "-p", "*", name], check=True,
                                   stdin=subprocess.DEVNULL, capture_output=True)
                    break
    except OSError:
        pass
    return pw


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())


def _keygen(path: str, comment: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _cfg_value(path: str) -> str:
    return f'"{path}"' if any(c.isspace() for c in path) else path


def _split_extra(extra: str) -> tuple[str, str, set[str], set[str]]:
    """Split extra sshd config into (global part, Match part, keywords, subsystems)."""
    global_lines: list[str] = []
    match_lines: list[str] = []
    keywords: set[str] = set()
    subsystems: set[str] = set()
    in_match = False
    for line in extra.splitlines():
        words = line.replace("=", " ", 1).split()
        kw = words[0].lower() if words and not words[0].startswith("#") else ""
        if kw == "match":
            in_match = True
        if in_match:
            match_lines.append(line)
            continue
        global_lines.append(line)
        if kw == "subsystem" and len(words) > 1:
            subsystems.add(words[1])
        elif kw:
            keywords.add(kw)
    return "\n".join(global_lines), "\n".join(match_lines), keywords, subsystems


def _subreaper_preexec() -> Callable[[], None] | None:
    """A preexec_fn making the sshd listener a child subreaper (Linux).

    sshd's privileged monitor exits without reaping its unprivileged child
    when that child dies abnormally, leaving an orphan zombie; orphans go to
    the nearest subreaper, and the listener's SIGCHLD handler reaps any
    child (waitpid(-1)).  Without this they would go to pid 1, which in some
    containers never reaps.  The attribute survives execve.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    PR_SET_CHILD_SUBREAPER = 36

    def preexec() -> None:
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    return preexec


class _LabState:
    """Everything cleanup needs; deliberately holds no reference to the SSHLab."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workdir: str | None = None
        self.remove_workdir = False
        self.log_file: str | None = None
        self.final_log: bytes | None = None


def _terminate(pids: list[int], family: set[int], deadline: float) -> None:
    """SIGTERM ``pids``, wait until they are reaped (SIGKILL at ``deadline``).

    A process counts as gone once it has vanished from /proc, or is a zombie
    whose parent is outside ``family`` (nobody in the lab will reap it; pid 1
    in some containers never does).
    """

    def gone(pid: int) -> bool:
        st = _stat(pid)
        return st is None or (st[1] == "Z" and (st[0] not in family or not _alive(st[0])))

    for pid in pids:
        _signal(pid, signal.SIGTERM)
    killed = False
    hard_deadline = deadline + 2.0
    while True:
        left = [pid for pid in pids if not gone(pid)]
        if not left:
            return
        now = time.monotonic()
        if now >= deadline and not killed:
            for pid in left:
                _signal(pid, signal.SIGKILL)
            killed = True
        if now >= hard_deadline:
            return
        time.sleep(0.002)


def _stop_procs(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop sshd listeners and every process they spawned (connections, sessions).

    Per-connection sshd processes call setsid(), so killing the listener's
    process group misses them.  They are found by walking /proc (the
    listener is SIGSTOPped meanwhile so it cannot fork) and terminated
    deepest first while their parents are alive to reap them: orphans would
    become zombies of pid 1, which does not reap in some containers.
    """
    live = [p for p in procs if p.poll() is None]
    if not live:
        return
    roots = [p.pid for p in live]
    deadline = time.monotonic() + _TERM_GRACE
    for _round in range(2):  # a second pass catches connections accepted meanwhile
        for pid in roots:
            _signal(pid, signal.SIGSTOP, group=True)
        levels = _descendant_levels(roots)
        for pid in roots:
            _signal(pid, signal.SIGCONT, group=True)
        if not levels:
            break
        family = set(roots).union(*levels)
        for level in reversed(levels):
            _terminate(level, family, deadline)
    for pid in roots:
        _signal(pid, signal.SIGTERM, group=True)
    for p in live:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(p.pid, signal.SIGKILL, group=True)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _cleanup(state: _LabState) -> None:
    procs, state.procs = state.procs, []
    try:
        _stop_procs(procs)
    finally:
        if state.log_file and state.final_log is None:
            try:
                with open(state.log_file, "rb") as f:
                    state.final_log = f.read()
            except OSError:
                pass
        if state.workdir and state.remove_workdir and not os.environ.get(KEEP_ENV):
            shutil.rmtree(state.workdir, ignore_errors=True)


# --------------------------------------------------------------------------


class SSHLab:
    """A private OpenSSH sshd on loopback with N distinct host addresses (127.0.0.2, 127.0.0.3, ...).

    Attributes (the file paths exist between :meth:`start` and :meth:`stop`):

    ``addresses``      ``["127.0.0.2", "127.0.0.3", ...]``
    ``aliases``        ``["h1", "h2", ...]`` (Host aliases of ``ssh_config``)
    ``port``           the TCP port shared by all addresses
    ``user``           the login account
    ``hosts``          ``["127.0.0.2:PORT", ...]``
    ``client_key``     passphrase-less ed25519 private key authorized on the lab (0600, ours)
    ``wrong_key``      an ed25519 private key that is *not* authorized
    ``known_hosts``    known_hosts with the host key for every ``[addr]:port`` and alias
    ``ssh_config``     ssh_config with ``Host h1`` ... ``hN`` plus a ``Host *`` fallback,
                       usable as ``ssh -F lab.ssh_config h1 true``
    ``host_key_pub``   the server's public host key line (``ssh-ed25519 AAAA... comment``)
    ``log_file``       sshd log (LogLevel VERBOSE), shared by all sshd processes
    ``sshd_config``    the (first) sshd config file; ``sshd_configs`` lists all of them
    ``scratch_dir``    a directory inside workdir owned and writable by ``user``
    ``workdir``        temporary directory holding all files, removed by :meth:`stop`
                       (mode 0700, or 0711 when ``user`` is another account: sshd
                       reads ``authorized_keys`` with the login user's uid).
                       A caller-supplied ``workdir`` is removed only if it did not
                       exist before; ``PARALLAX_SSHLAB_KEEP=1`` keeps it always.

    ``extra_config`` is appended to the generated sshd_config.  Since sshd
    uses the *first* value of most keywords, a lab default whose keyword
    appears in the global part of ``extra_config`` is left out, so e.g.
    ``extra_config="MaxSessions 1"`` really yields ``MaxSessions 1``
    (``AcceptEnv``/``SetEnv``/``HostKey``/``ListenAddress`` accumulate instead).
    ``Match`` blocks are fine and stay at the end.
    """

    def __init__(
        self,
        hosts: int = 3,
        *,
        port: int | None = None,
        workdir: str | None = None,
        user: str | None = None,
        extra_config: str = "",
        max_startups: str = "1000:30:2000",
        addresses: list[str] | None = None,
        command_prefix: Iterable[str] = (),
    ) -> None:
        if hosts < 1:
            raise ValueError("hosts must be >= 1")
        if port == 22:
            raise ValueError("port 22 is reserved for a system sshd; pick another or None")
        if addresses is not None and len(addresses) != hosts:
            raise ValueError(f"addresses: {len(addresses)} given for hosts={hosts}")
        self.addresses: list[str] = list(addresses) if addresses is not None else _lab_addresses(hosts)
        #: argv words sshd is started behind, e.g. ``["ip", "netns", "exec", "NAME"]`` (must exec
        #: sshd in place, so that the process started is sshd itself); with a prefix and no fixed
        #: ``port`` the lab picks a port free on this machine's loopback.
        self.command_prefix: list[str] = list(command_prefix)
        self.aliases: list[str] = [f"h{i}" for i in range(1, hosts + 1)]
        self._fixed_port = port
        self.port: int = port or 0
        self._requested_workdir = workdir
        self.extra_config = extra_config
        self.max_startups = max_startups
        self.user: str = user or (TEST_ACCOUNT if os.geteuid() == 0 else _current_user())
        self.workdir: str = ""
        self.client_key = self.wrong_key = self.known_hosts = self.ssh_config = ""
        self.host_key_pub = self.log_file = self.sshd_config = self.scratch_dir = ""
        self.sshd_configs: list[str] = []
        self._state = _LabState()
        self._finalizer = weakref.finalize(self, _cleanup, self._state)
        self._started = False
        self._stopped = False

    # -- public API -------------------------------------------------------

    @property
    def hosts(self) -> list[str]:
        """``"addr:port"`` strings, ready to pass as parallax hosts."""
        return [f"{a}:{self.port}" for a in self.addresses]

    def host_tuples(self) -> list[tuple[str, int, str]]:
        """``(address, port, user)`` for every lab host."""
        return [(a, self.port, self.user) for a in self.addresses]

    @property
    def running(self) -> bool:
        return self._started and not self._stopped and bool(self._state.procs) and all(
            p.poll() is None for p in self._state.procs
        )

    def start(self) -> SSHLab:
        if self._stopped:
            raise RuntimeError("this SSHLab was stopped; create a new one")
        if self._started:
            return self
        ok, reason = can_start_sshd()
        if not ok:
            raise RuntimeError(f"cannot start sshd: {reason}")
        try:
            self._prepare()
            attempts = 1 if self._fixed_port else _PORT_ATTEMPTS
            for attempt in range(attempts):
                self.port = self._fixed_port or _pick_port(self.addresses if not self.command_prefix
                                                           else ["127.0.0.1"])
                self._write_port_files()
                try:
                    self._launch()
                    break
                except _BindError as exc:
                    _stop_procs(self._state.procs)
                    self._state.procs = []
                    if attempt == attempts - 1:
                        raise RuntimeError(str(exc)) from None
        except BaseException:
            self._finalizer()
            self._stopped = True
            raise
        self._started = True
        return self

    def stop(self) -> None:
        """Kill every sshd process of the lab (and its sessions); remove workdir.  Idempotent."""
        self._stopped = True
        self._finalizer()

    def __enter__(self) -> SSHLab:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_text(self) -> str:
        """The sshd log so far (still available after :meth:`stop`)."""
        if self._state.final_log is not None:
            return self._state.final_log.decode(errors="replace")
        if not self.log_file:
            return ""
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def connection_count(self) -> int:
        """TCP connections accepted by the lab's sshd so far (``Connection from`` log lines).

        Counts every connection, including ones that later failed to
        authenticate; see :meth:`login_count` for successful logins.
        """
        return self.log_text().count("Connection from ")

    def login_count(self) -> int:
        """Successful public-key logins so far (``Accepted publickey`` log lines)."""
        return self.log_text().count("Accepted publickey for ")

    def listener_pids(self) -> list[int]:
        """PIDs of the running listening sshd processes (one per 16 addresses)."""
        return [p.pid for p in self._state.procs if p.poll() is None]

    def pids(self) -> list[int]:
        """PIDs of the sshd listeners and of every process they spawned (connections, commands)."""
        roots = self.listener_pids()
        return roots + _descendants(roots)

    def ssh_argv(self, address: str, *command: str, key: str | None = None, options: Iterable[str] = ()) -> list[str]:
        """A plain ``ssh`` command line reaching ``address`` (or alias ``hN``).

        Self-contained: it uses ``-F /dev/null`` and passes the lab's port,
        user, key and known_hosts as options, so ``key=lab.wrong_key`` offers
        only that key.  ``command`` words are joined by ssh with spaces and
        run by the remote shell, so quote them as a shell would (or pass one
        string).  ``options`` are extra ssh arguments such as ``["-o", "X=y"]``.
        """
        if address in self.aliases:
            address = self.addresses[self.aliases.index(address)]
        return [
            "ssh", "-F", "/dev/null",
            "-p", str(self.port), "-l", self.user,
            "-i", key or self.client_key,
            *(f"-o{o}" for o in self._client_options()),
            *options,
            "--", address, *command,
        ]

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "new")
        return (f"<SSHLab {state} {len(self.addresses)} hosts "
                f"{self.addresses[0]}..{self.addresses[-1]} port {self.port} user {self.user}>")

    # -- internals --------------------------------------------------------

    def _client_options(self) -> list[str]:
        return [
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            f"UserKnownHostsFile={self.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
            "CheckHostIP=no",
            "BatchMode=yes",
            "PreferredAuthentications=publickey",
            "ControlMaster=no",
            "ControlPath=none",
            "ConnectTimeout=10",
        ]

    def _prepare(self) -> None:
        """Create workdir, account, keys, authorized_keys (port-independent files)."""
        st = self._state
        if self._requested_workdir:
            wd = os.path.abspath(self._requested_workdir)
            st.remove_workdir = not os.path.exists(wd)
            os.makedirs(wd, exist_ok=True)
        else:
            wd = tempfile.mkdtemp(prefix="parallax-sshlab-")
            st.remove_workdir = True
        st.workdir = self.workdir = wd

        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
            if self.user == TEST_ACCOUNT:
                _ensure_test_account()
        try:
            pw = pwd.getpwnam(self.user)
        except KeyError:
            raise RuntimeError(f"login account {self.user!r} does not exist") from None
        if os.geteuid() != 0 and pw.pw_uid != os.getuid():
            raise RuntimeError(f"unprivileged sshd can only log in the current user, not {self.user!r}")
        other_user = pw.pw_uid != os.geteuid()
        # sshd reads AuthorizedKeysFile with the login user's uid: it must be
        # able to traverse workdir (but not list it).
        os.chmod(wd, 0o711 if other_user else 0o700)

        def j(name: str) -> str:
            return os.path.join(wd, name)

        host_key, self.client_key, self.wrong_key = j("ssh_host_ed25519_key"), j("client_key"), j("wrong_key")
        gens = [_keygen(host_key, "parallax-lab-host"), _keygen(self.client_key, "parallax-lab-client"),
                _keygen(self.wrong_key, "parallax-lab-wrong")]
        errors = [g.communicate()[1].decode(errors="replace").strip() for g in gens]
        for path, g, err in zip((host_key, self.client_key, self.wrong_key), gens, errors):
            if g.returncode != 0:
                raise RuntimeError(f"ssh-keygen failed ({path}): {err}")
        self._host_key = host_key
        with open(host_key + ".pub") as f:
            self.host_key_pub = f.read().strip()
        self._authorized_keys = j("authorized_keys")
        with open(self.client_key + ".pub") as f, open(self._authorized_keys, "w") as out:
            out.write(f.read())
        os.chmod(self._authorized_keys, 0o644)

        self.scratch_dir = j("scratch")
        os.makedirs(self.scratch_dir, exist_ok=True)
        if other_user:
            os.chown(self.scratch_dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.scratch_dir, 0o700)

        st.log_file = self.log_file = j("sshd.log")
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)

    def _write_port_files(self) -> None:
        wd, port = self.workdir, self.port
        keytype_key = " ".join(self.host_key_pub.split()[:2])
        self.known_hosts = os.path.join(wd, "known_hosts")
        with open(self.known_hosts, "w") as f:
            for addr, alias in zip(self.addresses, self.aliases):
                f.write(f"[{addr}]:{port},[{alias}]:{port},{alias} {keytype_key}\n")

        common = [
            f"Port {port}",
            f"User {self.user}",
            f"IdentityFile {_cfg_value(self.client_key)}",
            *(o.replace("=", " ", 1) for o in self._client_options()),
        ]
        lines = ["# ssh_config generated by parallax.testing.SSHLab", ""]
        for addr, alias in zip(self.addresses, self.aliases):
            lines.append(f"Host {alias}")
            lines.append(f"    HostName {addr}")
            lines.extend(f"    {c}" for c in common)
            lines.append("")
        lines.append("Host *")
        lines.extend(f"    {c}" for c in common)
        self.ssh_config = os.path.join(wd, "ssh_config")
        with open(self.ssh_config, "w") as f:
            f.write("\n".join(lines) + "\n")

        chunks = [self.addresses[i : i + MAX_LISTEN_PER_SSHD]
                  for i in range(0, len(self.addresses), MAX_LISTEN_PER_SSHD)]
        self.sshd_configs = []
        for n, chunk in enumerate(chunks):
            path = os.path.join(wd, "sshd_config" if n == 0 else f"sshd_config.{n + 1}")
            pidfile = os.path.join(wd, "sshd.pid" if n == 0 else f"sshd.{n + 1}.pid")
            with open(path, "w") as f:
                f.write(self._sshd_config_text(chunk, pidfile))
            self.sshd_configs.append(path)
        self.sshd_config = self.sshd_configs[0]

    def _sshd_config_text(self, listen: list[str], pidfile: str) -> str:
        extra_global, extra_match, overridden, subsystems = _split_extra(self.extra_config)
        defaults = [
            ("HostKey", _cfg_value(self._host_key)),
            ("AuthorizedKeysFile", _cfg_value(self._authorized_keys)),
            ("PidFile", _cfg_value(pidfile)),
            ("LogLevel", "VERBOSE"),
            ("UsePAM", "no"),
            ("PubkeyAuthentication", "yes"),
            ("PasswordAuthentication", "no"),
            ("KbdInteractiveAuthentication", "no"),
            ("HostbasedAuthentication", "no"),
            ("PermitRootLogin", "yes" if self.user == "root" else "no"),
            ("StrictModes", "no"),
            ("MaxStartups", self.max_startups),
            ("MaxSessions", "100"),
            ("KexAlgorithms", KEX_ALGORITHMS),
            ("AcceptEnv", "PARALLAX_* LANG LC_*"),
            ("PermitUserEnvironment", "no"),
            ("UseDNS", "no"),
            ("PrintMotd", "no"),
            ("PrintLastLog", "no"),
            ("Banner", "none"),
            ("X11Forwarding", "no"),
            ("LoginGraceTime", "30"),
        ]
        lines = ["# sshd_config generated by parallax.testing.SSHLab"]
        lines += [f"ListenAddress {a}:{self.port}" for a in listen]
        for kw, value in defaults:
            if kw.lower() in overridden and kw.lower() not in _ACCUMULATING:
                continue
            lines.append(f"{kw} {value}")
        if "sftp" not in subsystems:
            lines.append("Subsystem sftp internal-sftp")
        if self.extra_config.strip():
            lines += ["", "# extra_config", extra_global, extra_match]
        return "\n".join(lines).rstrip("\n") + "\n"

    def _launch(self) -> None:
        st = self._state
        # Fresh log per attempt (a failed attempt's "Bind to port" lines must not linger).
        log_fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_TRUNC)
        preexec = _subreaper_preexec() if sys.platform == "linux" else None
        try:
            for cfg in self.sshd_configs:
                st.procs.append(subprocess.Popen(
                    [*self.command_prefix, SSHD_PATH, "-D", "-f", cfg, "-E", self.log_file],
                    stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd,
                    start_new_session=True, close_fds=True, preexec_fn=preexec,
                ))
        finally:
            os.close(log_fd)
        want = {_proc_hex(a): a for a in self.addresses}
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            dead = [p for p in st.procs if p.poll() is not None]
            log = self.log_text()
            if dead or "Bind to port" in log:
                msg = self._failure(f"sshd exited with status {dead[0].returncode}" if dead
                                    else "sshd could not bind every address")
                if "Address already in use" in log:
                    raise _BindError(msg)
                raise RuntimeError(msg)
            listening = _listening(self.port, st.procs[0].pid if self.command_prefix else None)
            if listening is None:
                if all(_tcp_accepts(a, self.port) for a in self.addresses):
                    return
            elif not (want.keys() - listening):
                return
            if time.monotonic() > deadline:
                missing = sorted(set(want.values()) - {want[h] for h in (listening or ())})
                raise RuntimeError(self._failure(
                    f"sshd did not listen within {_START_TIMEOUT:.0f}s on {', '.join(missing[:5])}"))
            time.sleep(0.005)

    def _failure(self, what: str) -> str:
        tail = "\n".join(self.log_text().strip().splitlines()[-15:])
        keep = "" if os.environ.get(KEEP_ENV) else f"; workdir is removed, set {KEEP_ENV}=1 to keep it"
        return (f"SSHLab: {what} (port {self.port}, config {self.sshd_config}{keep}).\n"
                f"--- tail of {self.log_file} ---\n{tail}")


class _BindError(RuntimeError):
    pass


if __name__ == "__main__":  # pragma: no cover - manual smoke test
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    t0 = time.perf_counter()
    with SSHLab(hosts=n) as lab:
        print(f"{lab!r} started in {time.perf_counter() - t0:.3f}s")
        print("try:", " ".join(shlex.quote(a) for a in ["ssh", "-F", lab.ssh_config, "h1", "true"]))
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
