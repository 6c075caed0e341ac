"""Fabric (paramiko underneath): one ``Connection`` per host, at most ``limit`` at once.

Fabric's ``ThreadingGroup`` has no concurrency limit (every host of the group
runs at once, whatever the workload's limit), so this driver runs the group's
``Connection`` objects through a ``ThreadPoolExecutor(max_workers=limit)``:
what a Fabric user does to honour a limit, and the same work as every other
configuration (behind a 50 ms link, all 100 hosts at once would be a
different, easier workload).  Fabric auto-adds unknown host keys by
default; this driver parses the lab's known_hosts once, gives every
connection the entry for its own host (``HostKeys.lookup`` + ``add``: loading
the whole file into each of N clients costs O(N * file) key parsing) and sets
paramiko's ``RejectPolicy``, so keys are really checked.
"""

from __future__ import annotations

import concurrent.futures
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
    """The ``Connection`` objects of one group of all hosts, run ``limit`` at a time; connections
    stay open until ``close``."""

    def __init__(self, spec: Any, addresses: list[str], limit: int) -> None:
        self.limit = limit
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
        def one(conn: Any) -> Any:
            try:
                return getattr(conn, method)(*args, **kwargs)
            except Exception as e:  # a host's failure is its result, as in a GroupResult
                return e

        conns = list(self.group)
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.limit) as pool:
            return {conn.host: value for conn, value in zip(conns, pool.map(one, conns))}

    def run(self, command: str) -> dict[str, Any]:
        results = self._results("run", command, hide=True, warn=True)
        return {h: (r if isinstance(r, BaseException) else (r.exited, r.stdout)) for h, r in results.items()}

    def put(self, local: str, remote: str) -> dict[str, Any]:
        results = self._results("put", local, remote)
        return {h: (r if isinstance(r, BaseException) else None) for h, r in results.items()}

    def close(self) -> None:
        self.group.close()
