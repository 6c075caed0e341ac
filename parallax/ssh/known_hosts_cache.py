"""known_hosts files as the in-process backends use them: parsed once per change, and pinned under accept-new.

A key accepted under ``accept-new`` is only pinned if it reaches the
known_hosts file; a policy that silently records nothing would accept a
changed key on the next call.  So the file's directory is created (0700)
and the file itself (0600) before anything connects, and a file that cannot
be written is an error naming the path, never a quiet warning.  The openssh
backend uses the same preparation (:func:`prepare_openssh_record_file`):
``ssh`` cannot create a missing directory itself.

Appends go through :func:`parallax.ssh.hostkeys.record_host_key`: a lock
per file inside this process and ``flock`` across processes, one ``write``
per line, and a key already present is not written again (so 200 hosts
accepted at once leave exactly one line per key).
"""

from __future__ import annotations

import os
import shlex
import threading

from ..errors import BadInput
from ..jobs import Target
from .hostconfig import HostConfig
from .hostkeys import HostKey, KnownHosts, load_revoked_keys, record_host_key
from .policy import HostKeyPolicy

__all__ = ["KnownHostsCache", "pin_host_key", "prepare_openssh_record_file", "prepare_record_file",
           "unrecordable"]

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


def pin_host_key(path: str, name: str, keytype: str, blob: str) -> bool:
    """Pin a key accepted under accept-new: create *path* (:func:`prepare_record_file`) and append
    ``name keytype blob`` unless that entry is already there (:func:`parallax.ssh.hostkeys.record_host_key`).

    Returns whether a line was written.  Safe against concurrent callers in
    this process and in others (``flock``).  Raises ``OSError`` when the file
    cannot be written.
    """
    path = prepare_record_file(path)
    try:
        key = HostKey.from_parts(keytype, blob)
    except ValueError as e:
        raise OSError(f"{path}: cannot record a malformed {keytype} key: {e}") from None
    return record_host_key(path, name, key)


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


class KnownHostsCache:
    """Parsed known_hosts files, re-read only when one of them changed (size, mtime), for
    backends that check host keys themselves; thread-safe."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, ...], tuple[tuple[tuple[int, int], ...], KnownHosts]] = {}
        self._lock = threading.Lock()

    def load(self, paths: tuple[str, ...]) -> KnownHosts:
        """The entries of *paths* (missing or unreadable files count as empty)."""
        stamps = []
        for path in paths:
            try:
                st = os.stat(path)
                stamps.append((st.st_size, st.st_mtime_ns))
            except OSError:
                stamps.append((-1, -1))
        stamp = tuple(stamps)
        with self._lock:
            found = self._cache.get(paths)
            if found is None or found[0] != stamp:
                found = self._cache[paths] = (stamp, KnownHosts.load(paths))
            return found[1]

    def for_host(self, target: Target, hc: HostConfig) -> KnownHosts | None:
        """What *hc*'s host keys are judged by: its known_hosts files (user then global, cached as
        :meth:`load`) with its RevokedHostKeys; ``None`` under policy ``off`` (nothing looked up).
        An unreadable RevokedHostKeys file is a ``BadInput`` naming the host."""
        if hc.host_key_policy is HostKeyPolicy.OFF:
            return None
        known = self.load(tuple(p for p in hc.known_hosts_files if p != "/dev/null"))
        if not hc.revoked_host_keys:
            return known
        try:
            return KnownHosts(known.entries, load_revoked_keys(hc.revoked_host_keys))
        except (OSError, ValueError) as e:
            raise BadInput(f"RevokedHostKeys for {target.label} cannot be read: {e}", host=target.key) from None
