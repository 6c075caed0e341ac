"""parallax.backends.asyncssh_auth: the asyncssh private API it relies on, and its effect on a real sshd
(publickey first, the signature in the first request: one authentication round trip instead of three)."""

from __future__ import annotations

import logging
import os

import asyncssh
import pytest

import parallax
from parallax.backends import asyncssh_auth

from helpers import lab_opts, ok


@pytest.fixture
def asyncssh_debug(caplog):
    asyncssh.set_debug_level(2)
    caplog.set_level(logging.DEBUG, logger="asyncssh")
    yield caplog
    asyncssh.set_debug_level(1)


def auth_lines(caplog) -> list[str]:
    wanted = ("Remaining auth methods", "Trying public key auth", "Signing request", "succeeded", "failed")
    messages = [r.getMessage().split("] ", 1)[-1] for r in caplog.records if r.name.startswith("asyncssh")]
    return [m for m in messages if any(w in m for w in wanted)]  # without asyncssh's "[conn=N] " prefix


def test_the_private_api_is_where_the_module_expects_it():
    asyncssh_auth.check_private_api()  # raises naming what moved
    from asyncssh import auth
    assert auth._client_auth_handlers[b"publickey"] is asyncssh_auth._SignedAtOnce
    assert issubclass(asyncssh_auth._SignedAtOnce, auth._ClientPublicKeyAuth)


def test_a_file_key_is_signed_in_the_first_request_and_none_is_not_asked(ssh_lab, asyncssh_debug):
    ok(parallax.call(ssh_lab.hosts[0], "true", **lab_opts(ssh_lab, "asyncssh")))
    lines = auth_lines(asyncssh_debug)
    assert lines[0].startswith("Signing request"), lines
    assert not any(line.startswith(("Trying public key auth", "Remaining auth methods")) for line in lines), lines
    assert any("succeeded" in line for line in lines), lines


def test_a_refused_key_still_ends_in_a_clear_failure(ssh_lab, tmp_path, asyncssh_debug):
    other = tmp_path / "other_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    os.chmod(other, 0o600)
    res = parallax.call(ssh_lab.hosts[0], "true", **lab_opts(ssh_lab, "asyncssh", ssh_key=str(other)))
    (r,) = res.values()
    assert isinstance(r, parallax.AuthenticationFailed), r
    lines = auth_lines(asyncssh_debug)
    assert lines[0].startswith("Signing request"), lines  # signed at once, refused, then the server's list


def test_connections_parallax_did_not_make_keep_asyncssh_behaviour(ssh_lab, asyncssh_debug):
    async def plain() -> None:
        async with asyncssh.connect(ssh_lab.addresses[0], ssh_lab.port, username=ssh_lab.user, config=None,
                                    client_keys=[ssh_lab.client_key], known_hosts=None, agent_path=None) as conn:
            await conn.run("true", check=True)

    parallax.api.run_sync(plain())
    lines = auth_lines(asyncssh_debug)
    assert lines[0].startswith("Remaining auth methods"), lines  # asyncssh's "none" first
    assert any(line.startswith("Trying public key auth") for line in lines), lines  # then the query
