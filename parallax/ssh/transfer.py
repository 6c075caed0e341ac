"""The ``scp -r -p`` semantics of copy and slurp, written once.

Every in-process backend copies files through :func:`put` and :func:`get`,
which walk the trees and decide everything scp decides; the backend only
supplies a :class:`RemoteFS`, a handful of remote operations (an adapter over
its SFTP client).  What is decided here, for every backend alike:

* a directory copied onto an existing directory lands inside it (as
  ``dst/<basename>``); a file copied onto a directory too;
* a directory needs ``recursive``; only regular files and directories are
  copied; symlinks on the sending side are followed (as scp does), at most
  :data:`MAX_DEPTH` levels deep;
* modes are masked to ``0o777`` (no setuid, setgid or sticky bit ever crosses,
  as OpenSSH's sftp client does), and with ``preserve`` (what ``scp -p`` and
  parallax's copy/slurp do) applied with the access and modification times;
  without ``preserve`` new files get the mode minus the umask;
* every name a server lists is a single path component: ``/``, NUL and the
  empty name are refused with :class:`~parallax.errors.TransferFailed` naming
  the directory and the entry; ``.`` and ``..``, which every server lists as
  directories, are skipped (as scp and asyncssh skip them), and refused when
  listed as anything else;
* nothing is written outside the local confinement directory (``root``, the
  slurp's ``<localdir>``): every local path is resolved before it is created
  or opened, and a symlink leading outside ``root`` is refused; files are
  opened with ``O_NOFOLLOW`` on the resolved path and their mode and times
  are set through the open descriptor.

A file's contents move in one :meth:`RemoteFS.get_file`/:meth:`RemoteFS.put_file`
call, so an adapter keeps its library's pipelined transfer (no per-chunk hop
between threads).  Failures are ``TransferFailed.at(target, "<path>: <reason>")``.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Protocol

from ..errors import TransferFailed
from ..jobs import Target
from .localdir import (
    MODE_MASK,
    LocalRoot,
    check_local_destination,
    landing_path,
    prepare_slurp,
    slurp_root,
    strip_special_bits,
)
from .localdir import Refused as _Refused
from .localdir import reason_of

#: Directory levels followed at most (symlink loops on either side end here; OpenSSH's limit).
MAX_DEPTH = 64


@dataclass(frozen=True)
class Attrs:
    """What a transfer needs of a file's attributes (``mode`` includes the type bits; 0: unknown)."""

    mode: int = 0
    size: int | None = None
    atime: float | None = None
    mtime: float | None = None

    @property
    def is_dir(self) -> bool:
        """A directory."""
        return stat.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        """A regular file."""
        return stat.S_ISREG(self.mode)

    @property
    def is_link(self) -> bool:
        """A symbolic link (only in a listing: :meth:`RemoteFS.stat` follows links)."""
        return stat.S_ISLNK(self.mode)


@dataclass(frozen=True)
class Entry:
    """One name of a remote directory listing with its (not followed) attributes."""

    name: str
    attrs: Attrs


class Writer(Protocol):
    """Where :meth:`RemoteFS.get_file` writes a file's bytes, in order."""

    def write(self, data: bytes) -> object: ...


class Reader(Protocol):
    """What :meth:`RemoteFS.put_file` reads a file's bytes from, in order (``b""`` at the end)."""

    def read(self, size: int = -1) -> bytes: ...


class RemoteFS(Protocol):
    """The remote operations a transfer needs; what a backend's SFTP adapter implements.

    A failure about one path raises :class:`OSError` (``FileNotFoundError``
    when the path does not exist) whose ``strerror`` says why; anything else
    (a lost connection) may raise what the backend maps itself.
    """

    async def stat(self, path: str) -> Attrs:
        """Attributes of *path*, following symlinks."""

    async def listdir(self, path: str) -> list[Entry]:
        """The entries of directory *path* with their attributes, not following symlinks."""

    async def mkdir(self, path: str) -> None:
        """Create directory *path* (owner-only access until :meth:`chmod`)."""

    async def chmod(self, path: str, mode: int) -> None:
        """Set the permission bits of *path*."""

    async def utime(self, path: str, atime: float, mtime: float) -> None:
        """Set the access and modification times of *path*."""

    async def get_file(self, remote: str, local: Writer, size: int | None) -> None:
        """Write the contents of remote file *remote* into *local*, until the end of the file
        (*size* is the listed size: a hint, never trusted)."""

    async def put_file(self, local: Reader, remote: str, size: int) -> None:
        """Create or truncate remote file *remote* with the contents read from *local*."""


