"""A copy or slurp job as the :mod:`parallax.ssh.transfer` walk it makes, the same for every in-process backend.

A backend opens its SFTP session and hands its adapter to the walk; which
rules apply (``scp -r -p``, SFTP's relative paths, the slurp root nothing is
written outside of) is decided here once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..jobs import GetJob, PutJob
from . import transfer

__all__ = ["job_walk"]


def job_walk(job: PutJob | GetJob) -> Callable[[transfer.RemoteFS], Awaitable[None]]:
    """The walk of *job* over a remote file system: ``put`` local ``src`` to remote ``dst``, or ``get``
    remote ``src`` into local ``dst`` inside the slurp root."""
    if isinstance(job, PutJob):
        return lambda fs: transfer.put(fs, job.src, transfer.sftp_path(job.dst), target=job.target,
                                       recursive=job.recursive)
    return lambda fs: transfer.get(fs, transfer.sftp_path(job.src), job.dst, target=job.target,
                                   root=transfer.slurp_root(job), recursive=job.recursive, label=job.src)
