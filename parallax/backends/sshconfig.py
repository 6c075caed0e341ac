"""The paramiko backend's view of a target's ssh configuration, from the shared resolver.

Resolution itself is :mod:`parallax.ssh.config` (one resolver for every
in-process backend, checked against ``ssh -G``): ``Include``, ``Host``/``Match``,
tokens, first-value-wins, ``/etc/ssh/ssh_config`` after the user's file, and
the caller's ``user``/``port``/``ssh_key``/``ssh_options`` ahead of both;
``known_hosts=`` and ``host_key_policy=`` go where the openssh backend puts
them (after ``ssh_options``).  This module only turns the shared
:class:`~parallax.ssh.config.HostConfig` into the few values the paramiko
adapter reads, and keeps one resolver per config file.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from ..account import local_account
from ..errors import BadInput
from ..jobs import Target
from ..ssh import config as sshconf
from ..ssh.algorithms import ALGORITHM_OPTIONS, AlgorithmError, assemble
from ..ssh.jump import format_jump, hop_target
from ..ssh.keywords import IN_PROCESS_OPTIONS
from ..ssh.policy import HostKeyPolicy
from ..ssh.targets import TargetConfigs, connect_timeout, environment
from .paramiko_transport import security_defaults

#: Lower-case ssh option names the paramiko backend honours in ``target.ssh_options``: the shared set.
SUPPORTED_OPTIONS = IN_PROCESS_OPTIONS

#: OpenSSH's default identity files (``~/.ssh/<name>``), tried when none is configured.
DEFAULT_IDENTITIES = tuple(os.path.basename(p) for p in sshconf.DEFAULT_IDENTITY_FILES)

_LOG_LEVELS = {
    "QUIET": logging.CRITICAL + 10, "FATAL": logging.CRITICAL, "ERROR": logging.ERROR,
    "INFO": logging.INFO, "VERBOSE": logging.INFO,
    "DEBUG": logging.DEBUG, "DEBUG1": logging.DEBUG, "DEBUG2": logging.DEBUG, "DEBUG3": logging.DEBUG,
}
_POLICY_NAMES = {HostKeyPolicy.STRICT: "strict", HostKeyPolicy.ACCEPT_NEW: "accept-new",
                 HostKeyPolicy.NO: "no", HostKeyPolicy.OFF: "off"}
_FAMILIES = {"any": 0, "inet": socket.AF_INET, "inet6": socket.AF_INET6}
#: HostConfig algorithm field -> the attribute of paramiko's ``Transport.get_security_options()``.
_SECURITY_ATTRS = {"ciphers": "ciphers", "kex_algorithms": "kex", "macs": "digests",
                   "host_key_algorithms": "key_types"}
#: The methods paramiko tries when PreferredAuthentications is unset (the password before
#: keyboard-interactive: both offer the one password given).
_AUTH_ORDER = ("publickey", "password", "keyboard-interactive")


@dataclass(frozen=True)
class HostConfig:
    """Everything the paramiko adapter needs to reach one target, resolved once."""

    base: sshconf.HostConfig  # the shared resolver's record (host keys, TCP, ProxyJump hops)
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    default_identities: bool
    use_agent: bool
    auth_methods: tuple[str, ...]  # to try, in order: publickey, password, keyboard-interactive
    known_hosts: tuple[str, ...]  # the first one receives accept-new additions
    global_known_hosts: tuple[str, ...]
    host_key_name: str  # known_hosts lookup name: HostKeyAlias, host or [host]:port
    policy: str  # "strict", "accept-new", "no" (OpenSSH's StrictHostKeyChecking=no) or "off"
    connect_timeout: float | None
    proxy_jump: str | None
    compression: bool
    keepalive: int
    log_level: int | None
    family: int = 0  # AddressFamily: socket.AF_INET, AF_INET6 or 0 (any)
    # (security-options attribute, names) for each algorithm option set: ciphers, kex, digests, key_types
    algorithms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pubkey(self) -> bool:
        """Whether public keys are offered at all."""
        return "publickey" in self.auth_methods


def auth_methods(hc: sshconf.HostConfig) -> tuple[str, ...]:
    """The methods to try, in order: PreferredAuthentications (methods paramiko lacks left out),
    else publickey, password, keyboard-interactive; each only if enabled (a password method
    only with NumberOfPasswordPrompts above 0)."""
    enabled = {
        "publickey": hc.pubkey_authentication,
        "password": hc.password_authentication and hc.number_of_password_prompts > 0,
        "keyboard-interactive": hc.kbd_interactive_authentication and hc.number_of_password_prompts > 0,
    }
    order = hc.preferred_authentications if hc.preferred_authentications is not None else _AUTH_ORDER
    return tuple(dict.fromkeys(m for m in order if enabled.get(m)))


def algorithms(hc: sshconf.HostConfig) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The security options to set for *hc*'s Ciphers/KexAlgorithms/MACs/HostKeyAlgorithms
    (``AlgorithmError`` naming the option when one leaves nothing paramiko has)."""
    out: list[tuple[str, tuple[str, ...]]] = []
    defaults = None
    for option, name in ALGORITHM_OPTIONS.items():
        spec = getattr(hc, name)
        if not spec:
            continue
        defaults = defaults or security_defaults()
        attr = _SECURITY_ATTRS[name]
        default, supported = defaults[attr]
        names = assemble(option, spec, default, supported, "paramiko")
        if names is not None:
            out.append((attr, names))
    return tuple(out)


