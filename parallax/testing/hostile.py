"""A malicious SFTP server for tests: hostile names, modes and sizes, and dropped connections.

:class:`HostileSSHHost` is an :class:`~parallax.testing.embedded.EmbeddedSSHHost`
(same keys, known_hosts, ssh_config and public-key login) whose SFTP
subsystem serves a virtual tree per host address instead of the real file
system.  A tree is built from :class:`HostileDir` and :class:`HostileFile`
and may hold what no honest server sends::

    tree = HostileDir({
        "sub/..": HostileDir({...}),            # a "name" that climbs
        "ok": HostileFile(b"data", mode=0o4755),  # setuid
        "liar": HostileFile(b"x" * 100, size=10), # listed size is a lie
    })
    with HostileSSHHost([tree, honest_tree]) as host:
        parallax.slurp(host.hosts, "/", "got", recursive=True, ...)

Paths are looked up name by name from ``/`` (relative paths start there);
a name containing ``/`` matches the same text in a requested path, so a
client that follows a hostile name gets a real answer (the attack goes on).
Listings always start with ``.`` and ``..``, as real servers send them.
Writes are refused: this server is only for downloads.
"""

from __future__ import annotations

import asyncio
import stat
from dataclasses import dataclass, field
from collections.abc import AsyncIterator
from typing import Any

import asyncssh

from .embedded import EmbeddedSSHHost, _free_port, _Server

__all__ = ["HostileDir", "HostileFile", "HostileSSHHost"]


@dataclass
class HostileFile:
    """A regular file: *data* (repeated up to *length* bytes when given), listed with *mode*
    and *size* (default: the true length); reading at *drop_at* or beyond aborts the connection."""

    data: bytes = b""
    mode: int = 0o644
    size: int | None = None
    length: int | None = None
    drop_at: int | None = None

    @property
    def true_length(self) -> int:
        """How many bytes a read to the end returns."""
        return len(self.data) if self.length is None else self.length

    def content(self, offset: int, size: int) -> bytes:
        """Bytes ``offset .. offset+size`` (clipped to the end)."""
        end = min(offset + size, self.true_length)
        if offset >= end:
            return b""
        if self.length is None:
            return self.data[offset:end]
        unit = self.data or b"\0"
        start = offset % len(unit)
        reps = (end - offset + start) // len(unit) + 1
        return (unit * reps)[start:start + end - offset]


@dataclass
class HostileDir:
    """A directory listed with *mode*; its *entries* may have any name at all."""

    entries: dict[str, Node] = field(default_factory=dict)
    mode: int = 0o755


Node = HostileFile | HostileDir


def _attrs(node: Node) -> asyncssh.SFTPAttrs:
    if isinstance(node, HostileDir):
        return asyncssh.SFTPAttrs(permissions=stat.S_IFDIR | node.mode, size=4096, uid=0, gid=0,
                                  atime=1_600_000_000, mtime=1_600_000_000)
    size = node.true_length if node.size is None else node.size
    return asyncssh.SFTPAttrs(permissions=stat.S_IFREG | node.mode, size=size, uid=0, gid=0,
                              atime=1_600_000_000, mtime=1_600_000_000)


def lookup(root: HostileDir, path: str) -> Node | None:
    """The node *path* names in *root*: at each level the longest entry name that matches the
    next part of the path (so a name with a slash is found too); ``.`` stays, ``..`` is ignored."""
    node: Node = root
    rest = path.strip("/")
    while rest:
        if not isinstance(node, HostileDir):
            return None
        if rest == "." or rest.startswith("./"):
            rest = rest[2:]
            continue
        best = None
        for name in node.entries:
            if name and (rest == name or rest.startswith(name + "/")) and (best is None or len(name) > len(best)):
                best = name
        if best is None:
            if rest == ".." or rest.startswith("../"):
                rest = rest[3:]
                continue
            return None
        node = node.entries[best]
        rest = rest[len(best):].lstrip("/")
    return node


