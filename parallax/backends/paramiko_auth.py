"""Authentication on a paramiko transport as OpenSSH does it: the methods in PreferredAuthentications
order (default: identity files, the agent, the default identities, then the password); and the
identities, each read at most once per backend."""

from __future__ import annotations

import os
from collections.abc import Iterable

import paramiko

from ..errors import AuthenticationFailed
from ..ssh.keys import KeyCache, KeyUnusable, permission_denied
from .paramiko_errors import why
from .paramiko_private import SigningFailed, auth_publickey
from .paramiko_transport import Conn
from .sshconfig import DEFAULT_IDENTITIES

__all__ = ["KeyStore", "authenticate"]


def _load(path: str, passphrase: str | None) -> paramiko.PKey:
    """paramiko's parser for :class:`~parallax.ssh.keys.KeyCache`, its failures in the shared words."""
    try:
        # cryptography wants bytes; paramiko's annotation says str
        password = passphrase.encode() if passphrase is not None else None
        return paramiko.PKey.from_path(path, password)  # type: ignore[arg-type]
    except paramiko.PasswordRequiredException:
        raise KeyUnusable.encrypted(path) from None
    except (ValueError, TypeError, paramiko.SSHException) as e:
        if passphrase is not None:  # KeyCache passes one only for a key it found encrypted
            raise KeyUnusable.wrong_passphrase(path) from None
        raise KeyUnusable.unreadable(path, str(e) or type(e).__name__) from None


class KeyStore(KeyCache[paramiko.PKey]):
    """paramiko keys by path and passphrase, each file read at most once per backend."""

    def __init__(self) -> None:
        super().__init__(_load)


def authenticate(conn: Conn, keys: KeyStore, home: str) -> None:
    """The methods of ``hc.auth_methods`` in their order (PreferredAuthentications, else keys
    then the password), like OpenSSH: keys are the identity files, the agent, then the
    default files; the one password is offered by password, else keyboard-interactive."""
    t, hc, target = conn.transport, conn.hc, conn.target
    user = hc.user
    notes: list[str] = []
    allowed: list[str] | None = None
    offered = 0
    password_tried = False  # one secret: offered by one method at most

    def offer(key: paramiko.PKey) -> bool:
        nonlocal allowed, offered
        offered += 1
        try:
            auth_publickey(t, user, key)  # paramiko's, one round trip sooner
        except SigningFailed as e:  # OpenSSH goes on with the next key
            notes.append(f"{key.get_name()} key {key.fingerprint}: cannot sign: {e}")
            return False
        except paramiko.BadAuthenticationType as e:
            allowed = list(e.allowed_types)
        except paramiko.AuthenticationException as e:
            if "timeout" in str(e).lower():
                raise
        except (paramiko.SSHException, EOFError, OSError):
            if t.is_active():
                raise
        conn.auth = "publickey"
        return t.is_authenticated()

    def may(method: str) -> bool:
        return t.is_active() and (allowed is None or method in allowed)

    def offer_files(paths: Iterable[str]) -> bool:
        for path in paths:
            if not may("publickey"):
                return False
            try:
                key = keys.get(path, target.key_passphrase)  # unlocks keys only
            except KeyUnusable as e:
                notes.append(str(e))
                continue
            if offer(key):
                return True
        return False

    def publickey() -> bool:
        if offer_files(hc.identity_files):
            return True
        if hc.use_agent and may("publickey"):
            try:
                agent = paramiko.Agent()
            except Exception as e:  # a stale SSH_AUTH_SOCK must not stop other methods
                notes.append(f"ssh agent unavailable: {why(e)}")
                agent = None
            try:
                for key in agent.get_keys() if agent is not None else ():
                    if not may("publickey"):
                        break
                    if offer(key):
                        return True
            finally:
                if agent is not None:
                    agent.close()
        if hc.default_identities:  # OpenSSH's defaults, those that exist
            defaults = (os.path.join(home, ".ssh", name) for name in DEFAULT_IDENTITIES)
            if offer_files(p for p in defaults if os.path.isfile(p)):
                return True
        return False

    def password(method: str) -> bool:
        nonlocal allowed, password_tried
        secret = target.password
        if secret is None or password_tried or not conn.password_ok or not may(method):
            return False
        try:
            if method == "password":
                t.auth_password(user, secret)
            else:
                t.auth_interactive(user, lambda title, instr, prompts: [secret] * len(prompts))
            conn.auth = method
        except paramiko.BadAuthenticationType as e:  # the server does not take this method
            allowed = list(e.allowed_types)
            return False
        except paramiko.AuthenticationException:
            pass
        password_tried = True
        return t.is_authenticated()

    for method in hc.auth_methods:
        if publickey() if method == "publickey" else password(method):
            return
    if not t.is_active():
        notes.append("the server closed the connection (too many authentication failures?)")
    elif not offered and target.password is None:
        notes.append("no identity file, agent key or password to offer")
    methods = allowed or ["publickey", *(["password"] if target.password else [])]
    raise AuthenticationFailed.at(target, permission_denied(user, hc.hostname, methods, notes))
