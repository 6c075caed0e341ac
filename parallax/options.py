"""``Options`` (the 1.0 class, unchanged in meaning) and their resolution.

Resolution order for every setting: a value the caller set explicitly (on the
``Options`` object or as a keyword argument), then the ``PARALLAX_*``
environment variable, then the default.  :func:`resolve` turns that into an
immutable :class:`Settings` the planner and scheduler use.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import warnings
import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Mapping

from .hosts import name_problem, safe_repr
from .sudo import check_user as check_sudo_user

DEFAULT_PARALLELISM = 32
DEFAULT_TIMEOUT = 60
HOST_KEY_POLICIES = ("strict", "accept-new", "off")

_UNSET = object()


class Options:
    """Options shared by ``call``, ``run``, ``copy`` and ``slurp``.

    Every Parallax 1.0 attribute keeps its 1.0 meaning; the attributes below
    the marker are new and opt-in.  Attributes may be set after construction
    (as 1.0 callers do) or passed as keyword arguments.
    """

    # --- Parallax 1.0 ---
    limit = DEFAULT_PARALLELISM  # hosts at once
    timeout = DEFAULT_TIMEOUT  # seconds per host to connect and finish; 0/None: no limit
    askpass = False  # prompt once for a password/passphrase and hand it to every ssh
    outdir: str | None = None  # write each host's stdout to <outdir>/<host>
    errdir: str | None = None  # write each host's stderr to <errdir>/<host>
    ssh_key: str | None = None  # identity file
    ssh_options: list[str] = []  # noqa: RUF012 (1.0's class attribute; __init__ gives each instance its own)
    ssh_extra: list[str] = []  # noqa: RUF012 (as ssh_options)
    verbose = False  # diagnostics on stderr
    quiet = False  # hide per-host failure messages
    print_out = False  # print output as it arrives, prefixed with the host
    inline = True  # keep stdout and stderr in memory for the result
    inline_stdout = False  # keep stdout in memory (stderr too when inline)
    input_stream = None  # file object (or bytes/str) fed to every host's stdin
    default_user: str | None = None  # user unless the host entry names one
    recursive = True  # copy/slurp directories (1.0's default: a directory is copied whole)
    localdir: str | None = None  # slurp: base directory (default: current directory)
    warn_message = True  # print a warning before prompting for a password
    # --- new in parallax 2 ---
    backend: str | None = None  # "openssh" (default), "paramiko", "asyncssh", "mock", plugin
    connect_timeout: float | None = None  # seconds for the SSH handshake alone
    port: int | None = None  # default port unless the host entry names one
    password: str | None = None  # login password; also unlocks encrypted keys unless passphrase is set
    passphrase: str | None = None  # unlocks encrypted keys only; never offered to a server as a password
    sudo = False  # call/run: run the command through sudo on every host (parallax.sudo)
    sudo_user: str | None = None  # sudo: the user to run the command as; None: root
    sudo_password: str | None = None  # sudo: its password, sent on the command's stdin only
    sudo_askpass = False  # sudo: prompt once on the terminal for sudo's password
    host_key_policy: str | None = None  # "strict", "accept-new", "off"; None: ssh's default
    known_hosts: str | None = None  # known_hosts file to check and record keys in
    ssh_config: str | None = None  # ssh_config file; None: ~/.ssh/config
    env: dict[str, str] | None = None  # remote environment variables
    retries = 0  # extra attempts after a connection failure (never after a command ran)
    deadline: float | None = None  # overall seconds for the whole call; None: none
    local_shortcut = True  # 1.0: run call/run on this machine's own name without ssh
    max_output: int | None = None  # bytes kept in memory per stream per host; None: all
    persistent_shell = False  # run commands through one long-lived remote shell per host
    progress = False  # a live status line on stderr when it is a terminal (parallax.progress)
    on_output: Callable[[str, str, bytes], Any] | None = None  # (host, "stdout"/"stderr", data)
    on_start: Callable[[str], Any] | None = None  # (host)
    on_finish: Callable[[str, Any], Any] | None = None  # (host, result or Error)
    mock = None  # backend="mock": a parallax.backends.mock.MockHosts description
    # --- sharding across a Dask cluster (parallax[dask], see docs/scale.md) ---
    cluster = None  # a distributed.Client or a scheduler address; None: run here (PARALLAX_CLUSTER)
    shard_by: Callable[[str], str] | None = None  # host key -> group (a worker resource or name)
    limit_per_worker: int | None = None  # hosts in flight on one worker at most
    idempotent = False  # a shard re-run after its worker died may run its started hosts again

    def __init__(self, **kwargs: Any) -> None:
        for name, value in kwargs.items():
            if name not in _CLASS_DEFAULTS:
                raise TypeError(unknown_option(name))
            setattr(self, name, value)
        # 1.0 declared these lists on the class; give each instance its own
        # so ``opts.ssh_options.append(...)`` cannot leak into other Options.
        if "ssh_options" not in self.__dict__:
            self.ssh_options = list(Options.ssh_options)
        if "ssh_extra" not in self.__dict__:
            self.ssh_extra = list(Options.ssh_extra)

    def __setattr__(self, name: str, value: Any) -> None:
        # 1.0 callers may hang their own attributes on Options (crmsh does), so an
        # unknown name is set, but with a warning: ``o.timout = 5`` is a typo.
        if name not in _CLASS_DEFAULTS and not name.startswith("_"):
            warnings.warn(unknown_option(name), UserWarning, stacklevel=2)
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={'<hidden>' if k in SECRET_OPTIONS and v is not None else repr(v)}"
                          for k, v in sorted(vars(self).items()))
        return f"Options({items})"

    def updated(self, **kwargs: Any) -> Options:
        """A copy with *kwargs* applied (unknown names are a ``TypeError``)."""
        new = copy.copy(self)
        for name, value in kwargs.items():
            if name not in _CLASS_DEFAULTS:
                raise TypeError(unknown_option(name))
            setattr(new, name, value)
        return new

    def is_set(self, name: str) -> bool:
        """Whether the caller set *name* (on this instance or on the class)."""
        if name in ("ssh_options", "ssh_extra"):
            return bool(getattr(self, name))
        if name in self.__dict__:
            return True
        return getattr(Options, name) is not _CLASS_DEFAULTS[name]


_CLASS_DEFAULTS = {k: v for k, v in vars(Options).items() if not k.startswith("_") and not callable(v)}
#: Names people reach for that parallax spells otherwise.
_ALIASES = {"user": "default_user", "username": "default_user", "parallelism": "limit", "par": "limit",
            "key": "ssh_key", "identity_file": "ssh_key", "options": "ssh_options"}


def unknown_option(name: str) -> str:
    """``Options has no option 'timout' (did you mean 'timeout'?)``."""
    guess = _ALIASES.get(name) or next(iter(difflib.get_close_matches(name, _CLASS_DEFAULTS, n=1)), None)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return f"Options has no option {name!r}{hint}"
#: Options whose values never appear in repr(), logs or error messages.
SECRET_OPTIONS = frozenset({"password", "passphrase", "sudo_password"})


@dataclass(frozen=True)
class Settings:
    """Fully resolved options for one call (no environment lookups after this)."""

    backend: Any  # a name, or a Backend instance the caller built (backend=MockBackend(...))
    limit: int
    timeout: float | None
    deadline: float | None
    connect_timeout: float | None
    retries: int
    default_user: str | None
    default_port: int | None
    ssh_key: str | None
    ssh_options: tuple[tuple[str, str], ...]
    ssh_extra: tuple[str, ...]
    askpass: bool
    warn_message: bool
    password: str | None = field(repr=False)
    host_key_policy: str | None
    known_hosts: str | None
    ssh_config: str | None
    env: tuple[tuple[str, str], ...]
    outdir: str | None
    errdir: str | None
    localdir: str | None
    recursive: bool
    verbose: bool
    quiet: bool
    print_out: bool
    inline: bool
    inline_stdout: bool
    local_shortcut: bool
    max_output: int | None
    persistent_shell: bool
    on_output: Callable[[str, str, bytes], Any] | None
    on_start: Callable[[str], Any] | None
    on_finish: Callable[[str, Any], Any] | None
    mock: Any
    input_stream: Any = None
    progress: bool = False
    passphrase: str | None = field(default=None, repr=False)
    sudo: bool = False
    sudo_user: str | None = None
    sudo_password: str | None = field(default=None, repr=False)
    sudo_askpass: bool = False
    cluster: Any = None
    shard_by: Callable[[str], str] | None = None
    limit_per_worker: int | None = None
    idempotent: bool = False


_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off", ""}


def parse_ssh_option(text: str, *, source: str = "ssh_options") -> tuple[str, str]:
    """Split ``"Key=Value"`` (or ``"Key Value"``) into a checked pair."""
    if not isinstance(text, str):
        raise ValueError(f"{source}: option {text!r} must be a string 'Key=Value'")
    if _CONTROL.search(text):
        raise ValueError(f"{source}: option {text!r} contains control characters")
    m = re.match(r"^\s*([^=\s]+)\s*(?:=|\s)\s*(.*?)\s*$", text)
    if not m or not m.group(2):
        raise ValueError(f"{source}: option {text!r} is not of the form 'Key=Value'")
    key, value = m.group(1), m.group(2)
    if not _OPTION_KEY.match(key):
        raise ValueError(f"{source}: option {text!r} has an invalid name {key!r}")
    return key, value


def _env_int(environ: Mapping[str, str], name: str, minimum: int) -> int | None:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def _env_bool(environ: Mapping[str, str], name: str) -> bool | None:
    raw = environ.get(name)
    if raw is None:
        return None
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r}: expected one of 1/0, yes/no, true/false, on/off")


def _seconds(name: str, value: Any, *, zero_is_none: bool = True) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"option {name}={value!r}: expected a number of seconds")
    if value < 0:
        raise ValueError(f"option {name}={value!r}: must not be negative")
    if value == 0 and zero_is_none:
        return None
    return float(value)


def _secret(name: str, value: Any) -> str | None:
    """A password-like option: a string or ``None``; the error never shows the value."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"option {name}: expected a string, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"option {name} contains a NUL character")
    return value


