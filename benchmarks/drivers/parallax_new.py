"""This checkout's parallax: ``backend/mode`` configs, mode ``module`` (``parallax.run``), ``session``
(one ``parallax.Session``) or ``shell`` (a Session with ``persistent_shell=True``)."""

from __future__ import annotations

from typing import Any

parallax: Any = None


def load(spec: Any) -> str:
    """Import parallax, its backend module and plugin registry (one-time costs, reported as import time)."""
    global parallax
    import importlib

    import parallax as px
    from parallax.plugins import backend_factory

    if not px.__version__.startswith("2"):
        raise RuntimeError(f"expected the project's parallax 2.x, imported {px.__version__} from {px.__file__}")
    backend = spec.config.split("/")[0]
    backend_factory(backend)  # entry-point discovery, once per process
    importlib.import_module(f"parallax.backends.{backend}")  # imports paramiko/asyncssh like the peers' load()
    parallax = px
    return px.__version__


class Client:
    """``parallax.run``/``copy`` per call, or one ``parallax.Session`` for all calls."""

    def __init__(self, spec: Any, addresses: list[str], limit: int) -> None:
        backend, mode = spec.config.split("/")
        self.hosts = [f"{a}:{spec.port}" for a in addresses]
        self.opts = {"backend": backend, "limit": limit, "ssh_key": spec.client_key,
                     "known_hosts": spec.known_hosts, "default_user": spec.user, "host_key_policy": "strict",
                     "timeout": 600}
        if mode == "module":
            self.session = None
        else:
            self.session = parallax.Session(self.hosts, persistent_shell=mode == "shell", **self.opts)

    def run(self, command: str) -> dict[str, Any]:
        if self.session is not None:
            results = self.session.run(command)
        else:
            results = parallax.run(self.hosts, command, **self.opts)
        return {key.rsplit(":", 1)[0]: (r if isinstance(r, BaseException) else (r.rc, r.stdout))
                for key, r in results.items()}

    def put(self, local: str, remote: str) -> dict[str, Any]:
        if self.session is not None:
            results = self.session.copy(local, remote)
        else:
            results = parallax.copy(self.hosts, local, remote, **self.opts)
        return {key.rsplit(":", 1)[0]: (r if isinstance(r, BaseException) else
                                        (None if r.rc == 0 else RuntimeError(f"copy rc={r.rc}")))
                for key, r in results.items()}

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
