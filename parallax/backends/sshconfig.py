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
import threading
from dataclasses import dataclass, field

from ..account import local_account
from ..errors import BadInput
from ..jobs import Target
from ..ssh import config as sshconf
from ..ssh.jump import format_jump, parse_jump
from ..ssh.policy import HostKeyPolicy

#: Lower-case ssh option names the paramiko backend honours in ``target.ssh_options``.
SUPPORTED_OPTIONS = frozenset({
    "batchmode", "compression", "connecttimeout", "globalknownhostsfile", "hostkeyalias", "hostname",
    "identitiesonly", "identityagent", "identityfile", "loglevel", "numberofpasswordprompts",
    "passwordauthentication", "port", "proxyjump", "pubkeyauthentication", "sendenv",
    "serveraliveinterval", "serveralivecountmax", "setenv", "stricthostkeychecking", "user",
    "userknownhostsfile", "kbdinteractiveauthentication", "tcpkeepalive",
})

#: OpenSSH's default identity files (``~/.ssh/<name>``), tried when none is configured.
DEFAULT_IDENTITIES = tuple(os.path.basename(p) for p in sshconf.DEFAULT_IDENTITY_FILES)

_LOG_LEVELS = {
    "QUIET": logging.CRITICAL + 10, "FATAL": logging.CRITICAL, "ERROR": logging.ERROR,
    "INFO": logging.INFO, "VERBOSE": logging.INFO,
    "DEBUG": logging.DEBUG, "DEBUG1": logging.DEBUG, "DEBUG2": logging.DEBUG, "DEBUG3": logging.DEBUG,
}
_POLICY_NAMES = {HostKeyPolicy.STRICT: "strict", HostKeyPolicy.ACCEPT_NEW: "accept-new",
                 HostKeyPolicy.NO: "no", HostKeyPolicy.OFF: "off"}


@dataclass(frozen=True)
class HostConfig:
    """Everything the paramiko adapter needs to reach one target, resolved once."""

    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    default_identities: bool
    use_agent: bool
    pubkey: bool
    password_auth: bool
    known_hosts: tuple[str, ...]  # the first one receives accept-new additions
    global_known_hosts: tuple[str, ...]
    host_key_name: str  # known_hosts lookup name: HostKeyAlias, host or [host]:port
    policy: str  # "strict", "accept-new", "no" (OpenSSH's StrictHostKeyChecking=no) or "off"
    connect_timeout: float | None
    proxy_jump: str | None
    compression: bool
    keepalive: int
    log_level: int | None
    env: dict[str, str] = field(default_factory=dict)


class ConfigCache:
    """One shared resolver per ssh config file; targets resolved once each."""

    def __init__(self) -> None:
        self._resolvers: dict[str | None, sshconf.ConfigResolver] = {}
        self._resolved: dict[Target, HostConfig] = {}
        self._lock = threading.Lock()
        self.local_user, self.home = local_account()

    def _resolver(self, target: Target) -> sshconf.ConfigResolver:
        path = target.ssh_config
        with self._lock:
            found = self._resolvers.get(path)
            if found is None:
                try:
                    found = sshconf.ConfigResolver(path if path is not None else sshconf.USER_CONFIG)
                except sshconf.ConfigError as e:
                    raise BadInput(f"ssh_config: {e}", host=target.key) from None
                self._resolvers[path] = found
            return found

    def check(self, target: Target) -> None:
        """Validate *target*'s options and config before anything runs (``BadInput`` naming the culprit)."""
        self.resolve(target)

    def resolve(self, target: Target) -> HostConfig:
        """The :class:`HostConfig` of *target* (cached)."""
        found = self._resolved.get(target)
        if found is None:
            try:
                found = self._resolve(target)
            except sshconf.ConfigError as e:
                raise BadInput(str(e), host=target.key) from None
            self._resolved[target] = found
        return found

    def _shared(self, target: Target) -> sshconf.HostConfig:
        """*target* through the shared resolver (``ConfigError`` for a bad config)."""
        options: list[tuple[str, str]] = list(target.ssh_options)
        if target.known_hosts is not None and target.host_key_policy != "off":
            options.append(("UserKnownHostsFile", target.known_hosts))  # after ssh_options, as on ssh's argv
        return self._resolver(target).resolve(
            target.host, user=target.user, port=target.port,
            identity_files=[target.ssh_key] if target.ssh_key else [],
            ssh_options=options, host_key_policy=target.host_key_policy)

    def check_jumps(self, target: Target) -> None:
        """Refuse a ProxyJump chain that loops (or runs past 16 hops), naming it (``BadInput``)."""
        try:
            self._resolver(target).jump_chain(self._shared(target))
        except sshconf.ConfigError as e:
            raise BadInput(str(e), host=target.key) from None

    def _resolve(self, target: Target) -> HostConfig:
        hc = self._shared(target)
        if hc.proxy_command:
            raise BadInput(f"ssh config for {target.host}: ProxyCommand is not supported by the paramiko backend "
                           "(use ProxyJump, or backend='openssh')", host=target.key)
        env = hc.environment()
        env.update(dict(target.env))
        agent = hc.agent_socket()
        return HostConfig(
            hostname=hc.hostname,
            port=hc.port,
            user=hc.user,
            identity_files=() if hc.default_identities else hc.identity_files,
            default_identities=hc.default_identities,
            use_agent=agent is not None and not hc.identities_only and agent == os.environ.get("SSH_AUTH_SOCK"),
            pubkey=hc.pubkey_authentication,
            password_auth=(hc.password_authentication or hc.kbd_interactive_authentication)
            and hc.number_of_password_prompts > 0,
            known_hosts=hc.user_known_hosts_files,
            global_known_hosts=hc.global_known_hosts_files,
            host_key_name=hc.host_key_name,
            policy=_POLICY_NAMES[hc.host_key_policy],
            # as the openssh backend: ssh_options and the ssh config win over connect_timeout=
            connect_timeout=float(hc.connect_timeout) if hc.connect_timeout else target.connect_timeout,
            proxy_jump=format_jump(hc.proxy_jump) if hc.proxy_jump else None,
            compression=hc.compression,
            keepalive=hc.server_alive_interval,
            log_level=_LOG_LEVELS.get(hc.log_level.upper()) if hc.log_level else None,
            env=env,
        )

    def jump_target(self, target: Target, hc: HostConfig) -> Target:
        """The target to connect to first for *target*'s ProxyJump (the last hop).

        As ``ssh -J``: the hop is resolved under the same config file with its
        own Host/Match settings; it inherits the identity, password, timeouts
        and host key settings of *target*, not its user, port or ssh options.
        """
        assert hc.proxy_jump is not None
        hops = parse_jump(hc.proxy_jump)
        last = hops[-1]
        options: tuple[tuple[str, str], ...] = (("ProxyJump", format_jump(hops[:-1])),) if len(hops) > 1 else ()
        return Target(
            key=f"jump:{hc.proxy_jump}",
            host=last.host,
            port=last.port,
            user=last.user,
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


__all__ = ["SUPPORTED_OPTIONS", "ConfigCache", "HostConfig", "logger_for"]
