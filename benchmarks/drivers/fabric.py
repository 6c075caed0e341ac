"""Fabric's ``ThreadingGroup`` (paramiko underneath, one thread per host).

``ThreadingGroup`` has no concurrency limit: every host of the group runs at
once, whatever the workload's limit.  Fabric auto-adds unknown host keys by
default; this driver parses the lab's known_hosts once, gives every
connection the entry for its own host (``HostKeys.lookup`` + ``add``: loading
the whole file into each of N clients costs O(N * file) key parsing) and sets
paramiko's ``RejectPolicy``, so keys are really checked.
"""

from __future__ import annotations

from typing import Any

fabric: Any = None
paramiko: Any = None


def load(spec: Any) -> str:
    global fabric, paramiko
    import importlib.metadata

    import fabric as _fabric
    import paramiko as _paramiko

    fabric, paramiko = _fabric, _paramiko
    return f"fabric {importlib.metadata.version('fabric')}, paramiko {importlib.metadata.version('paramiko')}"


class Client:
    """One ``ThreadingGroup`` of all hosts; connections stay open until ``close``."""

    def __init__(self, spec: Any, addresses: list[str], limit: int) -> None:
        config = fabric.Config(overrides={"load_ssh_configs": False})
        self.group = fabric.ThreadingGroup(
            *addresses, user=spec.user, port=spec.port, config=config,
            connect_kwargs={"key_filename": spec.client_key, "look_for_keys": False, "allow_agent": False},
        )
        known = paramiko.HostKeys(spec.known_hosts)
        for conn in self.group:
            name = f"[{conn.host}]:{conn.port}" if conn.port != 22 else conn.host
            entry = known.lookup(name)
            if entry:
                for key_type, key in entry.items():
                    conn.client.get_host_keys().add(name, key_type, key)
            conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())

    def _results(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            group_result = getattr(self.group, method)(*args, **kwargs)
        except fabric.exceptions.GroupException as e:
            group_result = e.result
        return {conn.host: value for conn, value in group_result.items()}

    def run(self, command: str) -> dict[str, Any]:
        results = self._results("run", command, hide=True, warn=True)
        return {h: (r if isinstance(r, BaseException) else (r.exited, r.stdout)) for h, r in results.items()}

    def put(self, local: str, remote: str) -> dict[str, Any]:
        results = self._results("put", local, remote)
        return {h: (r if isinstance(r, BaseException) else None) for h, r in results.items()}

    def close(self) -> None:
        self.group.close()
