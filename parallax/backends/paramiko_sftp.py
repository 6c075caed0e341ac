"""paramiko's SFTP client as the :class:`parallax.ssh.transfer.RemoteFS` the shared copy/slurp rules walk.

Every call is one blocking paramiko call run in the backend's thread pool (a
whole file is one call, downloaded with paramiko's prefetch in bounded
windows); tracebacks of paramiko's prefetch threads when a connection dies
are kept off stderr (the error is in the host's result).
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import paramiko

from ..errors import TransferFailed
from ..jobs import Target
from ..ssh import transfer

log = logging.getLogger("parallax.paramiko")


def open_sftp(transport: paramiko.Transport, target: Target) -> paramiko.SFTPClient:
    """An SFTP session on *transport* (``TransferFailed`` if the server has no sftp subsystem)."""
    try:
        return transport.open_sftp_client()
    except paramiko.SSHException as e:
        if not transport.is_active():
            raise
        raise TransferFailed.at(target, f"cannot start the sftp subsystem: {e}") from None


PREFETCH_WINDOW = 64 * 1024 * 1024  # bytes of a download asked for at once (bounds buffering per file)
READ_SIZE = 32768  # paramiko's largest read request


def _attrs(a: paramiko.SFTPAttributes) -> transfer.Attrs:
    return transfer.Attrs(a.st_mode or 0, a.st_size, a.st_atime, a.st_mtime)


class SFTPFS:
    """:class:`parallax.ssh.transfer.RemoteFS` over a paramiko ``SFTPClient``: every call is one
    blocking paramiko call run in the backend's thread pool (a whole file is one call)."""

    def __init__(self, sftp: paramiko.SFTPClient, run: Callable[..., Awaitable[Any]]) -> None:
        self._sftp, self._run = sftp, run

    async def stat(self, path: str) -> transfer.Attrs:
        return _attrs(await self._run(self._sftp.stat, path))

    async def listdir(self, path: str) -> list[transfer.Entry]:
        return [transfer.Entry(a.filename, _attrs(a)) for a in await self._run(_listdir, self._sftp, path)]

    async def mkdir(self, path: str) -> None:
        await self._run(self._sftp.mkdir, path, 0o700)

    async def chmod(self, path: str, mode: int) -> None:
        await self._run(self._sftp.chmod, path, mode)

    async def utime(self, path: str, atime: float, mtime: float) -> None:
        await self._run(self._sftp.utime, path, (atime, mtime))

    async def get_file(self, remote: str, local: transfer.Writer, size: int | None) -> None:
        await self._run(_download, self._sftp, remote, local, size or 0)

    async def put_file(self, local: transfer.Reader, remote: str, size: int) -> None:
        await self._run(self._sftp.putfo, local, remote, size, None, False)


def _listdir(sftp: paramiko.SFTPClient, path: str) -> list[paramiko.SFTPAttributes]:
    try:
        return sftp.listdir_attr(path)
    except UnicodeDecodeError:
        raise OSError(errno.EILSEQ, transfer.NOT_UTF8) from None


def _download(sftp: paramiko.SFTPClient, remote: str, out: transfer.Writer, hint: int) -> None:
    """Copy *remote* into *out* until its end, prefetching (paramiko's pipelined reads) in
    windows up to *hint* (the listed size, never trusted: beyond it reads go one at a time
    and widen again while data keeps coming)."""
    _quiet_prefetch_threads()
    with sftp.open(remote, "rb") as f:
        pos = fetched = 0
        while True:
            if pos >= fetched and pos < hint:
                fetched = min(hint, pos + PREFETCH_WINDOW)
                f.prefetch(fetched)
            data = f.read(READ_SIZE)
            if not data:
                return
            out.write(data)
            pos += len(data)
            if pos > hint:
                hint = pos + PREFETCH_WINDOW


_quiet_hook_installed = False
_quiet_hook_lock = threading.Lock()


def _quiet_prefetch_threads() -> None:
    """Keep paramiko's prefetch threads from printing a traceback when a connection drops.

    paramiko sends a download's read requests from a thread of its own
    (``SFTPFile._prefetch_thread``, which Python names ``Thread-N
    (_prefetch_thread)``); when the transport closes under it, the thread dies
    of the send error, which the reader also gets and the result reports.  A
    chained ``threading.excepthook`` logs exactly those at debug level and
    passes everything else on (tested in tests/integration/test_hostile_server.py).
    """
    global _quiet_hook_installed
    with _quiet_hook_lock:
        if not _quiet_hook_installed:
            threading.excepthook = _prefetch_excepthook(threading.excepthook)
            _quiet_hook_installed = True


def _prefetch_excepthook(previous: Callable[[Any], object]) -> Callable[[Any], None]:
    """A ``threading.excepthook`` that drops a prefetch thread's connection error, else calls *previous*."""

    def hook(args: Any) -> None:
        thread = args.thread
        if (thread is not None and thread.name.endswith("(_prefetch_thread)")
                and issubclass(args.exc_type, (OSError, EOFError, paramiko.SSHException))):
            log.debug("%s ended: %s", thread.name, args.exc_value)
            return
        previous(args)

    return hook


__all__ = ["SFTPFS", "open_sftp"]
