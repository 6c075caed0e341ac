"""``check`` for the openssh backend: connect and authenticate with ``ssh -N``, run nothing.

``ssh -N`` opens no session; its ``-E`` log at ``LogLevel VERBOSE`` (given
first on the command line, so a caller's ``LogLevel`` cannot lower it) says
``Authenticated to HOST ([ADDR]:PORT) using "METHOD".`` once authentication
succeeded, and the process is then ended.  In a persistent session the
host's ControlMaster is the connection that is checked.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from ..jobs import CheckJob
from .process import run_process

if TYPE_CHECKING:
    from .openssh import OpenSSHBackend

POLL = 0.01  # seconds between looks at ssh's log
_AUTHENTICATED = re.compile(r'Authenticated to .* using "([^"]+)"')

__all__ = ["auth_method", "check"]


def auth_method(log: str) -> str | None:
    """The method named in ssh's "Authenticated to ... using" line, if any."""
    found = _AUTHENTICATED.search(log)
    return found.group(1) if found else None


async def check(backend: OpenSSHBackend, job: CheckJob) -> str:
    """Authenticate to *job*'s target and return the method that worked; the shared error classes otherwise."""
    from .openssh import _Collect, _read, _unlink, classify

    target = job.target
    if backend.keep_connections:
        await backend._control(target)
        master = backend._masters.get(target.connection)
        return (auth_method(_read(master.log_path)) if master is not None else None) or "unknown"
    log_path = backend._next_log()
    argv = [backend.ssh, "-E", log_path, "-o", "LogLevel=VERBOSE",
            *backend._common(target, "-p", for_scp=False), "-N", "-T", "--", target.host]
    proc = asyncio.ensure_future(run_process(argv, _Collect(), None, backend._env(target)))
    try:
        while True:
            method = auth_method(_read(log_path))
            if method is not None:
                return method
            if proc.done():
                break
            await asyncio.wait([proc], timeout=POLL)
        method = auth_method(_read(log_path))
        if method is not None:
            return method
        raise classify(_read(log_path), target)
    finally:
        if not proc.done():
            proc.cancel()
            await asyncio.wait([proc])
        elif not proc.cancelled():
            proc.exception()  # its status was consumed through the log
        _unlink(log_path)
