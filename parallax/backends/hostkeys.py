"""Recording host keys under ``accept-new``: one place for every backend.

A key accepted under ``accept-new`` is only pinned if it reaches the
known_hosts file; a policy that silently records nothing would accept a
changed key on the next call.  So the file's directory is created (0700)
and the file itself (0600) before anything connects, and a file that cannot
be written is an error naming the path, never a quiet warning.

Appends are serialised by a lock inside this process and ``flock`` across
processes, each line is written with a single ``write`` on an ``O_APPEND``
descriptor, and a line already present is not written again (so 200 hosts
accepted at once leave exactly one line per key).
"""

from __future__ import annotations

import fcntl
import os
import shlex
import threading

from ..errors import BadInput
from ..jobs import Target

_LOCK = threading.Lock()
_PREPARED: set[str] = set()


def prepare_record_file(path: str) -> str:
    """Make sure *path* can receive new host keys; returns the expanded path.

    Creates missing parent directories with mode 0700 and a missing file with
    mode 0600.  Raises ``OSError`` (with the path in its text) when the file
    cannot be created or written.
    """
    path = os.path.expanduser(path)
    if path in _PREPARED and os.path.exists(path):
        return path
    _make_dirs(os.path.dirname(path))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)
    _PREPARED.add(path)
    return path


def _make_dirs(directory: str) -> None:
    """``mkdir -p`` where every directory created gets mode 0700 (not only the last)."""
    if not directory or os.path.isdir(directory):
        return
    _make_dirs(os.path.dirname(directory))
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        if not os.path.isdir(directory):
            raise


def _lines(data: bytes) -> set[bytes]:
    """The known_hosts entries of *data* as ``b"name type blob"`` (comments and options kept out)."""
    found = set()
    for raw in data.splitlines():
        fields = raw.split()
        if len(fields) >= 3 and not raw.lstrip().startswith(b"#"):
            found.add(b" ".join(fields[:3]))
    return found


def record_host_key(path: str, name: str, keytype: str, blob: str) -> bool:
    """Append ``name keytype blob`` to *path* unless that entry is already there.

    Returns whether a line was written.  Safe against concurrent callers in
    this process (a lock) and in others (``flock`` on the file).  Raises
    ``OSError`` when the file cannot be written.
    """
    path = prepare_record_file(path)
    entry = f"{name} {keytype} {blob}".encode()
    with _LOCK:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
            data = b"".join(chunks)
            if entry in _lines(data):
                return False
            line = entry + b"\n"
            if data and not data.endswith(b"\n"):
                line = b"\n" + line
            os.write(fd, line)
            return True
        finally:
            os.close(fd)  # releases the flock


def unrecordable(path: str, target: Target, e: OSError) -> BadInput:
    """The error for a known_hosts file that cannot take new keys under accept-new."""
    return BadInput(f"known_hosts {path!r}: cannot record host keys there (host_key_policy accept-new): "
                    f"{e.strerror or e}", host=target.key)


def prepare_openssh_record_file(target: Target) -> None:
    """Under accept-new, create the known_hosts file ``ssh`` will record keys in.

    ``ssh`` cannot create a missing directory for ``UserKnownHostsFile``: it
    warns, records nothing and would accept a changed key on the next call.
    Raises :class:`BadInput` when the file cannot be made writable.
    """
    policy = (target.option("StrictHostKeyChecking") or target.host_key_policy or "").lower()
    if policy not in ("accept-new", "no", ""):
        return
    files = target.option("UserKnownHostsFile")
    path = shlex.split(files)[0] if files and files.strip() else target.known_hosts
    if not path or path == "/dev/null" or path.lower() == "none":
        return  # ssh's own default, ~/.ssh/known_hosts: ssh creates ~/.ssh itself
    try:
        prepare_record_file(path)
    except OSError as e:
        if policy:  # accept-new asked for here: a key it cannot pin must not be accepted
            raise unrecordable(path, target, e) from None
        # the policy comes from the ssh config (maybe accept-new): prepared as far as possible


__all__ = ["prepare_record_file", "record_host_key", "prepare_openssh_record_file", "unrecordable"]