class ConfigCache:
    """Targets through the shared resolver (one per config file), each resolved once for paramiko."""

    def __init__(self) -> None:
        self._shared = TargetConfigs()
        self._resolved: dict[Target, HostConfig] = {}
        self.local_user, self.home = local_account()

    def check(self, target: Target) -> None:
        """Validate *target*'s options and config before anything runs (``BadInput`` naming the culprit)."""
        self.resolve(target)

    def resolve(self, target: Target) -> HostConfig:
        """The :class:`HostConfig` of *target* (cached)."""
        found = self._resolved.get(target)
        if found is None:
            found = self._resolved[target] = self._resolve(target)
        return found

    def check_jumps(self, target: Target) -> None:
        """Refuse a ProxyJump chain that loops (or runs past 16 hops), naming it (``BadInput``)."""
        self._shared.check_jumps(target)

    def _resolve(self, target: Target) -> HostConfig:
        hc = self._shared.resolve(target)
        if hc.proxy_command:
            raise BadInput(f"ssh config for {target.host}: ProxyCommand is not supported by the paramiko backend "
                           "(use ProxyJump, or backend='openssh')", host=target.key)
        try:
            algs = algorithms(hc)
        except AlgorithmError as e:
            raise BadInput(str(e), host=target.key) from None
        agent = hc.agent_socket()
        return HostConfig(
            base=hc,
            hostname=hc.hostname,
            port=hc.port,
            user=hc.user,
            identity_files=() if hc.default_identities else hc.identity_files,
            default_identities=hc.default_identities,
            use_agent=agent is not None and not hc.identities_only and agent == os.environ.get("SSH_AUTH_SOCK"),
            auth_methods=auth_methods(hc),
            known_hosts=hc.user_known_hosts_files,
            global_known_hosts=hc.global_known_hosts_files,
            host_key_name=hc.host_key_name,
            policy=_POLICY_NAMES[hc.host_key_policy],
            connect_timeout=connect_timeout(hc, target),
            proxy_jump=format_jump(hc.proxy_jump) if hc.proxy_jump else None,
            compression=hc.compression,
            keepalive=hc.server_alive_interval,
            log_level=_LOG_LEVELS.get(hc.log_level.upper()) if hc.log_level else None,
            family=_FAMILIES[hc.address_family],
            algorithms=algs,
            env=environment(hc, target),
        )

    def jump_target(self, target: Target, hc: HostConfig) -> Target:
        """The target to connect to first for *target*'s ProxyJump (the last hop), as ``ssh -J``
        reaches it (:func:`parallax.ssh.jump.hop_target`: its own config, not *target*'s options)."""
        return hop_target(target, hc.base.proxy_jump)


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


__all__ = ["SUPPORTED_OPTIONS", "ConfigCache", "HostConfig", "algorithms", "auth_methods", "logger_for"]
