"""The :class:`parallax.ssh.transfer.RemoteFS` adapter over an asyncssh ``SFTPClient``.

The ``scp -r -p`` rules (what lands where, modes, times, confinement) are
:mod:`parallax.ssh.transfer`; this module only turns asyncssh's SFTP calls
into that interface: attributes into :class:`~parallax.ssh.transfer.Attrs`,
a failure about one path into an ``OSError`` with its errno, and a file's
contents moved with pipelined reads (writes), as asyncssh's own copy does.
A lost session is raised as asyncssh raised it; the backend's translator
(:mod:`parallax.backends.asyncssh_errors`) names it for the target.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import stat
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar, cast

import asyncssh

from ..ssh import transfer
from ..timeouts import within
from .grace import CLOSE_GRACE

__all__ = ["SFTPFS", "close_sftp"]

T = TypeVar("T")

# SFTP failures that mean the session is gone (the rest are about one path)
_SFTP_LOST = (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection)
_SFTP_ERRNO = ((asyncssh.SFTPNoSuchFile, errno.ENOENT), (asyncssh.SFTPNoSuchPath, errno.ENOENT),
               (asyncssh.SFTPPermissionDenied, errno.EACCES), (asyncssh.SFTPNotADirectory, errno.ENOTDIR),
               (asyncssh.SFTPNoSpaceOnFilesystem, errno.ENOSPC))
_SFTP_TYPES = {asyncssh.FILEXFER_TYPE_REGULAR: stat.S_IFREG, asyncssh.FILEXFER_TYPE_DIRECTORY: stat.S_IFDIR,
               asyncssh.FILEXFER_TYPE_SYMLINK: stat.S_IFLNK}


def _os_error(e: asyncssh.SFTPError) -> OSError:
    """A failure about one path, as the transfer walk takes it."""
    code = next((n for cls, n in _SFTP_ERRNO if isinstance(e, cls)), errno.EIO)
    return OSError(code, e.reason or type(e).__name__)


def _attrs(a: asyncssh.SFTPAttrs) -> transfer.Attrs:
    mode = a.permissions or 0
    if not stat.S_IFMT(mode):
        mode |= _SFTP_TYPES.get(a.type, 0)
    return transfer.Attrs(mode, a.size, a.atime, a.mtime)


class SFTPFS:
    """:class:`parallax.ssh.transfer.RemoteFS` over an asyncssh ``SFTPClient``.

    A file moves with up to as many reads (writes) in flight as asyncssh's own
    copy uses, read until the end of the file whatever size the server listed;
    every request task is awaited or cancelled before a call returns, so a
    dropped connection leaves no task with an unretrieved exception.  A cancelled
    transfer does not wait for its file to close (a frozen server never confirms,
    and the timeout must end on time): the server drops the handle with the session.
    """

    def __init__(self, sftp: asyncssh.SFTPClient) -> None:
        self._sftp = sftp

    @staticmethod
    async def _call(aw: Awaitable[T]) -> T:
        try:
            return await aw
        except _SFTP_LOST:
            raise
        except asyncssh.SFTPError as e:
            raise _os_error(e) from None

    async def stat(self, path: str) -> transfer.Attrs:
        """Attributes of *path*, following symlinks."""
        return _attrs(await self._call(self._sftp.stat(path)))

    async def listdir(self, path: str) -> list[transfer.Entry]:
        """The entries of directory *path*, not following symlinks."""
        try:
            names = await self._sftp.readdir(path)
        except _SFTP_LOST:
            raise
        except asyncssh.SFTPError as e:
            if isinstance(e, asyncssh.SFTPBadMessage) and "decode" in (e.reason or ""):
                raise OSError(errno.EILSEQ, transfer.NOT_UTF8) from None  # as the paramiko adapter says
            raise _os_error(e) from None
        return [transfer.Entry(n.filename if isinstance(n.filename, str) else
                               n.filename.decode("utf-8", "surrogateescape"), _attrs(n.attrs)) for n in names]

    async def mkdir(self, path: str) -> None:
        """Create directory *path*, owner-only until chmod."""
        await self._call(self._sftp.mkdir(path, asyncssh.SFTPAttrs(permissions=0o700)))

    async def chmod(self, path: str, mode: int) -> None:
        """Set the permission bits of *path*."""
        await self._call(self._sftp.chmod(path, mode))

    async def utime(self, path: str, atime: float, mtime: float) -> None:
        """Set the access and modification times of *path*."""
        await self._call(self._sftp.utime(path, (atime, mtime)))

    async def get_file(self, remote: str, local: transfer.Writer, size: int | None) -> None:
        """Remote file *remote* into *local*, until its end (*size* is only a hint)."""
        # block_size=0: one SFTP request per read call (as asyncssh's own copy opens files)
        f = await self._call(self._sftp.open(remote, "rb", block_size=0))
        try:
            await self._call(_read_all(f, local, size or 0, self._sftp.limits.max_read_len or 16384))
        except asyncio.CancelledError:
            raise
        except BaseException:
            await _close_file(f)
            raise
        await _close_file(f)

    async def put_file(self, local: transfer.Reader, remote: str, size: int) -> None:
        """Create or truncate remote file *remote* with what *local* holds."""
        f = await self._call(self._sftp.open(remote, "wb", block_size=0))
        try:
            await self._call(_write_all(f, local, self._sftp.limits.max_write_len or 16384))
        except asyncio.CancelledError:
            raise
        except BaseException:
            await _close_file(f)
            raise
        await self._call(f.close())


def _depth(block: int) -> int:
    """Requests in flight per file: what asyncssh's own copy uses."""
    return max(16, min(4 * 1024 * 1024 // block, 128))


async def _read_all(f: asyncssh.SFTPClientFile, out: transfer.Writer, hint: int, block: int) -> None:
    """Copy *f* into *out* until its end.  Reads sized to *hint* (the listed size) are in flight
    together with one just past it, which finds the end in the same round trip; beyond the hint
    (a file that grew, or a server that lied) more reads follow while data keeps coming."""
    pending: collections.deque[tuple[int, int, asyncio.Future[bytes]]] = collections.deque()
    offset = 0
    try:
        while True:
            while (len(pending) < _depth(block) and (offset <= hint or not pending)
                   and not _failed(task for _, _, task in pending)):
                size = min(block, hint - offset) if offset < hint else block
                pending.append((offset, size, asyncio.ensure_future(f.read(size, offset))))
                offset += size
                await asyncio.sleep(0)  # let it send: on a dead connection the next one then fails fast
            if not pending:
                return
            start, size, task = pending.popleft()
            data = await task
            if not data:
                return  # the end (every read still pending is past it)
            out.write(data)
            pos = start + len(data)
            if pos > hint:
                hint = 2 * pos
            while pos < start + size:  # a short read: the rest of this range, in order
                more = cast(bytes, await f.read(start + size - pos, pos))  # opened binary
                if not more:
                    return
                out.write(more)
                pos += len(more)
    finally:
        await _abandon(task for _, _, task in pending)


async def _write_all(f: asyncssh.SFTPClientFile, src: transfer.Reader, block: int) -> None:
    pending: collections.deque[asyncio.Future[int]] = collections.deque()
    offset = 0
    try:
        while True:
            data = src.read(block)
            if not data:
                break
            pending.append(asyncio.ensure_future(f.write(data, offset)))
            offset += len(data)
            await asyncio.sleep(0)  # as in _read_all
            if len(pending) >= _depth(block) or _failed(pending):
                await pending.popleft()
        while pending:
            await pending.popleft()
    finally:
        await _abandon(pending)


def _failed(tasks: Iterable[asyncio.Future[Any]]) -> bool:
    """Whether a request already failed: then no new one is sent (on a dead connection each
    would be one more write asyncio complains about)."""
    return any(t.done() and not t.cancelled() and t.exception() is not None for t in tasks)


async def _abandon(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel and await request tasks no longer wanted (their failures are expected)."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def _close_file(f: asyncssh.SFTPClientFile) -> None:
    try:
        await within(f.close(), CLOSE_GRACE)
    except (asyncio.TimeoutError, asyncssh.Error, OSError):
        pass  # the transfer's own failure is what the caller sees


async def close_sftp(sftp: asyncssh.SFTPClient, grace: float = CLOSE_GRACE) -> None:
    """End an SFTP session, waiting for its channel to close at most *grace* seconds
    (:data:`~parallax.backends.grace.CANCEL_GRACE` after a cancel)."""
    sftp.exit()
    try:
        await within(sftp.wait_closed(), grace)
    except (asyncio.TimeoutError, Exception):
        pass