def _is_backend(value: Any) -> bool:
    from .backends.base import Backend

    return isinstance(value, Backend)


def resolve(opts: Options | None = None, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Resolve *opts* + keyword *overrides* + ``PARALLAX_*`` into :class:`Settings`.

    Raises ``ValueError`` naming the option or environment variable at fault,
    and ``TypeError`` for an unknown keyword.
    """
    environ = os.environ if environ is None else environ
    if opts is None:
        opts = Options()
    elif not isinstance(opts, Options):
        # Duck-typed 1.0-style option holders: copy the attributes we know.
        o = Options()
        for name in _CLASS_DEFAULTS:
            if hasattr(opts, name):
                setattr(o, name, getattr(opts, name))
        opts = o
    if overrides:
        opts = opts.updated(**overrides)

    def pick(name: str, env_value: Callable[[], Any]) -> Any:
        """The caller's value if set, else the environment's (read only then), else the default."""
        if opts.is_set(name):
            return getattr(opts, name)
        value = env_value()
        return getattr(opts, name) if value is None else value

    limit = pick("limit", lambda: _env_int(environ, "PARALLAX_PAR", 1))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"option limit={limit!r}: expected an integer >= 1")

    def user_problem(value: Any) -> str | None:
        """Why *value* is not a login name (the host parser's rules, as OpenSSH's), or None."""
        if not isinstance(value, str):
            return f"expected a string, not {type(value).__name__}"
        if not value:
            return "must not be empty"
        if "@" in value or ":" in value or "/" in value:
            return "user must not contain '@', ':' or '/'"
        return name_problem(value, "user")

    def env_user() -> str | None:
        value = environ.get("PARALLAX_USER") or None
        if value is not None and user_problem(value):
            raise ValueError(f"PARALLAX_USER={safe_repr(value)}: not a valid user name ({user_problem(value)})")
        return value

    default_user = pick("default_user", env_user)
    if default_user is not None and user_problem(default_user):
        raise ValueError(f"option default_user={safe_repr(default_user)}: not a valid user name "
                         f"({user_problem(default_user)})")

    outdir_from_env = not opts.is_set("outdir") and bool(environ.get("PARALLAX_OUTDIR"))
    outdir = pick("outdir", lambda: environ.get("PARALLAX_OUTDIR") or None)
    if outdir_from_env and "\x00" in outdir:
        raise ValueError(f"PARALLAX_OUTDIR={safe_repr(outdir)}: a path must not contain a NUL character")
    verbose = bool(pick("verbose", lambda: _env_bool(environ, "PARALLAX_VERBOSE")))

    backend = pick("backend", lambda: (environ.get("PARALLAX_BACKEND") or "").strip() or None) or "openssh"
    if not isinstance(backend, str) and not _is_backend(backend):
        raise ValueError(f"option backend={backend!r}: expected a backend name or a Backend instance")

    ssh_options: list[tuple[str, str]] = []
    raw_opts = opts.ssh_options or []
    if isinstance(raw_opts, str):
        raw_opts = [raw_opts]
    if not isinstance(raw_opts, (list, tuple)):
        raise ValueError(f"option ssh_options={safe_repr(opts.ssh_options)}: expected a list of "
                         "'Key=Value' strings")
    for item in raw_opts:
        ssh_options.append(parse_ssh_option(item))
    env_opts = environ.get("PARALLAX_OPTIONS")
    if env_opts and env_opts.strip():
        for item in env_opts.split():
            ssh_options.append(parse_ssh_option(item, source="PARALLAX_OPTIONS"))

    ssh_extra = opts.ssh_extra or []
    if isinstance(ssh_extra, str):
        raise ValueError(f"option ssh_extra={ssh_extra!r}: expected a list of arguments, not a string")
    if not isinstance(ssh_extra, (list, tuple)):
        raise ValueError(f"option ssh_extra={safe_repr(ssh_extra)}: expected a list of arguments")
    for arg in ssh_extra:
        if not isinstance(arg, str) or _CONTROL.search(arg):
            raise ValueError(f"option ssh_extra: argument {arg!r} is not a plain string")

    port = opts.port
    if port is not None:
        if isinstance(port, str) and re.fullmatch(r"\s*0*[0-9]{1,5}\s*", port):
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"option port={safe_repr(opts.port)}: expected an integer 1..65535")

    policy = opts.host_key_policy
    if policy is not None and policy not in HOST_KEY_POLICIES:
        raise ValueError(f"option host_key_policy={policy!r}: expected one of {', '.join(HOST_KEY_POLICIES)}")

    retries = opts.retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"option retries={retries!r}: expected an integer >= 0")

    env_pairs: list[tuple[str, str]] = []
    if opts.env is not None and not isinstance(opts.env, Mapping):
        raise ValueError(f"option env={safe_repr(opts.env)}: expected a mapping of variable names to values, "
                         "such as {'A': '1'}")
    for k, v in (opts.env or {}).items():
        if not isinstance(k, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise ValueError(f"option env: invalid variable name {safe_repr(k)}")
        if not isinstance(v, str) or "\x00" in v:
            raise ValueError(f"option env: value of {k} must be a string without NUL")
        env_pairs.append((k, v))

    max_output = opts.max_output
    if max_output is not None and (isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 0):
        raise ValueError(f"option max_output={max_output!r}: expected a byte count >= 0")

    for name in ("ssh_key", "known_hosts", "ssh_config", "outdir", "errdir", "localdir"):
        value = outdir if name == "outdir" else getattr(opts, name)
        if value is not None and (not isinstance(value, (str, os.PathLike)) or "\x00" in str(os.fspath(value))):
            raise ValueError(f"option {name}={safe_repr(value)}: expected a path")

    for name in ("timeout", "deadline", "connect_timeout"):
        value = getattr(opts, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"option {name}={value!r}: expected a finite number of seconds (0 or None: no limit)")

    cluster = pick("cluster", lambda: (environ.get("PARALLAX_CLUSTER") or "").strip() or None)
    if cluster is not None and not isinstance(cluster, str) and not hasattr(cluster, "scheduler_info"):
        raise TypeError(f"option cluster: expected a distributed.Client or a scheduler address, "
                        f"not {type(cluster).__name__}")
    if opts.shard_by is not None and not callable(opts.shard_by):
        raise TypeError(f"option shard_by={opts.shard_by!r}: expected a callable host -> group name")
    per_worker = opts.limit_per_worker
    if per_worker is not None and (isinstance(per_worker, bool) or not isinstance(per_worker, int) or per_worker < 1):
        raise ValueError(f"option limit_per_worker={per_worker!r}: expected an integer >= 1")

    def path(value: Any) -> str | None:
        return None if value is None else os.fspath(value)

    return Settings(
        backend=backend,
        limit=limit,
        timeout=_seconds("timeout", opts.timeout),
        deadline=_seconds("deadline", opts.deadline),
        connect_timeout=_seconds("connect_timeout", opts.connect_timeout),
        retries=retries,
        default_user=default_user,
        default_port=port,
        ssh_key=path(opts.ssh_key),
        ssh_options=tuple(ssh_options),
        ssh_extra=tuple(ssh_extra),
        askpass=bool(opts.askpass),
        warn_message=bool(opts.warn_message),
        password=_secret("password", opts.password),
        passphrase=_secret("passphrase", opts.passphrase),
        sudo=bool(opts.sudo),
        sudo_user=check_sudo_user(opts.sudo_user),
        sudo_password=_secret("sudo_password", opts.sudo_password),
        sudo_askpass=bool(opts.sudo_askpass),
        host_key_policy=policy,
        known_hosts=path(opts.known_hosts),
        ssh_config=path(opts.ssh_config),
        env=tuple(env_pairs),
        outdir=path(outdir),
        errdir=path(opts.errdir),
        localdir=path(opts.localdir),
        recursive=bool(opts.recursive),
        verbose=verbose,
        quiet=bool(opts.quiet),
        print_out=bool(opts.print_out),
        inline=bool(opts.inline),
        inline_stdout=bool(opts.inline_stdout),
        local_shortcut=bool(opts.local_shortcut),
        max_output=max_output,
        persistent_shell=bool(opts.persistent_shell),
        on_output=opts.on_output,
        on_start=opts.on_start,
        on_finish=opts.on_finish,
        mock=opts.mock,
        input_stream=opts.input_stream,
        progress=bool(opts.progress),
        cluster=cluster,
        shard_by=opts.shard_by,
        limit_per_worker=per_worker,
        idempotent=bool(opts.idempotent),
    )


__all__ = ["DEFAULT_PARALLELISM", "DEFAULT_TIMEOUT", "Options", "Settings", "parse_ssh_option", "resolve"]