def _refuse(path: str, e: OSError) -> BaseException:
    """A failure about *path*, unless *e* says the connection is gone (raised as it is)."""
    return e if isinstance(e, ConnectionError) else _Refused(path, reason_of(e))


#: Why a listing fails whose names do not decode (both SFTP libraries decode names as UTF-8).
NOT_UTF8 = "the server listed a file name that is not UTF-8"


def sftp_path(path: str) -> str:
    """A caller's remote path as SFTP takes it: SFTP paths are relative to the login directory,
    so ``~`` is ``.`` and ``~/x`` (also ``~//x``, as OpenSSH reads it) is ``x``."""
    if path == "~":
        return "."
    if path.startswith("~/"):
        return path[2:].lstrip("/") or "."
    return path


def bad_name(name: str) -> str | None:
    """Why *name* (from a server's listing) is not a single path component, or ``None``."""
    if not name:
        return "an empty file name"
    if "\x00" in name:
        return f"a file name with a NUL character ({name!r})"
    if "/" in name:
        return f"a file name with a slash ({name!r})"
    if name in (".", ".."):
        return f"the file name {name!r}"
    return None


def _umask() -> int:
    """The process umask, read without changing it (``/proc``), else a common default."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _mode(attrs: Attrs, preserve: bool) -> int:
    mode = attrs.mode & MODE_MASK
    return mode if preserve else mode & ~_umask()


def _times(attrs: Attrs) -> tuple[float, float] | None:
    if attrs.mtime is None:
        return None
    return (attrs.atime if attrs.atime is not None else attrs.mtime, attrs.mtime)


# --------------------------------------------------------------------------
# the local file being written (paths are checked by parallax.ssh.localdir)


class _LocalWriter:
    """A file descriptor as a :class:`Writer` whose failures name the local path."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd, self.path = fd, path

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as e:
            raise OSError(e.errno, e.strerror, self.path) from None
        return len(data)


def _set_local_attrs(fd: int, attrs: Attrs, preserve: bool) -> None:
    os.fchmod(fd, _mode(attrs, preserve))
    times = _times(attrs)
    if preserve and times is not None:
        os.utime(fd, times)


# --------------------------------------------------------------------------
# remote -> local


async def get(fs: RemoteFS, src: str, dst: str, *, target: Target, root: str | None = None,
              recursive: bool = False, preserve: bool = True, label: str | None = None) -> None:
    """Copy remote *src* to local *dst* as ``scp [-r] -p`` does, writing only inside *root*.

    *root* defaults to the directory holding *dst*; *label* is how *src* is
    named in errors (the caller's spelling, e.g. ``~/x``).
    """
    label = label or src
    local = LocalRoot(root if root is not None else os.path.dirname(os.path.abspath(dst)))
    try:
        try:
            attrs = await fs.stat(src)
        except OSError as e:
            raise _refuse(label, e) from None
        dst = landing_path(src, dst)
        if attrs.is_dir:
            if not recursive:
                raise _Refused(label, "is a directory (set recursive)")
            await _get_tree(fs, src, dst, local.resolve(dst), attrs, local, preserve, 0)
        else:
            await _get_file(fs, src, dst, local.resolve(dst), attrs, local, preserve)
    except _Refused as e:
        raise TransferFailed.at(target, str(e)) from None


async def _get_file(fs: RemoteFS, src: str, dst: str, real: str, attrs: Attrs, local: LocalRoot,
                    preserve: bool) -> None:
    """Remote file *src* to local *dst*, opened at *real* (its resolved, checked path)."""
    if not attrs.is_file:
        raise _Refused(src, "not a regular file")
    try:
        fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise _refuse(dst, e) from None
    try:
        try:
            await fs.get_file(src, _LocalWriter(fd, dst), attrs.size)
        except OSError as e:
            raise _refuse(dst if e.filename == dst else src, e) from None
        try:
            _set_local_attrs(fd, attrs, preserve)
        except OSError as e:
            raise _refuse(dst, e) from None
    finally:
        os.close(fd)


