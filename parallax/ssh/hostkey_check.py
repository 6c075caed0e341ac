"""The host-key check of an in-process backend, written once.

A backend hands over the key the server offered as a
:class:`~parallax.ssh.hostkeys.HostKey` (key type and base64 blob, which every
SSH library exposes) and gets back the policy's
:class:`~parallax.ssh.hostkeys.Decision`, or the parallax error to fail the
connection with.  In between: the known_hosts lookup
(:meth:`~parallax.ssh.hostkeys.KnownHosts.check`), the policy table
(:func:`~parallax.ssh.hostkeys.decide`), the accept-new pin
(:func:`~parallax.ssh.known_hosts_cache.pin_host_key`: a key that cannot be
pinned is not accepted) and the refusal in the message shapes every backend
shares.  Nothing here imports an SSH library.
"""

from __future__ import annotations

import base64
import hashlib
import logging

from ..errors import Error, HostKeyChanged, HostKeyError, HostKeyUnknown
from ..jobs import Target
from .hostconfig import HostConfig
from .hostkeys import Decision, HostCertificateUnsupported, HostKey, HostKeyStatus, KnownHosts, Verdict, decide
from .known_hosts_cache import pin_host_key, unrecordable

__all__ = ["check_host_key", "check_offered_blob", "fingerprint", "known_files", "record_file", "refusal"]

log = logging.getLogger("parallax.ssh")


def known_files(hc: HostConfig) -> tuple[str, ...]:
    """The known_hosts files to look keys up in: user then global, without ``/dev/null``."""
    return tuple(p for p in hc.known_hosts_files if p != "/dev/null")


def record_file(hc: HostConfig) -> str | None:
    """Where accept-new pins a key: the first user known_hosts file (None: nowhere)."""
    return next((p for p in hc.user_known_hosts_files if p != "/dev/null"), None)


def fingerprint(key: HostKey) -> str:
    """OpenSSH's ``SHA256:`` fingerprint of *key*."""
    digest = hashlib.sha256(base64.b64decode(key.base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def refusal(target: Target, name: str, verdict: Verdict, key: HostKey, files: tuple[str, ...]) -> Error:
    """The error for refusing *key* offered for known_hosts *name*, as the lookup judged it."""
    kind, fp, old = key.type, fingerprint(key), verdict.entry
    if verdict.status is HostKeyStatus.REVOKED:
        return HostKeyError.at(target, f"{name} offered a revoked {kind} key ({fp})")
    if verdict.status is HostKeyStatus.CHANGED and old is not None:
        return HostKeyChanged.at(target, f"{name} offered {kind} {fp}, {old.file} line {old.line} has "
                                         f"{old.key.type} {fingerprint(old.key)}")
    listed = ", ".join(files) or "no known_hosts file"
    return HostKeyUnknown.at(target, f"no {kind} key for {name} in {listed} (fingerprint {fp})")


def check_host_key(target: Target, hc: HostConfig, known: KnownHosts | None, offered: HostKey) -> Decision:
    """Judge *offered* for *target* (resolved as *hc*) against *known* (None: policy ``off``, nothing
    looked up); pin it under accept-new.  Returns the accepting decision (``disable_password``: OpenSSH's
    restriction after a changed key was let through) or raises the refusal (a parallax error)."""
    if known is None:
        return decide(hc.host_key_policy, None)
    name = hc.host_key_name
    try:
        verdict = known.check(name, offered)
    except HostCertificateUnsupported as e:
        raise HostKeyError.at(target, str(e)) from None
    decision = decide(hc.host_key_policy, verdict)
    pin = record_file(hc)
    if decision.record and pin is not None:
        try:
            pin_host_key(pin, name, offered.type, offered.base64)
        except (OSError, ValueError) as e:
            raise unrecordable(pin, target, e if isinstance(e, OSError) else OSError(str(e))) from None
    if not decision.accept or (decision.record and pin is None):  # a key nobody can pin is not accepted
        raise refusal(target, name, verdict, offered, known_files(hc))
    if decision.disable_password:
        log.info("%s: host key changed (%s %s); StrictHostKeyChecking=no lets it through without password "
                 "authentication", target.label, offered.type, fingerprint(offered))
    return decision


def check_offered_blob(target: Target, hc: HostConfig, known: KnownHosts | None, blob: bytes) -> Decision:
    """:func:`check_host_key` for the key as the server sent it (the SSH wire blob, which every library
    hands over); a blob that is no key is a ``HostKeyError``."""
    if known is None:
        return decide(hc.host_key_policy, None)
    try:
        size = int.from_bytes(blob[:4], "big")
        offered = HostKey.from_parts(blob[4:4 + size].decode("ascii"), base64.b64encode(blob).decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise HostKeyError.at(target, f"the server's host key cannot be read: {e}") from None
    return check_host_key(target, hc, known, offered)