class _HostileSFTP(asyncssh.SFTPServer):
    """Serves one virtual tree; see the module docstring."""

    def __init__(self, chan: Any, tree: HostileDir) -> None:
        super().__init__(chan)
        self.tree = tree

    def exit(self) -> None:
        try:
            if not self.channel.is_closing():
                self.channel.exit(0)
        except Exception:
            pass

    def _find(self, path: bytes) -> Node:
        node = lookup(self.tree, path.decode("utf-8", "surrogateescape"))
        if node is None:
            raise asyncssh.SFTPNoSuchFile(f"No such file: {path.decode('utf-8', 'replace')}")
        return node

    def map_path(self, path: bytes) -> bytes:
        return path

    def realpath(self, path: bytes) -> bytes:
        return b"/" + path.strip(b"/") if path not in (b"", b".") else b"/"

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return _attrs(self._find(path))

    lstat = stat

    def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        assert isinstance(file_obj, HostileFile)
        return _attrs(file_obj)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        node = self._find(path)
        if not isinstance(node, HostileDir):
            raise asyncssh.SFTPNotADirectory("Not a directory")
        here = _attrs(node)
        yield asyncssh.SFTPName(b".", attrs=here)
        yield asyncssh.SFTPName(b"..", attrs=here)
        for name, child in node.entries.items():
            yield asyncssh.SFTPName(name.encode("utf-8", "surrogateescape"), attrs=_attrs(child))

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC | asyncssh.FXF_APPEND):
            raise asyncssh.SFTPPermissionDenied("this server only serves downloads")
        node = self._find(path)
        if isinstance(node, HostileDir):
            raise asyncssh.SFTPFailure("Is a directory")
        return node

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        assert isinstance(file_obj, HostileFile)
        if file_obj.drop_at is not None and offset + size > file_obj.drop_at:
            self.connection.abort()
            raise asyncssh.SFTPConnectionLost("dropped by the hostile server")
        return file_obj.content(offset, size)

    def close(self, file_obj: object) -> None:
        pass

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        raise asyncssh.SFTPPermissionDenied("this server only serves downloads")

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied("this server only serves downloads")

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied("this server only serves downloads")


class HostileSSHHost(EmbeddedSSHHost):
    """An embedded SSH host whose SFTP serves ``trees[i]`` on its i-th address (``hosts[i]``).

    Everything else (keys, ``known_hosts``, ``ssh_config``, commands) is
    :class:`EmbeddedSSHHost`'s; SCP is off, so clients use SFTP.
    """

    def __init__(self, trees: list[HostileDir], *, workdir: str | None = None) -> None:
        if not trees:
            raise ValueError("HostileSSHHost needs at least one tree")
        super().__init__(hosts=len(trees), workdir=workdir)
        self.trees = list(trees)

    def _factory(self, chan: Any) -> _HostileSFTP:
        local = chan.get_extra_info("sockname") or ("", 0)
        index = 0
        for i, (addr, port) in enumerate(zip(self.addresses, self.ports, strict=True)):
            if (addr, port) == (local[0], local[1]):
                index = i
                break
        return _HostileSFTP(chan, self.trees[index])

    async def _listen(self) -> None:
        st = self._state
        common: dict[str, Any] = dict(
            server_host_keys=[self._host_key], server_factory=lambda: _Server(self, st),
            process_factory=self._handle, sftp_factory=self._factory, allow_scp=False, encoding=None,
            password_auth=False, kbdint_auth=False, keepalive_interval=0,
        )
        try:
            port = _free_port(self.addresses)
            for addr in self.addresses:
                st.servers.append(await asyncssh.listen(addr, port, **common))
            self.port, self.ports = port, [port] * len(self.addresses)
        except OSError:
            for server in st.servers:
                server.close()
            st.servers = []
            await asyncio.sleep(0)
            for _ in self.addresses:
                st.servers.append(await asyncssh.listen("127.0.0.1", 0, **common))
            self.ports = [s.get_port() for s in st.servers]
            self.port = self.ports[0]
            self.addresses = ["127.0.0.1"] * len(self.ports)
