"""known_hosts lookup and accept-new recording over key blobs, as OpenSSH's ``hostfile.c``.

Keys are ``(type, base64 blob)`` strings (``HostKey.from_openssh("ssh-ed25519
AAAA...")``); no SSH library is imported.  Lookup understands plain names,
``[host]:port``, comma lists, ``*``/``?`` patterns with ``!`` negation,
hashed ``|1|salt|hmac`` entries and several files (user then global).
``@revoked`` keys (and those of a ``RevokedHostKeys`` text file) are their
own verdict (:attr:`HostKeyStatus.REVOKED`), refused by every checking policy.
The recorder, :func:`record_host_key`, is safe with hundreds of accept-new
hosts at once.  ``@cert-authority`` lines are read, and ignored for
plain keys as OpenSSH does; looking up a *certificate* host key raises
:class:`HostCertificateUnsupported` (parallax does not verify host
certificates).  The policy table is in :mod:`parallax.ssh.policy`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .patterns import match_hostname
from .policy import POLICY_RULES, STRICT_HOST_KEY_CHECKING, HostKeyPolicy, PolicyRules, policy_for

__all__ = [
    "POLICY_RULES",
    "STRICT_HOST_KEY_CHECKING",
    "Decision",
    "HostCertificateUnsupported",
    "HostKey",
    "HostKeyPolicy",
    "HostKeyStatus",
    "KnownHostEntry",
    "KnownHosts",
    "PolicyRules",
    "Verdict",
    "decide",
    "hash_name",
    "parse_known_hosts",
    "policy_for",
    "record_host_key",
]

_KEY_TYPE = re.compile(r"^[A-Za-z0-9@._+-]+$")


class HostCertificateUnsupported(ValueError):
    """The server offered a host certificate; parallax checks plain host keys only."""


@dataclass(frozen=True)
class HostKey:
    """A public host key: its type name and its blob."""

    type: str
    blob: bytes

    @classmethod
    def from_openssh(cls, text: str) -> HostKey:
        """Parse ``"TYPE BASE64 [comment]"``; ``ValueError`` if malformed or inconsistent."""
        words = text.split()
        if len(words) < 2:
            raise ValueError(f"host key {text[:40]!r}: expected 'TYPE BASE64'")
        return cls.from_parts(words[0], words[1])

    @classmethod
    def from_parts(cls, key_type: str, key_b64: str) -> HostKey:
        """From a type name and base64 blob; the blob must carry the same type name."""
        if not _KEY_TYPE.match(key_type):
            raise ValueError(f"host key type {key_type!r} is not a key type name")
        try:
            blob = base64.b64decode(key_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"host key of type {key_type}: invalid base64") from None
        if len(blob) < 4 or blob[4:4 + int.from_bytes(blob[:4], "big")] != key_type.encode():
            raise ValueError(f"host key blob does not hold a {key_type} key")
        return cls(key_type, blob)

    @property
    def base64(self) -> str:
        """The blob as known_hosts writes it."""
        return base64.b64encode(self.blob).decode()

    @property
    def is_certificate(self) -> bool:
        """Whether this is an OpenSSH certificate rather than a plain key."""
        return self.type.endswith("-cert-v01@openssh.com")

    def __str__(self) -> str:
        return f"{self.type} {self.base64}"


@dataclass(frozen=True)
class KnownHostEntry:
    """One valid known_hosts line."""

    names: str  # the pattern list, or the |1|salt|hash field
    key: HostKey
    marker: str | None  # None, "revoked" or "cert-authority"
    file: str
    line: int

    def matches(self, name: str) -> bool:
        """Whether this line is about *name* (``host`` or ``[host]:port``)."""
        if self.names.startswith("|"):
            parts = self.names.split("|")
            if len(parts) != 4 or parts[1] != "1":
                return False
            try:
                salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)
        return match_hostname(name, self.names) == 1


def hash_name(name: str, salt: bytes | None = None) -> str:
    """The ``|1|salt|hmac`` form of *name* (what ``HashKnownHosts yes`` writes)."""
    salt = os.urandom(20) if salt is None else salt
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def parse_known_hosts(text: str, path: str) -> tuple[KnownHostEntry, ...]:
    """The valid entries of a known_hosts file; invalid lines are skipped, as OpenSSH does."""
    out: list[KnownHostEntry] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        marker = None
        if words[0].startswith("@"):
            if words[0] not in ("@revoked", "@cert-authority"):
                continue
            marker = words[0][1:]
            words = words[1:]
        if len(words) < 3:
            continue
        try:
            key = HostKey.from_parts(words[1], words[2])
        except ValueError:
            continue  # includes SSH1 "bits e n" lines
        out.append(KnownHostEntry(words[0], key, marker, path, number))
    return tuple(out)


class HostKeyStatus(enum.Enum):
    """What the known_hosts files say about a name and key."""

    KNOWN = "known"
    UNKNOWN = "unknown"  # no plain key recorded for the name
    CHANGED = "changed"  # other keys (of any type, as OpenSSH) are recorded for the name, not this one
    REVOKED = "revoked"


@dataclass(frozen=True)
class Verdict:
    """A lookup result: the status and the entry that decided it (for messages: file and line)."""

    status: HostKeyStatus
    entry: KnownHostEntry | None = None


@dataclass(frozen=True)
class Decision:
    """What a policy makes of a verdict."""

    accept: bool
    record: bool  # append the key to the first user known_hosts file
    disable_password: bool  # OpenSSH's restriction after accepting a changed key


def decide(policy: HostKeyPolicy, verdict: Verdict | None) -> Decision:
    """Apply the policy table to *verdict* (None: not looked up, for ``off``)."""
    rules = POLICY_RULES[policy]
    if not rules.check or verdict is None:
        return Decision(True, False, False)
    status = verdict.status
    if status is HostKeyStatus.KNOWN:
        return Decision(True, False, False)
    if status is HostKeyStatus.UNKNOWN:
        return Decision(rules.accept_unknown, rules.record_unknown and rules.accept_unknown, False)
    if status is HostKeyStatus.CHANGED:
        return Decision(rules.accept_changed, False, rules.accept_changed and rules.changed_disables_password)
    return Decision(False, False, False)


def load_revoked_keys(path: str) -> frozenset[HostKey]:
    """The keys of a ``RevokedHostKeys`` text file (one public key per line).

    A missing or unreadable file is an ``OSError`` (OpenSSH then refuses the
    connection); a binary KRL is a ``ValueError``: parallax reads only the
    text form.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"SSHKRL\n"):
        raise ValueError(f"RevokedHostKeys {path}: a binary KRL is not supported; list the public keys as text")
    keys = set()
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                keys.add(HostKey.from_openssh(line))
            except ValueError:
                continue
    return frozenset(keys)


