"""OpenSSH-style settings resolution for the in-process (paramiko) backend.

One :class:`HostConfig` per :class:`~parallax.jobs.Target` holds everything
needed to connect: the real host name, port, user, identities, known_hosts
files, host key policy, ProxyJump, environment.  Precedence mirrors the
openssh backend's argument order (first value wins): the target's own
``user``/``port``/``ssh_key``, then its ``ssh_options`` (``-o``), then its
``host_key_policy``/``known_hosts``/``connect_timeout``, then the ssh config
file (``target.ssh_config`` or the passwd home's ``~/.ssh/config``), then
OpenSSH's defaults.  Parsed config files are cached by path by
:class:`ConfigCache`, so a run over many hosts parses each file once.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shlex
import threading
from dataclasses import dataclass, field
from typing import Any

from ..account import default_ssh_config, local_account
from ..errors import BadInput
from ..hosts import name_problem
from ..jobs import Target

#: Lower-case ssh option names honoured in ``target.ssh_options``.
SUPPORTED_OPTIONS = frozenset({
    "batchmode", "compression", "connecttimeout", "globalknownhostsfile", "hostkeyalias", "hostname",
    "identitiesonly", "identityagent", "identityfile", "loglevel", "numberofpasswordprompts",
    "passwordauthentication", "port", "proxyjump", "pubkeyauthentication", "sendenv",
    "serveraliveinterval", "setenv", "stricthostkeychecking", "user", "userknownhostsfile",
})

DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")

_YES = {"yes", "true", "on"}
_NO = {"no", "false", "off"}
_POLICY = {"yes": "strict", "ask": "strict", "true": "strict", "accept-new": "accept-new",
           "no": "off", "off": "off", "false": "off"}
_LOG_LEVELS = {
    "quiet": logging.CRITICAL + 10, "fatal": logging.CRITICAL, "error": logging.ERROR,
    "info": logging.INFO, "verbose": logging.INFO,
    "debug": logging.DEBUG, "debug1": logging.DEBUG, "debug2": logging.DEBUG, "debug3": logging.DEBUG,
}
_UNSET = object()
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _flag(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _YES:
        return True
    if low in _NO:
        return False
    raise ValueError(f"ssh option {name}={value!r}: expected yes or no")


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise ValueError(f"ssh option {name}={value!r}: expected an integer") from None
    if not low <= n <= high:
        raise ValueError(f"ssh option {name}={value!r}: expected {low}..{high}")
    return n


def _seconds(name: str, value: str) -> float | None:
    n = _int(name, value, 0, 10**6)
    return float(n) or None


def parse_jump(spec: str) -> list[tuple[str | None, str, int | None]]:
    """Split a ProxyJump value into ``[(user, host, port), ...]`` hops, first hop first."""
    hops = []
    for part in spec.split(","):
        part = part.strip()
        if part.startswith("ssh://"):
            part = part[len("ssh://"):].rstrip("/")
        m = re.match(r"^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s\[\]]+)(?::(\d+))?$", part)
        if not part or not m or m.group(2).startswith("-"):
            raise ValueError(f"ssh option ProxyJump={spec!r}: cannot parse hop {part!r}")
        host = m.group(2).strip("[]")
        port = int(m.group(3)) if m.group(3) else None
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"ssh option ProxyJump={spec!r}: bad port in {part!r}")
        hops.append((m.group(1), host, port))
    return hops


def _setenv(name: str, value: str) -> dict[str, str]:
    try:
        words = shlex.split(value)
    except ValueError as e:
        raise ValueError(f"ssh option {name}={value!r}: {e}") from None
    env: dict[str, str] = {}
    for word in words:
        key, sep, val = word.partition("=")
        if not sep or not _ENV_NAME.match(key):
            raise ValueError(f"ssh option {name}={value!r}: expected NAME=VALUE pairs")
        env.setdefault(key, val)
    return env


def check_option(name: str, value: str) -> None:
    """Raise ``ValueError`` naming the option if *value* is not valid for *name*."""
    low = name.lower()
    if low in ("batchmode", "compression", "identitiesonly", "passwordauthentication", "pubkeyauthentication"):
        _flag(name, value)
    elif low == "port":
        _int(name, value, 1, 65535)
    elif low == "connecttimeout":
        _seconds(name, value)
    elif low == "serveraliveinterval":
        _int(name, value, 0, 10**6)
    elif low == "numberofpasswordprompts":
        _int(name, value, 0, 100)
    elif low == "stricthostkeychecking":
        if value.strip().lower() not in _POLICY:
            raise ValueError(f"ssh option {name}={value!r}: expected yes, accept-new, no or off")
    elif low == "loglevel":
        if value.strip().lower() not in _LOG_LEVELS:
            raise ValueError(f"ssh option {name}={value!r}: expected one of {', '.join(_LOG_LEVELS)}")
    elif low == "proxyjump":
        if value.strip().lower() != "none":
            parse_jump(value)
    elif low == "setenv":
        _setenv(name, value)
    elif low in ("hostname", "user", "hostkeyalias"):
        problem = name_problem(value.strip(), "name") if value.strip() else "must not be empty"
        if problem:
            raise ValueError(f"ssh option {name}={value!r}: not a valid name ({problem})")


_MAX_INCLUDE_DEPTH = 16
_MATCH_LINE = re.compile(r"\s*match(?:\s*=\s*|\s+)(.*)", re.IGNORECASE)
_INCLUDE_LINE = re.compile(r"\s*include(?:\s*=\s*|\s+)(.*)", re.IGNORECASE)


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError:  # unbalanced quotes: the libraries refuse the file; look at every word anyway
        return text.split()


def _included(patterns: str) -> list[str]:
    """The files an ``Include`` line pulls in, resolved as asyncssh and OpenSSH do (relative: ~/.ssh)."""
    from pathlib import Path

    files: list[str] = []
    for pattern in _words(patterns):
        path = Path(pattern).expanduser()
        if path.anchor:
            base, rest = Path(path.anchor), str(Path(*path.parts[1:]))
        else:
            base, rest = Path("~", ".ssh").expanduser(), pattern
        try:
            files += sorted(str(p) for p in base.glob(rest) if p.is_file())
        except (OSError, ValueError):
            continue
    return files


def _scan(path: str, follow_include: bool, depth: int, seen: set[str]) -> None:
    real = os.path.realpath(path)
    if real in seen or depth > _MAX_INCLUDE_DEPTH:
        return
    seen.add(real)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return  # the library reports an unreadable file itself
    for lineno, line in enumerate(lines, 1):
        match = _MATCH_LINE.match(line)
        if match:
            for word in _words(match.group(1)):
                if word.lower().lstrip("!").split("=", 1)[0] == "exec":
                    raise BadInput(
                        f"ssh_config file {path!r}, line {lineno}: 'Match exec' runs a local shell command "
                        "while the config is read; the in-process backends (paramiko, asyncssh) refuse it "
                        "(use backend='openssh', whose ssh evaluates it, or remove the line)")
            continue
        include = _INCLUDE_LINE.match(line)
        if include and follow_include:
            for child in _included(include.group(1)):
                _scan(child, follow_include, depth + 1, seen)


def refuse_match_exec(path: str, *, follow_include: bool) -> None:
    """Raise :class:`BadInput` naming the file and line if the ssh config at *path* has ``Match exec``.

    paramiko's ``SSHConfig.lookup`` and asyncssh's config loader run a
    ``Match exec`` command through a local shell, with ``%h`` and friends
    expanded; an in-process backend must never do that, so the file (and,
    with *follow_include*, every file its ``Include`` lines pull in, as
    asyncssh follows them; paramiko does not) is scanned first.  Any word
    ``exec`` among a ``Match`` line's criteria is refused, whatever its
    position.  Not cached: an included file may change while the main one
    does not, and a scan costs a read of a few small files.
    """
    _scan(path, follow_include, 0, set())


@dataclass
class HostConfig:
    """Everything needed to reach one target, resolved once."""

    hostname: str
    port: int
    user: str
    identity_files: list[str]
    default_identities: bool
    use_agent: bool
    pubkey: bool
    password_auth: bool
    known_hosts: list[str]  # first one receives accept-new additions
    global_known_hosts: list[str]
    host_key_name: str  # known_hosts lookup name: host or [host]:port
    policy: str  # "strict", "accept-new", "off"
    connect_timeout: float | None
    proxy_jump: str | None
    compression: bool
    keepalive: int
    log_level: int | None
    env: dict[str, str] = field(default_factory=dict)


class ConfigCache:
    """Parses each ssh config file once and resolves targets against it."""

    def __init__(self) -> None:
        self._configs: dict[str, Any] = {}
        self._lookups: dict[tuple[str, str], dict[str, Any]] = {}
        self._resolved: dict[Target, HostConfig] = {}
        self._lock = threading.Lock()
        self.local_user, self.home = local_account()
        self._default_path: Any = _UNSET

    def config_path(self, target: Target) -> str | None:
        """The ssh config file that applies to *target* (None: no file)."""
        if target.ssh_config is not None:
            return target.ssh_config
        if self._default_path is _UNSET:
            self._default_path = default_ssh_config()
        path: str | None = self._default_path
        return path

    def _config(self, path: str) -> Any:
        cfg = self._configs.get(path)
        if cfg is None:
            import paramiko

            if not os.path.isfile(path) and path != os.devnull:
                raise BadInput(f"ssh_config file {path!r} does not exist")
            refuse_match_exec(path, follow_include=False)  # paramiko runs it in lookup(); no Include
            try:
                cfg = paramiko.SSHConfig.from_path(path)
            except Exception as e:  # paramiko raises ConfigParseError, OSError, ...
                raise BadInput(f"ssh_config file {path!r} cannot be parsed: {e}") from None
            self._configs[path] = cfg
        return cfg

    def lookup(self, target: Target, host: str) -> dict[str, Any]:
        """The config entries for *host* (an alias or name) from *target*'s config file."""
        path = self.config_path(target)
        if path is None:
            return {}
        with self._lock:
            found = self._lookups.get((path, host))
            if found is None:
                found = dict(self._config(path).lookup(host))
                self._lookups[(path, host)] = found
            return found

    def check(self, target: Target) -> None:
        """Validate *target*'s options and config file before anything runs."""
        for key, value in target.ssh_options:
            try:
                check_option(key, value)
            except ValueError as e:
                raise BadInput(str(e), host=target.key) from None
        try:
            self.resolve(target)
        except BadInput as e:
            e.host = target.key
            raise
        except ValueError as e:
            raise BadInput(str(e), host=target.key) from None

    def resolve(self, target: Target) -> HostConfig:
        """The :class:`HostConfig` of *target* (cached)."""
        found = self._resolved.get(target)
        if found is None:
            found = self._resolve(target)
            self._resolved[target] = found
        return found

    def _resolve(self, target: Target) -> HostConfig:
        cfg = self.lookup(target, target.host)
        opts: dict[str, str] = {}
        for key, value in target.ssh_options:
            opts.setdefault(key.lower(), value)

        def pick(name: str) -> str | None:
            if name in opts:
                return opts[name]
            value = cfg.get(name)
            if isinstance(value, list):
                return value[0] if value else None
            return value

        hostname = opts.get("hostname") or cfg.get("hostname") or target.host
        port = target.port or _int("Port", pick("port") or "22", 1, 65535)
        user = target.user or pick("user") or self.local_user
        tokens = {"%d": self.home, "%u": self.local_user, "%h": hostname, "%p": str(port),
                  "%r": user, "%n": target.host, "%%": "%"}

        def expand(path: str) -> str:
            if path.startswith("~/") or path == "~":
                path = self.home + path[1:]
            return re.sub(r"%[duhprn%]", lambda m: tokens[m.group(0)], path)

        identities = []
        if target.ssh_key:
            identities.append(target.ssh_key)
        if "identityfile" in opts:
            identities.append(expand(opts["identityfile"]))
        identities += [expand(p) for p in cfg.get("identityfile", [])]
        identities = list(dict.fromkeys(identities))

        identities_only = _flag("IdentitiesOnly", pick("identitiesonly") or "no")
        agent_setting = (pick("identityagent") or "SSH_AUTH_SOCK").strip()
        use_agent = (not identities_only and agent_setting.lower() != "none"
                     and bool(os.environ.get("SSH_AUTH_SOCK")))

        policy_opt = opts.get("stricthostkeychecking")
        if policy_opt is not None:
            policy = _POLICY[policy_opt.strip().lower()]
        elif target.host_key_policy is not None:
            if target.host_key_policy not in ("strict", "accept-new", "off"):
                raise ValueError(f"host_key_policy {target.host_key_policy!r}: expected strict, accept-new or off")
            policy = target.host_key_policy
        elif cfg.get("stricthostkeychecking"):
            policy = _POLICY.get(cfg["stricthostkeychecking"].strip().lower(), "strict")
        else:
            policy = "strict"

        if "userknownhostsfile" in opts:
            kh_text = opts["userknownhostsfile"]
        elif target.known_hosts is not None:
            kh_text = None
        else:
            kh_text = cfg.get("userknownhostsfile") or "~/.ssh/known_hosts ~/.ssh/known_hosts2"
        if kh_text is None:
            known_hosts = [target.known_hosts] if target.known_hosts is not None else []
        elif kh_text.strip().lower() == "none":
            known_hosts = []
        else:
            known_hosts = [expand(p) for p in shlex.split(kh_text)]
        gkh_text = pick("globalknownhostsfile") or "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"
        global_known_hosts = [] if gkh_text.strip().lower() == "none" else [expand(p) for p in shlex.split(gkh_text)]

        alias = pick("hostkeyalias")  # used as is, without the port (as OpenSSH does)
        host_key_name = alias or (hostname if port == 22 else f"[{hostname}]:{port}")

        if target.connect_timeout:
            connect_timeout: float | None = target.connect_timeout
        else:
            raw = pick("connecttimeout")
            connect_timeout = _seconds("ConnectTimeout", raw) if raw else None

        jump = pick("proxyjump")
        if jump is not None and jump.strip().lower() == "none":
            jump = None
        if jump is not None:
            parse_jump(jump)

        level_text = pick("loglevel")
        env: dict[str, str] = {}
        send = opts.get("sendenv") or cfg.get("sendenv") or ""
        patterns = send.split()
        if patterns:
            for name, value in os.environ.items():
                if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    env[name] = value
        if "setenv" in opts:
            env.update(_setenv("SetEnv", opts["setenv"]))
        elif cfg.get("setenv"):
            env.update(_setenv("SetEnv", cfg["setenv"]))
        env.update(dict(target.env))

        prompts = _int("NumberOfPasswordPrompts", pick("numberofpasswordprompts") or "3", 0, 100)
        return HostConfig(
            hostname=hostname,
            port=port,
            user=user,
            identity_files=identities,
            default_identities=not identities,
            use_agent=use_agent,
            pubkey=_flag("PubkeyAuthentication", pick("pubkeyauthentication") or "yes"),
            password_auth=_flag("PasswordAuthentication", pick("passwordauthentication") or "yes") and prompts > 0,
            known_hosts=known_hosts,
            global_known_hosts=global_known_hosts,
            host_key_name=host_key_name,
            policy=policy,
            connect_timeout=connect_timeout,
            proxy_jump=jump,
            compression=_flag("Compression", pick("compression") or "no"),
            keepalive=_int("ServerAliveInterval", pick("serveraliveinterval") or "0", 0, 10**6),
            log_level=_LOG_LEVELS.get(level_text.strip().lower()) if level_text else None,
            env=env,
        )

    def jump_target(self, target: Target, hc: HostConfig) -> Target:
        """The target to connect to first for *target*'s ProxyJump (the last hop).

        The jump host is resolved with the same config file; it inherits the
        identity, password, timeouts and host key settings of *target*, not
        its user, port or other ssh options (as ``ssh -J`` does not pass them).
        """
        assert hc.proxy_jump is not None
        hops = parse_jump(hc.proxy_jump)
        user, host, port = hops[-1]
        rest = hc.proxy_jump.split(",")[:-1]
        options: tuple[tuple[str, str], ...] = (("ProxyJump", ",".join(rest)),) if rest else ()
        return Target(
            key=f"jump:{hc.proxy_jump}",
            host=host,
            port=port,
            user=user,
            ssh_key=target.ssh_key,
            ssh_options=options,
            connect_timeout=target.connect_timeout,
            password=target.password,
            passphrase=target.passphrase,
            host_key_policy=target.host_key_policy,
            known_hosts=target.known_hosts,
            ssh_config=target.ssh_config,
        )


def logger_for(level: int | None) -> str:
    """Name of the log channel for paramiko transports, filtered at *level*.

    Transports log under ``parallax.paramiko`` (silent unless the application
    or ``verbose`` configures the ``parallax`` logger), at INFO by default;
    ``LogLevel`` picks another threshold.
    """
    name = "parallax.paramiko.transport" if level is None else f"parallax.paramiko.transport.level{level}"
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO if level is None else level)
    return name


__all__ = [
    "SUPPORTED_OPTIONS",
    "ConfigCache",
    "HostConfig",
    "check_option",
    "logger_for",
    "parse_jump",
    "refuse_match_exec",
]
