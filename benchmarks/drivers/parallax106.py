"""The original Parallax SSH 1.0.6 from PyPI (``ssh``/``scp`` subprocesses); only ever imported in the peers' venv.

1.0.6 has no ``ssh_key`` option and no sessions: the key goes in as an
``IdentityFile`` ssh option, and every call is independent.
"""

from __future__ import annotations

from typing import Any

parallax: Any = None


def load(spec: Any) -> str:
    global parallax
    import importlib.metadata

    import parallax as px

    version = importlib.metadata.version("parallax")
    if version != "1.0.6" or "site-packages" not in px.__file__:
        raise RuntimeError(f"expected parallax 1.0.6 from the venv, imported {version} from {px.__file__}")
    parallax = px
    return version


class Client:
    """``parallax.call``/``copy`` per call (1.0 API: (host, port, user) tuples and an ``Options``)."""

    def __init__(self, spec: Any, addresses: list[str], limit: int) -> None:
        self.hosts = [(a, str(spec.port), spec.user) for a in addresses]
        opts = parallax.Options()
        opts.limit = limit
        opts.timeout = 0
        opts.ssh_options = [
            "StrictHostKeyChecking=yes",
            f"UserKnownHostsFile={spec.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            f"IdentityFile={spec.client_key}",
        ]
        opts.default_user = spec.user
        self.opts = opts

    def run(self, command: str) -> dict[str, Any]:
        results = parallax.call(self.hosts, command, self.opts)
        return {h: (r if isinstance(r, BaseException) else (r[0], r[1])) for h, r in results.items()}

    def put(self, local: str, remote: str) -> dict[str, Any]:
        results = parallax.copy(self.hosts, local, remote, self.opts)
        return {h: (r if isinstance(r, BaseException) else
                    (None if r[0] == 0 else RuntimeError(f"scp rc={r[0]}: {r[2]!r}")))
                for h, r in results.items()}

    def close(self) -> None:
        pass
