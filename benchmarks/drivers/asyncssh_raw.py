"""asyncssh used by hand: ``asyncio.Semaphore(limit)`` around ``asyncssh.connect`` + ``conn.run``.

Known hosts and the client key are read once and shared.  For one call
(W1-W4) each host's connection is closed as soon as its work is done; for
repeated calls (W5) connections are kept and reused.  W4 uses SFTP ``put``.
"""

from __future__ import annotations

import asyncio
from typing import Any

asyncssh: Any = None


def load(spec: Any) -> str:
    global asyncssh
    import asyncssh as _asyncssh

    asyncssh = _asyncssh
    return f"asyncssh {_asyncssh.__version__}"


class Client:
    """An event loop, a semaphore, and (for repeated calls) one open connection per host."""

    def __init__(self, spec: Any, addresses: list[str], limit: int) -> None:
        self.spec = spec
        self.addresses = addresses
        self.keep = spec.workload["kind"] == "repeat"
        self.loop = asyncio.new_event_loop()
        self.sem = asyncio.Semaphore(limit)
        self.known_hosts = asyncssh.read_known_hosts(spec.known_hosts)
        self.client_keys = [asyncssh.read_private_key(spec.client_key)]
        self.conns: dict[str, Any] = {}

    async def _connect(self, addr: str) -> Any:
        conn = self.conns.get(addr)
        if conn is None:
            conn = await asyncssh.connect(addr, port=self.spec.port, username=self.spec.user,
                                          client_keys=self.client_keys, known_hosts=self.known_hosts,
                                          agent_path=None)
            if self.keep:
                self.conns[addr] = conn
        return conn

    async def _one(self, addr: str, work: Any) -> Any:
        async with self.sem:
            conn = await self._connect(addr)
            try:
                return await work(conn)
            finally:
                if not self.keep:
                    conn.close()
                    await conn.wait_closed()

    async def _all(self, work: Any) -> dict[str, Any]:
        values = await asyncio.gather(*(self._one(a, work) for a in self.addresses), return_exceptions=True)
        return dict(zip(self.addresses, values))

    def run(self, command: str) -> dict[str, Any]:
        async def work(conn: Any) -> Any:
            r = await conn.run(command, encoding=None)
            return (r.exit_status, r.stdout)

        return self.loop.run_until_complete(self._all(work))

    def put(self, local: str, remote: str) -> dict[str, Any]:
        async def work(conn: Any) -> None:
            async with conn.start_sftp_client() as sftp:
                await sftp.put(local, remote)

        return self.loop.run_until_complete(self._all(work))

    def close(self) -> None:
        async def close_all() -> None:
            for conn in self.conns.values():
                conn.close()
            await asyncio.gather(*(c.wait_closed() for c in self.conns.values()))

        self.loop.run_until_complete(close_all())
        self.loop.close()
