"""ONE resolver of OpenSSH client configuration: a target's name -> an immutable :class:`HostConfig`.

Order, first obtained value wins (as ``ssh -l U -p P -i K -o ... HOST``):
the caller's ``user``/``port``/``identity_files``, then ``ssh_options``
(``-o`` lines), then ``host_key_policy`` (a parallax policy, only if no
``StrictHostKeyChecking`` option), then the user's config file, then the
system file (``/etc/ssh/ssh_config``; like ``ssh -F``, an explicit config
file skips it unless ``system_config`` names one), then OpenSSH's defaults.
Files are parsed once and cached by the :class:`ConfigResolver`; so are
Include globs and resolved hosts (create a new resolver to re-read files).

Follows OpenSSH 9.2 (Debian 12's), checked against ``ssh -G`` by
``tests/unit/test_ssh_config_oracle.py``.  Decisions:

* Unknown keywords are an error unless listed in ``IgnoreUnknown`` (as
  OpenSSH); keywords OpenSSH knows but parallax does not use are accepted.
* What cannot be evaluated faithfully is an :class:`UnsupportedConfig` (a
  :class:`ConfigError`) naming file
  and line, for the hosts it applies to: ``Match exec`` (nothing is ever run),
  ``Match canonical/final/localnetwork/tagged``, ``KnownHostsCommand``,
  ``CanonicalizeHostname yes/always``.
* Upstream defaults: Debian's ssh also makes ServerAliveInterval 300 under
  ``BatchMode yes``; parallax does not.
* ``%C`` is OpenSSH 9.2's hash of ``%l%h%p%r`` (9.6 added ``%j``).
* A caller's ``identity_files`` entry is kept even if the file is missing
  (``ssh -i`` drops it with a warning): the backend reports it.
* ``ssh_options`` are checked like config lines; ``Host``/``Match``/``Include``
  are refused there, as ``ssh -o`` does.

:meth:`ConfigResolver.jump_chain` resolves ProxyJump hops as ``ssh -J``.
Pure Python: no paramiko or asyncssh.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from ..account import local_account
from .config_eval import EvalState, evaluate, glob_paths
from .config_parse import ConfigError, Item, Origin, ParsedFile, Setting, UnsupportedConfig, parse_file, parse_line
from .hostconfig import HostConfig
from .jump import JumpHop, format_jump, parse_jump
from .policy import STRICT_HOST_KEY_CHECKING, HostKeyPolicy, policy_for
from .tokens import CLIENT_TOKENS, PROXY_TOKENS, TokenError, Tokens, expand, expand_tilde

__all__ = [
    "DEFAULT_IDENTITY_FILES",
    "SYSTEM_CONFIG",
    "USER_CONFIG",
    "ConfigError",
    "ConfigResolver",
    "HostConfig",
    "JumpHop",
    "LocalContext",
    "SshOption",
    "UnsupportedConfig",
]

#: OpenSSH 9.2's default identities, in its order (used when none is configured).
DEFAULT_IDENTITY_FILES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
                          "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa")
DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
SYSTEM_CONFIG = "/etc/ssh/ssh_config"


class _Default:
    def __repr__(self) -> str:
        return "USER_CONFIG"


#: ``config_file`` default: ``~/.ssh/config`` if it exists (with OpenSSH's permission check).
USER_CONFIG = _Default()
#: One ssh option: ``("Port", "22")`` or ``"Port=22"`` (as after ``ssh -o``).
SshOption = str | tuple[str, str]


@dataclass(frozen=True)
class LocalContext:
    """The local side as OpenSSH sees it (tests pass their own)."""

    user: str
    home: str  # passwd home: ~ and %d
    uid: int
    hostname: str  # %l
    include_home: str  # where Include's ~ and relative paths point (glob's ~ is $HOME)

    @classmethod
    def current(cls) -> LocalContext:
        """This process's account, passwd home and host name."""
        user, home = local_account()
        return cls(user, home, os.getuid(), socket.gethostname(), os.environ.get("HOME") or home)


_CacheKey = tuple[str, str | None, int | None, tuple[str, ...], tuple[SshOption, ...], str | None]


