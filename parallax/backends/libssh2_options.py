"""A target as the libssh2 backend connects to it: the shared resolver's
:class:`~parallax.ssh.hostconfig.HostConfig` plus what libssh2 is told before the handshake.

:class:`Confs` resolves each target once through :mod:`parallax.ssh.config`
(one resolver per ssh config file); ``known_hosts=`` goes after
``ssh_options``, as the other backends put it.  :func:`method_prefs` turns
OpenSSH algorithm lists (``+``/``-``/``^`` forms included) into libssh2's
``method_pref`` strings, dropping names libssh2 lacks instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..ssh.algorithms import assemble
from ..ssh.resolved import Confs as SharedConfs
from ..ssh.resolved import Resolved

__all__ = ["FAST_CIPHERS", "FAST_MACS", "Conf", "Confs", "merge_algorithms", "recorded_host_key_algs"]

#: Signature algorithms of a recorded host key type (one per type, except RSA's).
_KEY_ALGS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}
#: Ciphers offered first when no Ciphers is configured: AES on AES-NI in OpenSSL.  CTR before
#: GCM: libssh2 feeds its GCM to OpenSSL a block at a time, so AES-128-CTR with an SHA-2 MAC
#: costs the client about a fifth less CPU per byte (64 MiB copied: 0.46 vs 0.57 CPU s) and the
#: server the same (``sshd`` 0.40 vs 0.41 s).
FAST_CIPHERS = ("aes128-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
#: MACs offered first when no MACs is configured: encrypt-then-MAC (libssh2 lists the
#: encrypt-and-MAC forms first), as OpenSSH's own defaults order them.
FAST_MACS = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com")


def merge_algorithms(option: str, spec: str | None, supported: Sequence[str],
                     first: Iterable[str] = ()) -> str | None:
    """libssh2's preference string for OpenSSH option *option* set to *spec*, over libssh2's
    *supported* names (in libssh2's order) by the shared :func:`parallax.ssh.algorithms.assemble`;
    ``None``: libssh2's default.  *first*: put ahead when *spec* is unset.  ``AlgorithmError``
    when *spec* leaves nothing libssh2 has."""
    if not spec:
        lead = [a for a in first if a in supported]
        return ",".join(lead + [a for a in supported if a not in lead]) if lead else None
    chosen = assemble(option, spec, supported, supported, "libssh2")
    return ",".join(chosen) if chosen else None


def recorded_host_key_algs(key_types: Iterable[str], supported: Sequence[str]) -> str | None:
    """The host key algorithms to offer for the key types known_hosts records (``None``: libssh2's
    defaults), so a server with several keys shows the recorded one (as OpenSSH orders them)."""
    wanted = [alg for t in key_types for alg in _KEY_ALGS.get(t, (t,)) if alg in supported]
    return ",".join(wanted) if wanted else None


#: One target resolved once: the shared record (libssh2 needs nothing more before connecting).
Conf = Resolved


def Confs() -> SharedConfs[Resolved]:
    """The libssh2 backend's per-target records (:class:`parallax.ssh.resolved.Confs` of :class:`Resolved`)."""
    return SharedConfs(Resolved.of)
