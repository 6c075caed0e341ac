"""The :class:`parallax.ssh.transfer.RemoteFS` adapter over libssh2's SFTP (``ssh2.sftp``), non-blocking.

The ``scp -r -p`` rules are :mod:`parallax.ssh.transfer`; this module only
turns libssh2's SFTP calls (each run through :meth:`.libssh2_io.Wire.call`)
into that interface: attributes into :class:`~parallax.ssh.transfer.Attrs`,
an SFTP status about one path into an ``OSError`` with its errno.  A file's
contents move in large ``read``/``write`` calls, which libssh2 splits into
many SFTP requests in flight itself (its own pipelining, in C).

Nothing here blocks the event loop.  ssh2-python ends an SFTP session only
when the object is freed; in non-blocking mode libssh2 then sends the
channel's EOF and CLOSE at once (the server ends its sftp-server and the
session's channel) and leaves its small record of the channel until the
connection ends, which is the price of never waiting for the server's
confirmation on the loop.  A file handle's close is waited for at most
``CLOSE_GRACE`` after a transfer, ``CANCEL_GRACE`` after a failure or
cancellation (a frozen server never answers, and a timeout must end on
time); ssh2-python marks the handle closed as soon as its close is started,
so the request is sent either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import stat
from collections.abc import AsyncIterator
from typing import Any

from ssh2 import exceptions as x
from ssh2.sftp import (
    LIBSSH2_FXF_CREAT,
    LIBSSH2_FXF_READ,
    LIBSSH2_FXF_TRUNC,
    LIBSSH2_FXF_WRITE,
    LIBSSH2_SFTP_ATTR_ACMODTIME,
    LIBSSH2_SFTP_ATTR_PERMISSIONS,
    SFTP,
)
from ssh2.sftp_handle import SFTPAttributes

from ..ssh import transfer
from ..timeouts import within
from .grace import CANCEL_GRACE, CLOSE_GRACE
from .libssh2_io import EAGAIN, Wire

__all__ = ["BLOCK", "SFTPFS"]

#: Bytes per read/write call: libssh2 keeps up to this much in flight as ~30 KB requests.
BLOCK = 1024 * 1024

#: SFTP status codes (draft-ietf-secsh-filexfer-02) -> errno.
_STATUS_ERRNO = {2: errno.ENOENT, 3: errno.EACCES, 4: errno.EIO, 10: errno.ENOENT, 12: errno.EROFS,
                 14: errno.ENOSPC, 15: errno.EDQUOT, 11: errno.EEXIST, 19: errno.ENOTDIR, 24: errno.EISDIR}
_STATUS_TEXT = {2: "No such file", 3: "Permission denied", 4: "Failure", 10: "No such file",
                11: "File already exists", 12: "Read-only file system", 14: "No space left on device",
                19: "Not a directory", 24: "Is a directory"}
#: SFTP status codes that mean the session, not the path, is gone.
_LOST = {6, 7}  # NO_CONNECTION, CONNECTION_LOST


#: Passed again, in place of the bytes libssh2 already holds, by a write call that answered short.
_HELD = bytes(256 * 1024)


def _held(left: int) -> bytes:
    """What a write call passes after one that answered short, *left* bytes of the block unacknowledged.

    libssh2 makes SFTP requests of the whole block at the first call ("write ahead",
    libssh2 1.2.8 on) and answers as soon as the first is acknowledged; the caller must then
    call again for the rest, of which libssh2 skips what it already holds, unread: every byte
    of it, since ``offset_sent - offset + acked`` is exactly *left*.  So the call needs only
    a length up to *left*, not the rest of the block copied again (``bytes(view[written:])``
    copied most of a 1 MiB block per call: a fifth of the client's CPU in a copy to 30
    hosts).  The answer is at most that length, so a shorter one just means more calls.
    """
    return _HELD if left >= len(_HELD) else _HELD[:left]


def _attrs(a: SFTPAttributes) -> transfer.Attrs:
    return transfer.Attrs(a.permissions or 0, a.filesize, a.atime, a.mtime)


class SFTPFS:
    """:class:`parallax.ssh.transfer.RemoteFS` over one libssh2 SFTP session on *wire*."""

    def __init__(self, wire: Wire, sftp: SFTP) -> None:
        self._wire = wire
        self._sftp: SFTP | None = sftp

    @property
    def _live(self) -> SFTP:
        if self._sftp is None:
            raise ConnectionResetError(errno.ECONNRESET, "the SFTP session has ended")
        return self._sftp

    def shutdown(self) -> None:
        """End the SFTP session without waiting (see the module's text); the adapter is unusable afterwards."""
        sftp, self._sftp = self._sftp, None
        if sftp is None:
            return
        del sftp  # the last reference: ssh2-python starts the session's end as it frees it
        if not self._wire.closed:
            self._wire.kick()  # the end may have read packets other channels wait for

    def _os_error(self, e: BaseException) -> BaseException:
        """An SFTP failure about one path as an ``OSError``; a lost session as raised."""
        if not isinstance(e, x.SFTPProtocolError):
            return e
        status = int(self._live.last_error())
        if status in _LOST:
            return ConnectionResetError(errno.ECONNRESET, "the SFTP session was lost")
        code = _STATUS_ERRNO.get(status, errno.EIO)
        return OSError(code, _STATUS_TEXT.get(status, f"SFTP status {status}"))

    async def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return await self._wire.call(fn, *args)
        except (x.SFTPProtocolError, x.SFTPHandleError) as e:
            raise self._os_error(e) from None

    async def stat(self, path: str) -> transfer.Attrs:
        """Attributes of *path*, following symlinks."""
        return _attrs(await self._call(self._live.stat, path))

    async def listdir(self, path: str) -> list[transfer.Entry]:
        """The entries of directory *path*, not following symlinks."""
        entries: list[transfer.Entry] = []
        async with self._open(self._live.opendir, path) as handle:
            names = handle.readdir(4096)
            while True:
                item = await self._call(next, names, None)
                if item is None:
                    break
                _, raw, attrs = item
                try:
                    name = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise OSError(errno.EILSEQ, transfer.NOT_UTF8) from None
                entries.append(transfer.Entry(name, _attrs(attrs)))
        return entries

    async def mkdir(self, path: str) -> None:
        """Create directory *path*, owner-only until chmod."""
        await self._call(self._live.mkdir, path, 0o700)

    async def _setstat(self, path: str, flags: int, **values: int) -> None:
        attrs = SFTPAttributes()
        attrs.flags = flags
        for name, value in values.items():
            setattr(attrs, name, value)
        await self._call(self._live.setstat, path, attrs)

    async def chmod(self, path: str, mode: int) -> None:
        """Set the permission bits of *path*."""
        await self._setstat(path, LIBSSH2_SFTP_ATTR_PERMISSIONS, permissions=stat.S_IMODE(mode))

    async def utime(self, path: str, atime: float, mtime: float) -> None:
        """Set the access and modification times of *path* (SFTP v3 carries whole seconds)."""
        await self._setstat(path, LIBSSH2_SFTP_ATTR_ACMODTIME, atime=int(atime), mtime=int(mtime))

    async def get_file(self, remote: str, local: transfer.Writer, size: int | None) -> None:
        """Remote file *remote* into *local*, until its end (*size* is only a hint)."""
        async with self._open(self._live.open, remote, LIBSSH2_FXF_READ, 0) as handle:
            while True:
                rc, data = await self._call(handle.read, BLOCK)
                if rc < 0:  # pragma: no cover - ssh2-python returns errors as codes here
                    raise OSError(errno.EIO, f"SFTP read failed ({rc})")
                if not data:
                    return
                local.write(data)

    async def put_file(self, local: transfer.Reader, remote: str, size: int) -> None:
        """Create or truncate remote file *remote* with what *local* holds."""
        flags = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC
        async with self._open(self._live.open, remote, flags, 0o600) as handle:
            while True:
                data = local.read(BLOCK)
                if not data:
                    return
                buf, left = data, len(data)
                while left:
                    try:
                        rc, written = handle.write(buf)
                    except (x.SFTPProtocolError, x.SFTPHandleError) as e:
                        raise self._os_error(e) from None
                    left -= written
                    buf = _held(left)
                    if rc == EAGAIN and left:
                        await self._wire.wait()

    @contextlib.asynccontextmanager
    async def _open(self, fn: Any, *args: Any) -> AsyncIterator[Any]:
        """A file or directory handle opened by ``fn(*args)``, closed on the way out: waited for at most
        CLOSE_GRACE, or CANCEL_GRACE when the body failed or was cancelled."""
        handle = await self._call(fn, *args)
        try:
            yield handle
        except BaseException:
            await self._close(handle, CANCEL_GRACE)
            raise
        await self._close(handle, CLOSE_GRACE)

    async def _close(self, handle: Any, grace: float) -> None:
        # the transfer's own failure (or lost session) is what the caller sees
        with contextlib.suppress(x.SSH2Error, ConnectionError, TypeError, asyncio.TimeoutError):
            await within(self._wire.call(handle.close), grace)
