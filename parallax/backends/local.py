"""1.0's local-host shortcut: a command for this machine runs here, without ssh."""

from __future__ import annotations

from ..errors import BadInput
from ..jobs import CommandJob, GetJob, PutJob
from .base import Backend, OutputSink
from .process import run_process


class LocalBackend(Backend):
    """Runs commands through ``/bin/sh -c`` on the local machine (commands only)."""

    name = "local"

    async def run(self, job: CommandJob, sink: OutputSink) -> int:
        return await run_process(["/bin/sh", "-c", job.command], sink, job.stdin)

    async def put(self, job: PutJob, sink: OutputSink) -> None:
        raise BadInput("the local shortcut runs commands only", host=job.key)

    async def get(self, job: GetJob, sink: OutputSink) -> None:
        raise BadInput("the local shortcut runs commands only", host=job.key)
