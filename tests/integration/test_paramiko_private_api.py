"""paramiko's private API that parallax uses (isolated in parallax.backends.paramiko_signal) still exists
and works: a signal request really ends a remote command on the lab's sshd."""

from __future__ import annotations

import time

import paramiko

from parallax.backends import paramiko_signal


def test_the_private_names_still_exist():
    assert callable(getattr(paramiko.Transport, "_send_user_message", None)), "paramiko removed _send_user_message"
    assert isinstance(paramiko.common.cMSG_CHANNEL_REQUEST, bytes)
    assert paramiko_signal.uses == ("Transport._send_user_message", "common.cMSG_CHANNEL_REQUEST")


def test_a_signal_request_ends_the_remote_command(ssh_lab):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(ssh_lab.addresses[0], port=ssh_lab.port, username=ssh_lab.user, key_filename=ssh_lab.client_key,
                   look_for_keys=False, allow_agent=False, timeout=30)
    try:
        chan = client.get_transport().open_session()
        chan.exec_command("sleep 30")
        time.sleep(0.3)
        assert paramiko_signal.send_signal(chan, "TERM")
        assert chan.status_event.wait(10), "the command did not end after the signal request"
        assert chan.exit_status == -1 or chan.exit_status != 0  # killed: no normal exit 0
    finally:
        client.close()