class ConfigResolver:
    """Resolves targets against one user config and one system config; parses each file once."""

    def __init__(self, config_file: str | _Default | None = USER_CONFIG, *,
                 system_config: str | _Default | None = USER_CONFIG,
                 context: LocalContext | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.context = context or LocalContext.current()
        self.environ: Mapping[str, str] = dict(os.environ if environ is None else environ)
        if isinstance(config_file, _Default):
            default = os.path.join(self.context.home, ".ssh", "config")
            self.config_file, self._user_perm = (default if os.path.exists(default) else None), True
            system_default: str | None = SYSTEM_CONFIG
        else:
            if config_file is not None and not os.path.isfile(config_file) and config_file != os.devnull:
                raise ConfigError(f"{config_file}: ssh config file does not exist")
            self.config_file, self._user_perm = config_file, False
            system_default = None
        self.system_config = system_default if isinstance(system_config, _Default) else system_config
        self._files: dict[tuple[str, bool], ParsedFile] = {}
        self._globs: dict[str, tuple[str, ...]] = {}
        self._hosts: dict[_CacheKey, HostConfig] = {}
        self._lock = threading.Lock()

    def _load(self, path: str, check_perm: bool) -> ParsedFile:
        key = (path, check_perm)
        found = self._files.get(key)
        if found is None:
            found = self._files[key] = parse_file(path, check_perm=check_perm)
        return found

    def _glob(self, path: str) -> tuple[str, ...]:
        found = self._globs.get(path)
        if found is None:
            found = self._globs[path] = glob_paths(path)
        return found

    def resolve(self, host: str, *, user: str | None = None, port: int | None = None,
                identity_files: Iterable[str] = (), ssh_options: Iterable[SshOption] = (),
                host_key_policy: str | HostKeyPolicy | None = None) -> HostConfig:
        """The :class:`HostConfig` of *host* (cached); :class:`ConfigError` names the bad line."""
        ids, opts = tuple(identity_files), tuple(ssh_options)
        policy = str(host_key_policy) if host_key_policy is not None else None
        key: _CacheKey = (host, user, port, ids, opts, policy)
        with self._lock:
            found = self._hosts.get(key)
            if found is None:
                found = self._hosts[key] = self._resolve(host, user, port, ids, opts, policy)
            return found

    def jump_chain(self, hc: HostConfig) -> tuple[HostConfig, ...]:
        """The configs of *hc*'s ProxyJump hops, first hop first (``()`` without ProxyJump).

        As ``ssh -J`` does, the last hop is reached as ``ssh -l USER -p PORT
        -J <earlier hops> HOP`` under the same config files: each hop gets
        its own Host/Match settings, not the target's options.  A loop (a hop
        that leads back to itself, e.g. ``Host *`` with ProxyJump) is a
        :class:`ConfigError`.
        """
        chain: list[HostConfig] = []
        seen = {(hc.hostname, hc.port, hc.user)}
        current = hc
        while current.proxy_jump:
            hops = current.proxy_jump
            last = hops[-1]
            opts: tuple[SshOption, ...] = (("ProxyJump", format_jump(hops[:-1])),) if len(hops) > 1 else ()
            current = self.resolve(last.host, user=last.user, port=last.port, ssh_options=opts)
            mark = (current.hostname, current.port, current.user)
            if mark in seen or len(chain) >= 16:
                raise ConfigError(f"ProxyJump of {hc.host!r} loops back to {last} "
                                  "(exclude the jump host from the ProxyJump block, e.g. 'Host * !bastion')")
            seen.add(mark)
            chain.append(current)
        return tuple(reversed(chain))

    def _resolve(self, host: str, user: str | None, port: int | None, ids: tuple[str, ...],
                 opts: tuple[SshOption, ...], policy: str | None) -> HostConfig:
        if not host or host[0] == "-" or len(host.split()) != 1 or host.strip() != host:
            raise ConfigError(f"host {host!r}: not a valid host name")
        ctx = self.context
        state = EvalState(host, ctx.user)
        cli = Origin("command line", 0)
        if user is not None:
            if not user or user.startswith("-") or any(c.isspace() for c in user):
                raise ConfigError(f"user {user!r}: not a valid user name")
            state.apply(Setting("user", user, cli))
        if port is not None:
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise ConfigError(f"port {port!r}: expected 1..65535")
            state.apply(Setting("port", port, cli))
        for path in ids:
            state.apply(Setting("identityfile", expand_tilde(path, ctx.home), cli), user_provided=True)
        for opt in opts:
            item = _cmdline_item(opt)
            if isinstance(item, Setting):
                state.apply(item)
            elif item is not None:  # an unknown keyword
                raise ConfigError(f"{item.origin}: unknown ssh option {getattr(item, 'keyword', '')!r}")
        override = None
        if policy is not None and "stricthostkeychecking" not in state.values:
            try:
                override = policy_for(policy, parallax_name=True)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        files = [(self.config_file, True, self._user_perm), (self.system_config, False, False)]
        for cfg_path, user_config, perm in files:
            if cfg_path is not None and cfg_path != os.devnull:
                evaluate(self._load(cfg_path, perm), state, user_config=user_config,
                         include_home=ctx.include_home, load=self._load, globber=self._glob)
        return _finish(state, ctx, self.environ, override)


@lru_cache(maxsize=1024)
def _cmdline_item(opt: SshOption) -> Item | None:
    """An ssh option parsed as a command-line directive: once per distinct option, not once per host
    (the items are frozen); a bad one raises each time."""
    return parse_line(*_option_line(opt), cmdline=True)


def _option_line(opt: SshOption) -> tuple[str, Origin]:
    if isinstance(opt, tuple):
        name, value = opt
        if not isinstance(name, str) or not name.isalnum() or not isinstance(value, str):
            raise ConfigError(f"ssh option {opt!r}: expected (Name, value) strings")
        line = f"{name} {value}"
    elif isinstance(opt, str):
        line = opt
    else:
        raise ConfigError(f"ssh option {opt!r}: expected 'Name=value' or (Name, value)")
    return line, Origin(f"ssh option {line!r}", 0)


#: Typed values copied as parsed: ssh_config key -> HostConfig field.
_DIRECT = {
    "identitiesonly": "identities_only", "hostkeyalias": "host_key_alias", "hashknownhosts": "hash_known_hosts",
    "serveraliveinterval": "server_alive_interval", "serveralivecountmax": "server_alive_count_max",
    "tcpkeepalive": "tcp_keep_alive", "bindaddress": "bind_address", "connecttimeout": "connect_timeout",
    "connectionattempts": "connection_attempts", "ciphers": "ciphers", "kexalgorithms": "kex_algorithms",
    "macs": "macs", "hostkeyalgorithms": "host_key_algorithms", "pubkeyauthentication": "pubkey_authentication",
    "passwordauthentication": "password_authentication",
    "kbdinteractiveauthentication": "kbd_interactive_authentication",
    "numberofpasswordprompts": "number_of_password_prompts", "batchmode": "batch_mode",
    "compression": "compression", "loglevel": "log_level", "addressfamily": "address_family",
    "globalknownhostsfile": "global_known_hosts_files", "stricthostkeychecking": "strict_host_key_checking",
}
#: OpenSSH's defaults of the fields above (and of the fields computed below, overwritten there).
_DEFAULTS: dict[str, object] = {
    "identities_only": False, "host_key_alias": None, "hash_known_hosts": False, "server_alive_interval": 0,
    "server_alive_count_max": 3, "tcp_keep_alive": True, "bind_address": None, "connect_timeout": None,
    "connection_attempts": 1, "ciphers": None, "kex_algorithms": None, "macs": None, "host_key_algorithms": None,
    "pubkey_authentication": True, "password_authentication": True, "kbd_interactive_authentication": True,
    "number_of_password_prompts": 3, "batch_mode": False, "compression": False, "log_level": "INFO",
    "address_family": "any", "global_known_hosts_files": DEFAULT_GLOBAL_KNOWN_HOSTS,
    "strict_host_key_checking": "ask", "revoked_host_keys": None, "proxy_jump": (), "proxy_command": None,
    "control_path": None, "preferred_authentications": None, "certificate_files": (), "set_env": (),
}


def _finish(state: EvalState, ctx: LocalContext, env: Mapping[str, str], override: HostKeyPolicy | None) -> HostConfig:
    values = state.values
    _refuse_unevaluable(state)
    fields = dict(_DEFAULTS)
    for key, setting in values.items():
        field = _DIRECT.get(key)
        if field is not None:
            fields[field] = setting.value
    name = state.current_host()
    if not _maybe_address(name):
        name = name.lower()
    port: int = values["port"].value if "port" in values else 22  # type: ignore[assignment]
    user = str(values["user"].value) if "user" in values else ctx.user
    alias = fields["host_key_alias"]
    tokens: dict[str, str] = {}

    def path(text: str, origin: Origin | None) -> str:
        if "%" not in text and "${" not in text:
            return _tilde(text, ctx.home)
        if "%" in text and not tokens:  # %C is a SHA-1: only computed when some path needs a token
            tokens.update(Tokens(ctx.hostname, name, port, user, state.host_arg, ctx.user, ctx.home, ctx.uid,
                                 str(alias) if alias is not None else state.host_arg).mapping())
        try:
            return expand(expand_tilde(text, ctx.home), tokens, allowed=CLIENT_TOKENS, env=env)
        except TokenError as e:
            raise ConfigError(f"{origin}: {e}" if origin else str(e)) from None

    identities = tuple(path(str(s.value), s.origin) for s in state.identities)
    if state.certificates:
        fields["certificate_files"] = tuple(path(str(s.value), s.origin) for s in state.certificates)
    kh = values.get("userknownhostsfile")
    known: tuple[str, ...] = kh.value if kh is not None else DEFAULT_USER_KNOWN_HOSTS  # type: ignore[assignment]
    agent = values.get("identityagent")
    agent_value = "SSH_AUTH_SOCK" if agent is None else (
        None if str(agent.value).lower() == "none" else path(str(agent.value), agent.origin))
    control = values.get("controlpath")
    if control is not None and str(control.value).lower() != "none":
        fields["control_path"] = path(str(control.value), control.origin)
    hop_setting, proxy = values.get("proxyjump"), values.get("proxycommand")
    if hop_setting is not None:
        fields["proxy_jump"] = _jump(str(hop_setting.value))
    if not fields["proxy_jump"] and proxy is not None and str(proxy.value) != "none":
        proxy_tokens = {"h": name, "n": state.host_arg, "p": str(port), "r": user}
        try:
            fields["proxy_command"] = expand(str(proxy.value), proxy_tokens, allowed=PROXY_TOKENS)
        except TokenError as e:
            raise ConfigError(f"{proxy.origin}: ProxyCommand: {e}") from None
    if "setenv" in values:
        set_env: dict[str, str] = {}
        for pair in values["setenv"].value:  # type: ignore[attr-defined]
            key, _, value = str(pair).partition("=")
            set_env.setdefault(key, value)
        fields["set_env"] = tuple(set_env.items())
    if "preferredauthentications" in values:
        fields["preferred_authentications"] = tuple(str(values["preferredauthentications"].value).split(","))
    if "revokedhostkeys" in values:
        fields["revoked_host_keys"] = _revoked(values["revokedhostkeys"].value)
    shkc = str(fields["strict_host_key_checking"])
    fields.update(
        host=state.host_arg, hostname=name, port=port, user=user,
        identity_files=identities or _defaults(ctx.home), default_identities=not identities,
        identity_agent=agent_value, user_known_hosts_files=tuple(path(p, kh.origin if kh else None) for p in known),
        host_key_policy=override or STRICT_HOST_KEY_CHECKING[shkc], send_env=tuple(state.send_env),
    )
    return HostConfig.from_fields(fields)


def _revoked(value: object) -> str | None:
    """RevokedHostKeys as written: OpenSSH 9.2 expands neither ``~`` nor tokens in it."""
    return None if str(value).lower() == "none" else str(value)


def _refuse_unevaluable(state: EvalState) -> None:
    """Settings parallax cannot honour faithfully are an error naming their line, never ignored."""
    s = state.values.get("knownhostscommand")
    if s is not None and str(s.value).lower() != "none":
        raise UnsupportedConfig(f"{s.origin}: KnownHostsCommand cannot be evaluated (parallax never runs commands "
                          "from ssh_config); use the openssh backend or remove it")
    s = state.values.get("canonicalizehostname")
    if s is not None and s.value != "no":
        raise UnsupportedConfig(f"{s.origin}: CanonicalizeHostname {s.value} cannot be evaluated (it needs OpenSSH's "
                          "DNS canonicalisation and second pass); use the openssh backend or set it to no")


@lru_cache(maxsize=4096)
def _tilde(text: str, home: str) -> str:
    return expand_tilde(text, home)


@lru_cache(maxsize=64)
def _defaults(home: str) -> tuple[str, ...]:
    return tuple(expand_tilde(p, home) for p in DEFAULT_IDENTITY_FILES)


@lru_cache(maxsize=1024)
def _jump(spec: str) -> tuple[JumpHop, ...]:
    return parse_jump(spec)


def _maybe_address(name: str) -> bool:
    """Whether *name* is an IP address literal (OpenSSH does not lower-case those)."""
    if ":" not in name and not name.replace(".", "").isdigit():
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
