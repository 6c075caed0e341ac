"""Fewer authentication round trips for the asyncssh backend (asyncssh private API, isolated here).

asyncssh authenticates as OpenSSH does: a ``none`` request first (to learn the
server's methods), then each public key as a query and, once the server says
it would take it, the signed request: three round trips where one does.  For
the connections parallax makes (:func:`sign_at_once`) this module

* starts with ``publickey`` instead of ``none`` when publickey is the first
  preferred method parallax uses (no key: ``none`` follows, as before; a refused key: the
  server's list of methods drives the rest, as before), and
* sends the signed request at once for keys loaded from files (paramiko does
  the same).  Keys held by an agent are still queried first: an agent may ask
  its user to confirm every signature.

It replaces asyncssh's client handler for ``publickey`` (``_ClientPublicKeyAuth``)
with a subclass and sets a connection's first methods (``_auth_methods``,
read against ``_preferred_auth``).  Connections not marked behave exactly as
asyncssh's own.  :func:`check_private_api` fails loudly when asyncssh changes
what this relies on (tests/integration/test_asyncssh_auth.py calls it).
"""

from __future__ import annotations

import weakref
from typing import Any

import asyncssh
from asyncssh import auth as _auth
from asyncssh.packet import Boolean, String

_PUBLICKEY = b"publickey"
_NONE = b"none"
_marked: weakref.WeakSet[Any] = weakref.WeakSet()
#: Methods asyncssh prefers to publickey that parallax's connections never use (GSS and hostbased are off):
#: publickey goes first only when nothing else comes before it in the preferred order.
_OFF = frozenset({b"gssapi-keyex", b"gssapi-with-mic", b"hostbased"})


def check_private_api() -> None:
    """Raise RuntimeError naming what moved if asyncssh no longer has what this module uses
    (what a connection object holds is checked by the test, on a real connection)."""
    missing = [name for name in ("_ClientPublicKeyAuth", "_client_auth_handlers") if not hasattr(_auth, name)]
    if not missing:
        base = _auth._ClientPublicKeyAuth
        missing = [f"_ClientPublicKeyAuth.{name}" for name in ("_start", "_send_signed_request", "send_request")
                   if not callable(getattr(base, name, None))]
        missing += [f"SSHClientConnection.{name}" for name in ("public_key_auth_requested", "try_next_auth")
                    if not callable(getattr(asyncssh.SSHClientConnection, name, None))]
    if not hasattr(asyncssh, "agent") or not hasattr(asyncssh.agent, "SSHAgentKeyPair"):
        missing.append("agent.SSHAgentKeyPair")
    if missing:
        raise RuntimeError(f"asyncssh {asyncssh.__version__} changed its private authentication API "
                           f"(parallax.backends.asyncssh_auth uses {', '.join(missing)})")


class _SignedAtOnce(_auth._ClientPublicKeyAuth):
    """asyncssh's publickey client auth; on marked connections a file key's signature goes in the first request."""

    async def _start(self) -> None:
        if self._conn not in _marked:
            await super()._start()
            return
        self._keypair = await self._conn.public_key_auth_requested()
        if self._keypair is None:
            self._conn.try_next_auth(next_method=True)
            return
        if isinstance(self._keypair, asyncssh.agent.SSHAgentKeyPair):
            self.logger.debug1("Trying public key auth with %s key", self._keypair.algorithm)
            await self.send_request(Boolean(False), String(self._keypair.algorithm),
                                    String(self._keypair.public_data))
            return
        await self._send_signed_request()


def sign_at_once(conn: Any) -> None:
    """Authenticate *conn* (an ``asyncssh.SSHClientConnection``, as ``SSHClient.connection_made``
    gets it) with publickey first and file keys' signatures in the first request."""
    _marked.add(conn)
    methods = getattr(conn, "_auth_methods", None)
    preferred = getattr(conn, "_preferred_auth", None) or ()
    if methods == [_NONE] and _PUBLICKEY in preferred and set(preferred[:list(preferred).index(_PUBLICKEY)]) <= _OFF:
        conn._auth_methods = [_PUBLICKEY, _NONE]


def _install() -> None:
    check_private_api()
    handlers = _auth._client_auth_handlers
    current = handlers.get(_PUBLICKEY)
    if current is not _SignedAtOnce:
        if current is not _auth._ClientPublicKeyAuth:
            raise RuntimeError(f"asyncssh's publickey client handler is {current!r}, not _ClientPublicKeyAuth")
        handlers[_PUBLICKEY] = _SignedAtOnce


_install()

__all__ = ["check_private_api", "sign_at_once"]
