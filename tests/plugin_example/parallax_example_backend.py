"""An example third-party parallax backend, registered through an entry point.

It delegates the transport to the built-in OpenSSH backend (a real plugin
would talk SSH its own way); what it proves is that registration and
discovery by name work through the public hooks only.
"""

from __future__ import annotations

from typing import Any

import parallax
from parallax.backends.openssh import OpenSSHBackend


class ExampleBackend(OpenSSHBackend):
    """``backend="example"``: OpenSSH underneath, counting the jobs it ran."""

    name = "example"
    jobs_run = 0

    async def run(self, job: Any, sink: Any) -> int:
        type(self).jobs_run += 1
        return await super().run(job, sink)


@parallax.hookimpl
def parallax_backends() -> dict[str, Any]:
    return {"example": ExampleBackend}