_PATTERN_CHARS = frozenset("*?!")


class KnownHosts:
    """The entries of several known_hosts files (missing files are empty), in lookup order."""

    def __init__(self, entries: Iterable[KnownHostEntry], revoked: frozenset[HostKey] = frozenset()) -> None:
        self.entries = tuple(entries)
        self.revoked = revoked
        # Plain names are a dict lookup; only hashed and pattern lines are scanned (a fleet's
        # 100,000-line file would otherwise cost ~0.25 s per lookup).
        self._by_name: dict[str, list[int]] = {}
        self._scan: list[int] = []
        for i, e in enumerate(self.entries):
            if e.names.startswith("|") or _PATTERN_CHARS.intersection(e.names):
                self._scan.append(i)
            else:
                for n in dict.fromkeys(e.names.lower().split(",")):
                    self._by_name.setdefault(n, []).append(i)

    @classmethod
    def load(cls, paths: Sequence[str], revoked_file: str | None = None) -> KnownHosts:
        """Read *paths* (a missing or unreadable file counts as empty) and the optional RevokedHostKeys file."""
        entries: list[KnownHostEntry] = []
        for path in paths:
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:  # missing or unreadable counts as empty, as ssh does
                continue
            entries.extend(parse_known_hosts(text, path))
        return cls(entries, load_revoked_keys(revoked_file) if revoked_file else frozenset())

    def find(self, name: str) -> tuple[KnownHostEntry, ...]:
        """Every entry about *name*, markers included (what ``ssh-keygen -F`` lists)."""
        plain = self._by_name.get(name.lower(), [])
        scanned = [i for i in self._scan if self.entries[i].matches(name)]
        return tuple(self.entries[i] for i in sorted(plain + scanned))

    def known_types(self, name: str) -> tuple[str, ...]:
        """Key types recorded for *name*, in file order: offer these host key algorithms first.

        OpenSSH does (``order_hostkeyalgs``), so that a server with several
        host keys presents the recorded one instead of looking "changed".
        """
        return tuple(dict.fromkeys(e.key.type for e in self.find(name) if e.marker is None))

    def check(self, name: str, key: HostKey) -> Verdict:
        """The status of *key* for *name*: revoked first, then known, changed, unknown."""
        if key.is_certificate:
            raise HostCertificateUnsupported(
                f"{name} offered a host certificate ({key.type}); parallax checks plain host keys only "
                "(@cert-authority is not supported): use the openssh backend or HostKeyAlgorithms without certs")
        if key in self.revoked:
            return Verdict(HostKeyStatus.REVOKED)
        found = self.find(name)
        for e in found:
            if e.marker == "revoked" and e.key == key:
                return Verdict(HostKeyStatus.REVOKED, e)
        other = None
        for e in found:  # as hostfile.c: any other plain key for the name, of any type, means "changed"
            if e.marker is None:
                if e.key == key:
                    return Verdict(HostKeyStatus.KNOWN, e)
                other = other or e
        if other is not None:
            return Verdict(HostKeyStatus.CHANGED, other)
        return Verdict(HostKeyStatus.UNKNOWN)


