"""The grace periods of cancellation and closing: one owner, so the same event gets the
same wait on every backend.

A per-host ``timeout`` or the ``deadline`` must end the call within 0.5 s of its
limit on every backend (issue 9), and whatever a cancelled job does to clean up
is spent inside that half second.  So the waits *inside* a cancellation are
short and the same everywhere; waits for a peer at an orderly close are longer;
remote cleanup that needs a connection of its own (the openssh backend's kill of
a cancelled command) runs in the background, bounded, and is awaited at the
session's close.  ``docs/reliability.md`` lists them for users.
"""

from __future__ import annotations

__all__ = [
    "CANCEL_GRACE",
    "CLEANUP_CONNECT_TIMEOUT",
    "CLEANUP_TIMEOUT",
    "CLEANUP_WAIT",
    "CLOSE_GRACE",
    "MASTER_EXIT_GRACE",
    "TERM_REPEAT",
]

#: Seconds between the TERMs a cancelled command is sent until its end is seen (within
#: :data:`CANCEL_GRACE`): sshd signals a command's process group, which the command's
#: process creates only once it runs after sshd's fork, so a TERM handled in between is
#: lost (``killpg: No such process`` in sshd's log; see :mod:`.terminate`).
TERM_REPEAT = 0.02

#: Seconds a cancelled command or transfer gets, once told to end, before parallax forces
#: the end: the remote command's end confirmed over its channel after TERM (asyncssh,
#: paramiko), a persistent shell's answer after TERM (else the shell is closed), a
#: cancelled SFTP transfer's worker woken by closing its channel (paramiko; else the
#: connection is closed), a local ``ssh``/``scp`` exiting after SIGTERM (else SIGKILL).
#: Short because it is spent inside the caller's time limit: a live peer answers within a
#: round trip and ssh exits at once on TERM; a frozen peer never answers, and then this is
#: what the timeout overshoots by.
CANCEL_GRACE = 0.2

#: Seconds an orderly close waits for its peer before dropping it: an SFTP file or session
#: closing at the end of a transfer, a connection confirming its close (libssh2: its
#: disconnect message sent), a ControlMaster exiting after TERM (else SIGKILL).  Not spent
#: inside a cancelled job's own cleanup (a cancelled transfer does not wait for the
#: server); half a second covers a confirmation over a slow link's round trip.
CLOSE_GRACE = 0.5

#: Seconds the openssh backend's extra connection that ends a cancelled remote command
#: (the OpenSSH client cannot signal it) may take in all; it runs in the background and
#: is awaited at the session's close, so this bounds how long a close can wait for it.
CLEANUP_TIMEOUT = 5.0

#: Seconds (whole: ssh's ``ConnectTimeout``) that connection may take to connect and see
#: the server's banner: a host that accepted the session and then froze must not hold a
#: session's close up for long.
CLEANUP_CONNECT_TIMEOUT = 1

#: Seconds the close of a one-call session (``parallax.call`` and friends) that completed
#: waits for a remote cleanup whose server has not yet sent its banner; after that the
#: cleanup is left to finish on its own (its ``ssh`` is reaped by a thread and ended at
#: :data:`CLEANUP_TIMEOUT`, see :mod:`.detached`), so a timeout's result is not held back
#: by a far, loaded, frozen or gone host.  A cleanup whose server answers is awaited
#: (bounded by :data:`CLEANUP_TIMEOUT`), and so is every cleanup of a call that was itself
#: cancelled (Ctrl-C: the caller asked for everything to be ended).
CLEANUP_WAIT = 0.2

#: Seconds an openssh command multiplexed over a ControlMaster that ended without an exit
#: status waits to see whether the master died with it (then the connection was lost)
#: or lives on (then the command died by a signal).  Not part of a cancellation.
MASTER_EXIT_GRACE = 0.5
