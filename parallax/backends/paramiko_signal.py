"""The one place parallax reaches into paramiko's private API: the RFC 4254 "signal" request.

paramiko has no public call that sends a ``signal`` channel request (how a
cancelled command is ended on the server), so this module builds the message
and hands it to the transport's ``_send_user_message``.  Kept here alone, with
a test (``tests/integration/test_paramiko_private_api.py``) that fails loudly
if paramiko renames or removes what it uses.
"""

from __future__ import annotations

import paramiko

__all__ = ["send_signal", "uses"]

#: The private names this module depends on (checked by the test).
uses = ("Transport._send_user_message", "common.cMSG_CHANNEL_REQUEST")


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