async def _get_tree(fs: RemoteFS, src: str, dst: str, real: str, attrs: Attrs, local: LocalRoot,
                    preserve: bool, depth: int) -> None:
    """Remote directory *src* to local *dst* (made at *real*, its resolved, checked path)."""
    if depth >= MAX_DEPTH:
        raise _Refused(src, f"more than {MAX_DEPTH} directory levels")
    try:
        os.mkdir(real, 0o700)
    except FileExistsError:
        if not os.path.isdir(real):
            raise _Refused(dst, "Not a directory") from None
    except OSError as e:
        raise _refuse(dst, e) from None
    try:
        entries = sorted(await fs.listdir(src), key=lambda e: e.name)
    except OSError as e:
        raise _refuse(src, e) from None
    for entry in entries:
        if entry.name in (".", "..") and entry.attrs.is_dir:
            continue  # every server lists them; never followed (as scp and asyncssh skip them)
        why = bad_name(entry.name)
        if why is not None:
            raise _Refused(src, f"the server listed {why}")
        path = posixpath.join(src, entry.name)
        child = entry.attrs
        if child.is_link or not child.mode:
            try:
                child = await fs.stat(path)
            except OSError as e:
                raise _refuse(path, e) from None
        target = os.path.join(dst, entry.name)
        real_target = local.child(real, entry.name, target)
        if child.is_dir:
            await _get_tree(fs, path, target, real_target, child, local, preserve, depth + 1)
        else:
            await _get_file(fs, path, target, real_target, child, local, preserve)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise _refuse(dst, e) from None
    try:
        _set_local_attrs(fd, attrs, preserve)
    except OSError as e:
        raise _refuse(dst, e) from None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# local -> remote


async def _rstat(fs: RemoteFS, path: str) -> Attrs | None:
    try:
        return await fs.stat(path)
    except FileNotFoundError:
        return None


async def put(fs: RemoteFS, src: str, dst: str, *, target: Target, recursive: bool = False,
              preserve: bool = True) -> None:
    """Copy local *src* to remote *dst* as ``scp [-r] -p`` does."""
    try:
        try:
            st = os.stat(src)
        except OSError as e:
            raise _refuse(src, e) from None
        try:
            existing = await _rstat(fs, dst)
        except OSError as e:
            raise _refuse(dst, e) from None
        if stat.S_ISDIR(st.st_mode):
            if not recursive:
                raise _Refused(src, "is a directory (set recursive)")
            if existing is not None and existing.is_dir:
                dst = posixpath.join(dst, os.path.basename(os.path.normpath(src)))
            elif existing is not None:
                raise _Refused(dst, "Not a directory")
            await _put_tree(fs, src, dst, st, preserve, 0)
        else:
            if existing is not None and existing.is_dir:
                dst = posixpath.join(dst, os.path.basename(src))
            await _put_file(fs, src, dst, st, preserve)
    except _Refused as e:
        raise TransferFailed.at(target, str(e)) from None


def _local_attrs(st: os.stat_result) -> Attrs:
    return Attrs(st.st_mode, st.st_size, st.st_atime, st.st_mtime)


async def _put_attrs(fs: RemoteFS, dst: str, st: os.stat_result, preserve: bool) -> None:
    attrs = _local_attrs(st)
    try:
        await fs.chmod(dst, _mode(attrs, preserve))
        times = _times(attrs)
        if preserve and times is not None:
            await fs.utime(dst, *times)
    except OSError as e:
        raise _refuse(dst, e) from None


async def _put_file(fs: RemoteFS, src: str, dst: str, st: os.stat_result, preserve: bool) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise _Refused(src, "not a regular file")
    try:
        f = open(src, "rb")  # closed below, after the remote side is done
    except OSError as e:
        raise _refuse(src, e) from None
    try:
        await fs.put_file(f, dst, st.st_size)
    except OSError as e:
        raise _refuse(src if e.filename == src else dst, e) from None
    finally:
        f.close()
    await _put_attrs(fs, dst, st, preserve)


async def _put_tree(fs: RemoteFS, src: str, dst: str, st: os.stat_result, preserve: bool, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise _Refused(src, f"more than {MAX_DEPTH} directory levels")
    try:
        await fs.mkdir(dst)
    except OSError as e:
        existing = await _rstat(fs, dst)
        if existing is None or not existing.is_dir:
            raise _refuse(dst, e) from None
    try:
        with os.scandir(src) as it:
            entries = sorted(it, key=lambda d: d.name)
    except OSError as e:
        raise _refuse(src, e) from None
    for entry in entries:
        try:
            est = os.stat(entry.path)
        except OSError as e:
            raise _refuse(entry.path, e) from None
        remote = posixpath.join(dst, entry.name)
        if stat.S_ISDIR(est.st_mode):
            await _put_tree(fs, entry.path, remote, est, preserve, depth + 1)
        else:
            await _put_file(fs, entry.path, remote, est, preserve)
    await _put_attrs(fs, dst, st, preserve)


__all__ = [
    "MAX_DEPTH",
    "MODE_MASK",
    "NOT_UTF8",
    "Attrs",
    "Entry",
    "LocalRoot",
    "Reader",
    "RemoteFS",
    "Writer",
    "bad_name",
    "check_local_destination",
    "get",
    "landing_path",
    "prepare_slurp",
    "put",
    "sftp_path",
    "slurp_root",
    "strip_special_bits",
]
