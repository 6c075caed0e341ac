"""parallel-ssh's ``ParallelSSHClient`` (default native client: ssh2-python/libssh2 on gevent).

parallel-ssh does not verify host keys; this driver does it by hand with
libssh2's known-hosts API after ``connect_auth`` and before the first
command (counted in the wall time), which is what a careful user must do.
"""

from __future__ import annotations

import gc
from typing import Any

ParallelSSHClient: Any = None
joinall: Any = None


def load(spec: Any) -> str:
    global ParallelSSHClient, joinall
    import importlib.metadata

    from gevent import joinall as _joinall
    from pssh.clients import ParallelSSHClient as _P

    ParallelSSHClient, joinall = _P, _joinall
    return (f"parallel-ssh {importlib.metadata.version('parallel-ssh')}, "
            f"ssh2-python {importlib.metadata.version('ssh2-python')}, gevent {importlib.metadata.version('gevent')}")


class Client:
    """One ``ParallelSSHClient`` (``pool_size=limit``); connections live as long as it does."""

    def __init__(self, spec: Any, addresses: list[str], limit: int) -> None:
        self.spec = spec
        self.client = ParallelSSHClient(addresses, user=spec.user, pkey=spec.client_key, port=spec.port,
                                        pool_size=limit, allow_agent=False, identity_auth=False)
        self.verified = False

    def _verify_host_keys(self) -> None:
        from ssh2.knownhost import (
            LIBSSH2_KNOWNHOST_KEYENC_RAW,
            LIBSSH2_KNOWNHOST_TYPE_PLAIN,
        )

        joinall(self.client.connect_auth(), raise_error=True)
        known = None
        # ``_host_clients`` is the only way to reach each host's libssh2 session.
        for (_, host), single in self.client._host_clients.items():
            session = single.session
            if known is None:
                known = session.knownhost_init()
                known.readfile(self.spec.known_hosts)
            key, _key_type = session.hostkey()
            # Raises KnownHostCheck{NotFound,Mismatch}Error unless the key matches.
            known.checkp(host.encode(), self.spec.port, key,
                         LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW)
        self.verified = True

    def run(self, command: str) -> dict[str, Any]:
        if not self.verified:
            self._verify_host_keys()
        output = self.client.run_command(command, stop_on_errors=True)
        self.client.join(output)
        results: dict[str, Any] = {}
        for host_out in output:
            if host_out.exception is not None:
                results[host_out.host] = host_out.exception
                continue
            lines = list(host_out.stdout)
            results[host_out.host] = (host_out.exit_code, lines)
        return results

    def put(self, local: str, remote: str) -> dict[str, Any]:
        if not self.verified:
            self._verify_host_keys()
        greenlets = self.client.copy_file(local, remote)
        joinall(greenlets, raise_error=True)
        return {host: None for host in self.client.hosts}

    def close(self) -> None:
        # parallel-ssh disconnects when its clients are de-allocated.
        self.client = None
        gc.collect()