_LOCKS_GUARD = threading.Lock()
_LOCKS: dict[str, threading.Lock] = {}
_SEEN: dict[str, tuple[tuple[int, int, int], list[KnownHostEntry], int]] = {}  # path -> (stat, entries, lines)


def _path_lock(path: str) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(path)
        if lock is None:
            lock = _LOCKS[path] = threading.Lock()
        return lock


def record_host_key(path: str, name: str, key: HostKey, *, hash_names: bool = False) -> bool:
    """Append ``name key`` to the known_hosts file *path* unless it already holds it; True if written.

    Safe with many threads at once (one lock per path) and with other
    processes (``flock``); each key is one ``write`` of one whole line, so
    no line is ever interleaved or duplicated.  A new file is created 0600
    and a missing parent directory 0700.  *hash_names* writes the hashed
    form, as ``HashKnownHosts yes``.  Raises ``ValueError`` for a name that
    could not be written safely, ``OSError`` if the file cannot be written.
    """
    if not name or any(c.isspace() for c in name) or name[0] in "#@|" or "," in name:
        raise ValueError(f"host key name {name!r} cannot be recorded in known_hosts")
    if key.is_certificate:
        raise HostCertificateUnsupported(f"{name}: a host certificate is not recorded in known_hosts")
    path = os.path.abspath(path)
    with _path_lock(path):
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(os.path.dirname(parent) or "/", exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(parent, 0o700)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
            entries, lines = _current_entries(fd, path)
            if any(e.marker is None and e.key == key and e.matches(name) for e in entries):
                return False
            st = os.fstat(fd)
            prefix = ""
            if st.st_size > 0 and os.pread(fd, 1, st.st_size - 1) != b"\n":
                prefix = "\n"
            field = hash_name(name) if hash_names else name
            data = f"{prefix}{field} {key}\n".encode()
            if os.write(fd, data) != len(data):
                raise OSError(f"short write to {path}")
            entries.append(KnownHostEntry(field, key, None, path, lines + 1))
            st = os.fstat(fd)
            _SEEN[path] = ((st.st_ino, st.st_size, st.st_mtime_ns), entries, lines + 1)
            return True
        finally:
            os.close(fd)  # releases the flock


def _current_entries(fd: int, path: str) -> tuple[list[KnownHostEntry], int]:
    st = os.fstat(fd)
    sig = (st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _SEEN.get(path)
    if cached is not None and cached[0] == sig:
        return cached[1], cached[2]
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, 1 << 16, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    text = b"".join(chunks).decode("utf-8", "replace")
    entries = list(parse_known_hosts(text, path))
    lines = len(text.splitlines())
    _SEEN[path] = (sig, entries, lines)
    return entries, lines

