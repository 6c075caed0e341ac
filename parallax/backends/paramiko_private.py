"""The one place parallax reaches into paramiko's private API: the RFC 4254 "signal" request, and a
public-key login sent one round trip sooner than paramiko sends it.

* paramiko has no public call that sends a ``signal`` channel request (how a
  cancelled command is ended on the server), so :func:`send_signal` builds the
  message and hands it to the transport's ``_send_user_message``.
* paramiko's ``auth_publickey`` sends the ``ssh-userauth`` service request and
  waits for the server's SERVICE_ACCEPT before it sends the signed
  USERAUTH_REQUEST.  Nothing in the protocol needs that wait: a server handles
  a connection's messages in order (RFC 4253 section 10 has it answer the
  service request; a refused service ends the connection, and the request
  behind it with it).  Against OpenSSH's sshd the wait costs a whole round
  trip per new connection: sshd's Nagle holds the notice it sends after a
  login behind its USERAUTH_SUCCESS, and then its channel-open confirmation
  behind that notice; with the request right behind the service request, that
  hold overlaps the one on the SUCCESS behind the SERVICE_ACCEPT.
  :func:`auth_publickey` does what ``Transport.auth_publickey`` does with an
  ``AuthHandler`` subclass whose ``_request_auth`` sends both at once and whose
  ``_parse_service_accept`` then sends nothing more.  An RSA key waits as
  before while the server's ``server-sig-algs`` has not arrived yet (the
  signature algorithm depends on it).

Kept here alone, with a test (``tests/integration/test_paramiko_private_api.py``)
that fails loudly if paramiko renames or removes what this uses.
"""

from __future__ import annotations

import threading
from typing import Any

import paramiko
from paramiko.auth_handler import AuthHandler

__all__ = ["PipelinedAuthHandler", "SigningFailed", "auth_publickey", "send_signal", "uses"]

#: The private names this module depends on (checked by the test).
uses = ("Transport._send_user_message", "common.cMSG_CHANNEL_REQUEST",
        "AuthHandler._request_auth", "AuthHandler._parse_service_accept", "AuthHandler._client_handler_table")


def send_signal(chan: paramiko.Channel, name: str) -> bool:
    """Ask the server to deliver signal *name* (``"TERM"``) to *chan*'s command; False if it could not be sent."""
    transport = chan.get_transport()
    if transport is None:
        return False
    try:
        m = paramiko.Message()
        m.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
        m.add_int(chan.remote_chanid)
        m.add_string("signal")
        m.add_boolean(False)
        m.add_string(name)
        transport._send_user_message(m)  # type: ignore[attr-defined]  # the private call (see above)
    except Exception:
        return False
    return True


class SigningFailed(Exception):
    """The key could not sign the request (nothing was sent; the connection is still usable)."""


class PipelinedAuthHandler(AuthHandler):
    """An ``AuthHandler`` that sends a public-key USERAUTH_REQUEST right behind its service request."""

    #: Whether this attempt's request went out with the service request (tests look at it).
    pipelined = False

    def _request_auth(self) -> None:
        # decided before the service request leaves: its answer may be handled (by the
        # transport's thread) before this thread has signed and sent the request
        self.pipelined = self.auth_method == "publickey" and not self._waits_for_sig_algs()
        base: Any = super()  # the private methods (the stubs leave them out)
        base._request_auth()
        if self.pipelined:
            accept = paramiko.Message()
            accept.add_string("ssh-userauth")
            accept.rewind()
            try:
                base._parse_service_accept(accept)  # builds, signs and sends the USERAUTH_REQUEST
            except Exception as e:  # e.g. an agent that refuses to sign: nothing was sent
                raise SigningFailed(str(e) or type(e).__name__) from None

    def _parse_service_accept(self, m: paramiko.Message) -> None:
        if not self.pipelined:
            base: Any = super()
            base._parse_service_accept(m)

    def _waits_for_sig_algs(self) -> bool:
        key: Any = self.private_key
        transport: Any = self.transport
        name = getattr(getattr(key, "public_blob", None), "key_type", None) or key.get_name()
        return "rsa" in name and "server-sig-algs" not in transport.server_extensions


def auth_publickey(t: paramiko.Transport, username: str, key: paramiko.PKey) -> list[str]:
    """``t.auth_publickey(username, key)``, the request pipelined (see the module's text): the
    same answers (``[]`` on success, the allowed methods after a partial success) and the same
    exceptions, but :class:`SigningFailed` when the key cannot sign (as OpenSSH, the caller may go
    on with the next key; in paramiko's own order the failure ended the transport)."""
    state: Any = t  # active and initial_kex_done: public attributes the stubs leave out
    if not state.active or not state.initial_kex_done:
        raise paramiko.SSHException("No existing session")
    event = threading.Event()
    handler: Any = PipelinedAuthHandler(t)
    t.auth_handler = handler
    handler.auth_publickey(username, key, event)
    result: list[str] = handler.wait_for_response(event)
    return result
