"""paramiko's private API that parallax uses (isolated in parallax.backends.paramiko_private) still exists
and works: a signal request really ends a remote command on the lab's sshd, and a public-key request
sent right behind the service request logs in."""

from __future__ import annotations

import time

import io
import socket

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from paramiko.auth_handler import AuthHandler
from paramiko.common import MSG_SERVICE_ACCEPT, MSG_USERAUTH_REQUEST

from parallax.backends import paramiko_private


def test_the_private_names_still_exist():
    assert callable(getattr(paramiko.Transport, "_send_user_message", None)), "paramiko removed _send_user_message"
    assert isinstance(paramiko.common.cMSG_CHANNEL_REQUEST, bytes)
    for name in ("_request_auth", "_parse_service_accept"):
        assert callable(getattr(AuthHandler, name, None)), f"paramiko removed AuthHandler.{name}"
    assert isinstance(AuthHandler.__dict__.get("_client_handler_table"), property), "paramiko changed the handler table"
    assert paramiko_private.uses == ("Transport._send_user_message", "common.cMSG_CHANNEL_REQUEST",
                                     "AuthHandler._request_auth", "AuthHandler._parse_service_accept",
                                     "AuthHandler._client_handler_table")


def test_a_signal_request_ends_the_remote_command(ssh_lab):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(ssh_lab.addresses[0], port=ssh_lab.port, username=ssh_lab.user, key_filename=ssh_lab.client_key,
                   look_for_keys=False, allow_agent=False, timeout=30)
    try:
        chan = client.get_transport().open_session()
        chan.exec_command("sleep 30")
        time.sleep(0.3)
        assert paramiko_private.send_signal(chan, "TERM")
        assert chan.status_event.wait(10), "the command did not end after the signal request"
        assert chan.exit_status == -1 or chan.exit_status != 0  # killed: no normal exit 0
    finally:
        client.close()


def _transport(lab):
    sock = socket.create_connection((lab.addresses[0], lab.port), timeout=30)
    t = paramiko.Transport(sock)
    t.start_client(timeout=30)
    return t


def test_the_service_accept_reaches_the_pipelined_handler():
    a, b = socket.socketpair()
    try:
        handler = paramiko_private.PipelinedAuthHandler(paramiko.Transport(a))
        table = handler._client_handler_table
        assert table[MSG_SERVICE_ACCEPT].__func__ is paramiko_private.PipelinedAuthHandler._parse_service_accept
    finally:
        a.close()
        b.close()


class _SlowSigner:
    """A key whose signature takes long enough for the server's SERVICE_ACCEPT to be handled first."""

    def __init__(self, key):
        self._key = key

    def __getattr__(self, name):
        return getattr(self._key, name)

    def sign_ssh_data(self, *args, **kwargs):
        time.sleep(0.3)
        return self._key.sign_ssh_data(*args, **kwargs)


def test_a_pipelined_public_key_request_logs_in_with_one_request(ssh_lab):
    t = _transport(ssh_lab)
    sent = []
    send = t._send_message
    t._send_message = lambda m: (sent.append(m.asbytes()[0]), send(m))[1]
    try:
        key = _SlowSigner(paramiko.PKey.from_path(ssh_lab.client_key))
        assert paramiko_private.auth_publickey(t, ssh_lab.user, key) == []
        assert t.is_authenticated() and t.auth_handler.pipelined
        # the SERVICE_ACCEPT came while the key signed: it must not send a second request
        assert sent.count(MSG_USERAUTH_REQUEST) == 1, sent
        chan = t.open_session()
        chan.exec_command("echo logged-in")
        assert chan.makefile().read() == b"logged-in\n" and chan.recv_exit_status() == 0
    finally:
        t.close()


class _RefusingSigner(_SlowSigner):
    """A key whose signature fails, as with an agent that refuses to sign."""

    def sign_ssh_data(self, *args, **kwargs):
        raise paramiko.SSHException("agent refused operation")


def test_a_key_that_cannot_sign_leaves_the_connection_usable(ssh_lab):
    t = _transport(ssh_lab)
    try:
        refusing = _RefusingSigner(paramiko.PKey.from_path(ssh_lab.client_key))
        with pytest.raises(paramiko_private.SigningFailed, match="agent refused operation"):
            paramiko_private.auth_publickey(t, ssh_lab.user, refusing)
        time.sleep(0.2)  # the SERVICE_ACCEPT arrives meanwhile and sends nothing
        assert t.is_active() and not t.is_authenticated()
        assert paramiko_private.auth_publickey(t, ssh_lab.user, paramiko.PKey.from_path(ssh_lab.client_key)) == []
    finally:
        t.close()


def test_a_refused_pipelined_key_leaves_the_next_attempt_working(ssh_lab):
    t = _transport(ssh_lab)
    try:
        wrong = paramiko.PKey.from_path(ssh_lab.wrong_key)
        try:
            paramiko_private.auth_publickey(t, ssh_lab.user, wrong)
        except paramiko.AuthenticationException:
            pass
        else:
            raise AssertionError("the lab accepted a key it does not authorize")
        assert not t.is_authenticated() and t.is_active()
        assert paramiko_private.auth_publickey(t, ssh_lab.user, paramiko.PKey.from_path(ssh_lab.client_key)) == []
        assert t.is_authenticated()
    finally:
        t.close()


def test_an_rsa_key_waits_for_the_servers_signature_algorithms():
    a, b = socket.socketpair()
    try:
        t = paramiko.Transport(a)
        handler = paramiko_private.PipelinedAuthHandler(t)
        handler.private_key = paramiko.RSAKey.generate(1024)
        assert handler._waits_for_sig_algs()  # no server-sig-algs yet: paramiko's own order
        t.server_extensions = {"server-sig-algs": b"rsa-sha2-512,rsa-sha2-256"}
        assert not handler._waits_for_sig_algs()
        handler.private_key = _ed25519()
        t.server_extensions = {}
        assert not handler._waits_for_sig_algs()
    finally:
        a.close()
        b.close()


def _ed25519():
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem))
