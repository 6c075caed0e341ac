"""Identity files for the in-process backends: loaded once per call, and why one could not be used.

The SSH library parses a key into its own type; this module owns what is the
same on every backend: each file is read (and decrypted) at most once per
backend instance, so per call or Session and not per host; a key that needs
a passphrase nobody gave is recognised before the library is asked; and a
file that cannot be used is *skipped* with a reason in the shared words, as
``ssh`` skips it, so the other methods (agent, password) still get their
turn and the final ``AuthenticationFailed`` says why each file was not offered.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

__all__ = ["KeyCache", "KeyUnusable", "is_encrypted", "permission_denied"]

K = TypeVar("K")


class KeyUnusable(Exception):
    """An identity file that cannot be offered; ``str()`` is the reason in the shared words."""

    @classmethod
    def missing(cls, path: str) -> KeyUnusable:
        return cls(f"identity file {path} not found")

    @classmethod
    def encrypted(cls, path: str) -> KeyUnusable:
        return cls(f"identity file {path} is encrypted and no passphrase was given")

    @classmethod
    def wrong_passphrase(cls, path: str) -> KeyUnusable:
        return cls(f"identity file {path}: wrong passphrase (or not a private key)")

    @classmethod
    def unreadable(cls, path: str, detail: str) -> KeyUnusable:
        return cls(f"identity file {path} could not be loaded: {detail}")


def is_encrypted(path: str) -> bool:
    """Whether private key file *path* needs a passphrase (PEM ``ENCRYPTED`` or an OpenSSH key
    whose cipher is not ``none``); an unreadable file counts as not encrypted (loading it says why)."""
    try:
        with open(path, "rb") as f:
            text = f.read(65536)
    except OSError:
        return False
    if b"ENCRYPTED" in text:
        return True
    begin = b"-----BEGIN OPENSSH PRIVATE KEY-----"
    if begin not in text:
        return False
    body = text.split(begin, 1)[1].split(b"-----END", 1)[0]
    try:
        blob = base64.b64decode(b"".join(body.split()))
    except ValueError:
        return False
    magic = b"openssh-key-v1\0"
    if not blob.startswith(magic) or len(blob) < len(magic) + 4:
        return False
    size = int.from_bytes(blob[len(magic):len(magic) + 4], "big")
    return blob[len(magic) + 4:len(magic) + 4 + size] != b"none"


class KeyCache(Generic[K]):
    """Keys by ``(path, passphrase)``, each loaded at most once, failures included.

    *load(path, passphrase)* is the library's parser: it returns the key or
    raises :class:`KeyUnusable` (built with the constructors above); any
    other exception is reported as :meth:`KeyUnusable.unreadable`.
    """

    def __init__(self, load: Callable[[str, str | None], K]) -> None:
        self._load = load
        self._found: dict[tuple[str, str | None], K | KeyUnusable] = {}
        self._lock = threading.Lock()

    def get(self, path: str, passphrase: str | None) -> K:
        """The key in *path* (unlocked with *passphrase* if it is encrypted), or :class:`KeyUnusable`."""
        path = os.path.expanduser(path)
        with self._lock:
            found = self._found.get((path, passphrase))
            if found is None:
                found = self._found[(path, passphrase)] = self._attempt(path, passphrase)
        if isinstance(found, KeyUnusable):
            raise found
        return found

    def usable(self, paths: Iterable[str], passphrase: str | None, notes: list[str] | None = None) -> list[K]:
        """The keys of *paths* that can be used, in order; why each other one cannot goes to *notes*."""
        out: list[K] = []
        for path in paths:
            try:
                out.append(self.get(path, passphrase))
            except KeyUnusable as e:
                if notes is not None:
                    notes.append(str(e))
        return out

    def _attempt(self, path: str, passphrase: str | None) -> K | KeyUnusable:
        if not os.path.exists(path):
            return KeyUnusable.missing(path)
        encrypted = is_encrypted(path)
        if passphrase is None and encrypted:
            return KeyUnusable.encrypted(path)
        try:  # a passphrase only unlocks: a plain key is loaded without it (a library may refuse one)
            return self._load(path, passphrase if encrypted else None)
        except KeyUnusable as e:
            return e
        except Exception as e:  # the library's own parse errors, OSError, ...
            return KeyUnusable.unreadable(path, str(e) or type(e).__name__)


def permission_denied(user: str, host: str, methods: Sequence[str], notes: Sequence[str]) -> str:
    """The detail of an ``AuthenticationFailed`` on every in-process backend, in ``ssh``'s words
    (``user@host: Permission denied (publickey,password).``) plus why keys were not offered."""
    detail = f"{user}@{host}: Permission denied ({','.join(methods) or 'publickey'})"
    return detail + ("; " + "; ".join(notes) if notes else "")
