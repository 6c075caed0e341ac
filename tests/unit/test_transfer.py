"""The scp -r -p walk of parallax.ssh.transfer over an in-memory RemoteFS (no backend involved)."""

from __future__ import annotations

import asyncio
import errno
import os
import posixpath
import stat
from dataclasses import dataclass, field
from typing import Any

import pytest

from parallax.errors import TransferFailed
from parallax.jobs import GetJob, Target
from parallax.ssh import transfer
from parallax.ssh.transfer import Attrs, Entry

TARGET = Target(key="h1", host="h1")
MTIME = 1_500_000_000.0


@dataclass
class File:
    data: bytes = b""
    mode: int = 0o644
    listed_size: int | None = None
    mtime: float = MTIME


@dataclass
class Dir:
    entries: dict[str, Any] = field(default_factory=dict)
    mode: int = 0o755
    mtime: float = MTIME


@dataclass
class Link:
    target: str


class FakeFS:
    """A RemoteFS over nested Dir/File/Link nodes; paths are split on '/' from the root."""

    def __init__(self, root: Dir) -> None:
        self.root = root
        self.calls: list[tuple[str, str]] = []

    def _walk(self, path: str, follow: bool = True, depth: int = 0) -> Any:
        if depth > 40:
            raise OSError(errno.ELOOP, "Too many levels of symbolic links")
        node: Any = self.root
        parts = [p for p in path.split("/") if p and p != "."]
        for part in parts:
            if isinstance(node, Link):
                node = self._walk(node.target, True, depth + 1)
            if not isinstance(node, Dir) or part not in node.entries:
                raise FileNotFoundError(errno.ENOENT, "No such file")
            node = node.entries[part]
        if follow and isinstance(node, Link):
            node = self._walk(node.target, True, depth + 1)
        return node

    @staticmethod
    def _attrs(node: Any) -> Attrs:
        if isinstance(node, Link):
            return Attrs(stat.S_IFLNK | 0o777)
        if isinstance(node, Dir):
            return Attrs(stat.S_IFDIR | node.mode, 4096, node.mtime, node.mtime)
        size = len(node.data) if node.listed_size is None else node.listed_size
        return Attrs(stat.S_IFREG | node.mode, size, node.mtime, node.mtime)

    async def stat(self, path: str) -> Attrs:
        self.calls.append(("stat", path))
        return self._attrs(self._walk(path))

    async def listdir(self, path: str) -> list[Entry]:
        self.calls.append(("listdir", path))
        node = self._walk(path)
        if not isinstance(node, Dir):
            raise OSError(errno.ENOTDIR, "Not a directory")
        here = self._attrs(node)
        return [Entry(".", here), Entry("..", here)] + [Entry(n, self._attrs(c)) for n, c in node.entries.items()]

    async def mkdir(self, path: str) -> None:
        self.calls.append(("mkdir", path))
        parent = self._walk(posixpath.dirname(path) or "/")
        name = posixpath.basename(path)
        if name in parent.entries:
            raise OSError(errno.EEXIST, "File exists")
        parent.entries[name] = Dir(mode=0o700)

    async def chmod(self, path: str, mode: int) -> None:
        self.calls.append(("chmod", path))
        self._walk(path).mode = mode

    async def utime(self, path: str, atime: float, mtime: float) -> None:
        self.calls.append(("utime", path))
        self._walk(path).mtime = mtime

    async def get_file(self, remote: str, local: transfer.Writer, size: int | None) -> None:
        self.calls.append(("get_file", remote))
        data = self._walk(remote).data
        for i in range(0, len(data), 7):
            local.write(data[i:i + 7])

    async def put_file(self, local: transfer.Reader, remote: str, size: int) -> None:
        self.calls.append(("put_file", remote))
        parent = self._walk(posixpath.dirname(remote) or "/")
        if not isinstance(parent, Dir):
            raise OSError(errno.ENOTDIR, "Not a directory")
        chunks = []
        while chunk := local.read(5):
            chunks.append(chunk)
        parent.entries[posixpath.basename(remote)] = File(b"".join(chunks))


def get(fs: FakeFS, src: str, dst: str, **kw: Any) -> None:
    asyncio.run(transfer.get(fs, src, dst, target=TARGET, **kw))


def put(fs: FakeFS, src: str, dst: str, **kw: Any) -> None:
    asyncio.run(transfer.put(fs, src, dst, target=TARGET, **kw))


def mode_of(path: Any) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def files_under(top: Any) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), top) for d, _, names in os.walk(top) for n in names}


# --- remote -> local ------------------------------------------------------------------------


def test_a_file_arrives_with_its_bytes_times_and_mode_without_setuid(tmp_path):
    fs = FakeFS(Dir({"f": File(b"0123456789" * 3, mode=0o4755)}))
    get(fs, "/f", str(tmp_path / "got"), root=str(tmp_path))
    assert (tmp_path / "got").read_bytes() == b"0123456789" * 3
    assert mode_of(tmp_path / "got") == 0o755
    assert os.stat(tmp_path / "got").st_mtime == MTIME


def test_setgid_and_sticky_bits_never_cross_on_files_or_directories(tmp_path):
    fs = FakeFS(Dir({"d": Dir({"g": File(b"g", mode=0o2750), "s": Dir(mode=0o1777)}, mode=0o6775)}))
    get(fs, "/d", str(tmp_path / "d"), root=str(tmp_path), recursive=True)
    assert mode_of(tmp_path / "d") == 0o775
    assert mode_of(tmp_path / "d" / "g") == 0o750
    assert mode_of(tmp_path / "d" / "s") == 0o777


def test_without_preserve_the_umask_applies_and_times_are_not_copied(tmp_path):
    fs = FakeFS(Dir({"f": File(b"x", mode=0o777)}))
    old = os.umask(0o027)
    try:
        get(fs, "/f", str(tmp_path / "f"), root=str(tmp_path), preserve=False)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "f") == 0o750
    assert os.stat(tmp_path / "f").st_mtime != MTIME


def test_a_file_onto_an_existing_directory_lands_inside_it(tmp_path):
    fs = FakeFS(Dir({"a": Dir({"f.txt": File(b"in")})}))
    (tmp_path / "d").mkdir()
    get(fs, "/a/f.txt", str(tmp_path / "d"), root=str(tmp_path))
    assert (tmp_path / "d" / "f.txt").read_bytes() == b"in"


def test_a_directory_needs_recursive(tmp_path):
    fs = FakeFS(Dir({"d": Dir({"f": File(b"x")})}))
    with pytest.raises(TransferFailed) as info:
        get(fs, "/d", str(tmp_path / "d"), root=str(tmp_path))
    assert info.value.msg == "Transfer with h1 failed: /d: is a directory (set recursive)"
    assert not (tmp_path / "d").exists()


def test_a_tree_is_copied_whole_and_into_an_existing_directory(tmp_path):
    tree = Dir({"a": File(b"A", mode=0o600), "sub": Dir({"b": File(b"B")}, mode=0o750)})
    fs = FakeFS(Dir({"t": tree}))
    get(fs, "/t", str(tmp_path / "t"), root=str(tmp_path), recursive=True)
    assert files_under(tmp_path / "t") == {"a", "sub/b"}
    assert mode_of(tmp_path / "t" / "a") == 0o600 and mode_of(tmp_path / "t" / "sub") == 0o750
    get(fs, "/t", str(tmp_path / "t"), root=str(tmp_path), recursive=True)  # now exists: lands in t/t
    assert files_under(tmp_path / "t") == {"a", "sub/b", "t/a", "t/sub/b"}


def test_a_missing_source_is_named_as_the_caller_wrote_it(tmp_path):
    with pytest.raises(TransferFailed) as info:
        get(FakeFS(Dir()), "nope", str(tmp_path / "x"), root=str(tmp_path), label="~/nope")
    assert info.value.msg == "Transfer with h1 failed: ~/nope: No such file"


@pytest.mark.parametrize("name", ["sub/..", "a/b", "../x", "", "x\x00y", "/abs"])
def test_a_listed_name_that_is_not_one_path_component_is_refused(tmp_path, name):
    evil = Dir({"sub/..": Dir({"sub/..": Dir({"evil": File(b"pwned")})})})
    fs = FakeFS(Dir({"t": Dir({"good": File(b"ok"), name: evil if name == "sub/.." else File(b"pwned")})}))
    root = tmp_path / "L"
    (root / "h1").mkdir(parents=True)
    with pytest.raises(TransferFailed) as info:
        get(fs, "/t", str(root / "h1" / "t"), root=str(root), recursive=True)
    assert info.value.msg.startswith("Transfer with h1 failed: /t: the server listed ")
    assert repr(name) in info.value.msg or (name == "" and "empty file name" in info.value.msg)
    assert "pwned" not in {p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    assert not any(c[1].endswith("evil") for c in fs.calls)


def test_dot_and_dotdot_in_a_listing_are_skipped(tmp_path):
    # every server lists them; one typed as a directory with content must not be followed
    fs = FakeFS(Dir({"t": Dir({"..": Dir({"evil": File(b"pwned")}), "f": File(b"ok")})}))
    get(fs, "/t", str(tmp_path / "t"), root=str(tmp_path), recursive=True)
    assert files_under(tmp_path) == {"t/f"}


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_or_dotdot_listed_as_a_file_is_refused(tmp_path, name):
    class Lying(FakeFS):
        async def listdir(self, path: str) -> list[Entry]:
            return [Entry(name, Attrs(stat.S_IFREG | 0o644, 6)), Entry("f", Attrs(stat.S_IFREG | 0o644, 2))]

    fs = Lying(Dir({"t": Dir({"f": File(b"ok")})}))
    with pytest.raises(TransferFailed) as info:
        get(fs, "/t", str(tmp_path / "t"), root=str(tmp_path), recursive=True)
    assert info.value.msg == f"Transfer with h1 failed: /t: the server listed the file name {name!r}"


def test_symlinks_on_the_server_are_followed_as_scp_does(tmp_path):
    fs = FakeFS(Dir({"real": Dir({"x": File(b"X")}), "data": File(b"D"),
                     "t": Dir({"tolink": Link("/data"), "dirlink": Link("/real")})}))
    get(fs, "/t", str(tmp_path / "t"), root=str(tmp_path), recursive=True)
    assert (tmp_path / "t" / "tolink").read_bytes() == b"D"
    assert (tmp_path / "t" / "dirlink" / "x").read_bytes() == b"X"
    assert not any(p.is_symlink() for p in tmp_path.rglob("*"))


def test_a_symlink_loop_on_the_server_ends_at_the_depth_limit(tmp_path):
    fs = FakeFS(Dir({"t": Dir({"again": Link("/t")})}))
    with pytest.raises(TransferFailed) as info:
        get(fs, "/t", str(tmp_path / "t"), root=str(tmp_path), recursive=True)
    assert f"more than {transfer.MAX_DEPTH} directory levels" in info.value.msg


def test_a_local_symlink_at_the_host_directory_leading_outside_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_bytes(b"precious")
    root = tmp_path / "L"
    root.mkdir()
    os.symlink(outside, root / "h1")
    fs = FakeFS(Dir({"f": File(b"overwritten")}))
    with pytest.raises(TransferFailed) as info:
        get(fs, "/f", str(root / "h1" / "f"), root=str(root))
    assert f"refusing to write outside {root}" in info.value.msg
    assert (outside / "f").read_bytes() == b"precious"
    assert ("get_file", "/f") not in fs.calls


def test_a_local_symlink_inside_the_tree_leading_outside_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "L"
    (root / "h1" / "t").mkdir(parents=True)
    os.symlink(outside, root / "h1" / "t" / "sub")
    fs = FakeFS(Dir({"t": Dir({"sub": Dir({"f": File(b"pwned")}), "a": File(b"a")})}))
    with pytest.raises(TransferFailed) as info:
        get(fs, "/t", str(root / "h1"), root=str(root), recursive=True)
    assert "refusing to write outside" in info.value.msg and "sub" in info.value.msg
    assert list(outside.iterdir()) == []


def test_a_local_symlink_that_stays_inside_the_root_is_written_through(tmp_path):
    root = tmp_path / "L"
    (root / "elsewhere").mkdir(parents=True)
    os.symlink(root / "elsewhere", root / "h1")
    get(FakeFS(Dir({"f": File(b"in")})), "/f", str(root / "h1" / "f"), root=str(root))
    assert (root / "elsewhere" / "f").read_bytes() == b"in"


def test_a_lost_connection_is_not_turned_into_a_path_failure(tmp_path):
    class Dropping(FakeFS):
        async def get_file(self, remote: str, local: transfer.Writer, size: int | None) -> None:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        get(Dropping(Dir({"f": File(b"x")})), "/f", str(tmp_path / "f"), root=str(tmp_path))


def test_a_local_write_failure_names_the_local_path(tmp_path):
    fs = FakeFS(Dir({"f": File(b"x")}))
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if os.access(tmp_path / "ro", os.W_OK):  # root ignores modes: use a path under a file instead
            (tmp_path / "afile").write_bytes(b"")
            dst = str(tmp_path / "afile" / "f")
        else:
            dst = str(tmp_path / "ro" / "f")
        with pytest.raises(TransferFailed) as info:
            get(fs, "/f", dst, root=str(tmp_path))
        assert info.value.msg.startswith(f"Transfer with h1 failed: {dst}: ")
    finally:
        os.chmod(tmp_path / "ro", 0o700)


# --- local -> remote ------------------------------------------------------------------------


def test_put_a_file_masks_the_mode_and_keeps_the_time(tmp_path):
    src = tmp_path / "s"
    src.write_bytes(b"payload")
    os.chmod(src, 0o4755)
    os.utime(src, (MTIME, MTIME))
    fs = FakeFS(Dir({"r": Dir()}))
    put(fs, str(src), "/r")  # an existing directory: lands inside
    f = fs.root.entries["r"].entries["s"]
    assert f.data == b"payload" and f.mode == 0o755 and f.mtime == MTIME


def test_put_a_tree_creates_it_or_lands_inside_an_existing_directory(tmp_path):
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "a").write_bytes(b"A")
    (tmp_path / "tree" / "sub" / "b").write_bytes(b"B")
    os.chmod(tmp_path / "tree" / "sub", 0o2750)
    fs = FakeFS(Dir())
    put(fs, str(tmp_path / "tree"), "/copy", recursive=True)
    copy = fs.root.entries["copy"]
    assert copy.entries["a"].data == b"A" and copy.entries["sub"].entries["b"].data == b"B"
    assert copy.entries["sub"].mode == 0o750
    put(fs, str(tmp_path / "tree"), "/copy", recursive=True)
    assert copy.entries["tree"].entries["sub"].entries["b"].data == b"B"


def test_put_a_directory_needs_recursive_and_a_directory_destination(tmp_path):
    (tmp_path / "d").mkdir()
    fs = FakeFS(Dir({"file": File(b"x")}))
    with pytest.raises(TransferFailed, match="is a directory"):
        put(fs, str(tmp_path / "d"), "/x")
    with pytest.raises(TransferFailed, match="/file: Not a directory"):
        put(fs, str(tmp_path / "d"), "/file", recursive=True)


def test_put_a_missing_local_source_names_it(tmp_path):
    with pytest.raises(TransferFailed) as info:
        put(FakeFS(Dir()), str(tmp_path / "nope"), "/x")
    assert info.value.msg == f"Transfer with h1 failed: {tmp_path / 'nope'}: No such file or directory"


# --- helpers for backends that run another program (scp) -------------------------------------


@pytest.mark.parametrize("localdir, key, rel, root", [
    ("/tmp/L", "h1", "x/y", "/tmp/L"),
    ("/tmp/L/", "h1", "x", "/tmp/L"),
    (".", "h1", "x", "."),
    ("/", "h1", "x", "/"),
    ("/srv/h1/out", "h1", "x", "/srv"),  # ambiguous: the outermost match, still an ancestor
])
def test_slurp_root_is_the_localdir_of_the_job(localdir, key, rel, root):
    job = GetJob(Target(key=key, host=key), "src", os.path.join(localdir, key, rel))
    assert os.path.normpath(transfer.slurp_root(job)) == os.path.normpath(root)


def test_check_local_destination_finds_a_symlink_leading_outside(tmp_path):
    root = tmp_path / "L"
    (root / "h1" / "tree").mkdir(parents=True)
    assert transfer.check_local_destination(str(root / "h1" / "f"), str(root), recursive=False) is None
    os.symlink("/etc", root / "h1" / "tree" / "deep")
    assert transfer.check_local_destination(str(root / "h1" / "tree"), str(root), recursive=False) is None
    assert transfer.check_local_destination(str(root / "h1" / "tree" / "deep"), str(root), recursive=False)
    why = transfer.check_local_destination(str(root / "h1"), str(root), recursive=True)
    assert why is not None and "deep" in why and "/etc" in why


def test_strip_special_bits_clears_setuid_below_the_path_only_inside_the_root(tmp_path):
    root = tmp_path / "L"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"")
    os.chmod(root / "d" / "f", 0o4755)
    os.chmod(root / "d", 0o2755)
    outside = tmp_path / "outside"
    outside.write_bytes(b"")
    os.chmod(outside, 0o4755)
    os.symlink(outside, root / "d" / "link")
    transfer.strip_special_bits(str(root / "d"), str(root))
    assert mode_of(root / "d") == 0o755 and mode_of(root / "d" / "f") == 0o755
    assert mode_of(outside) == 0o4755


@pytest.mark.parametrize("name, ok", [("a", True), ("a b", True), (".hidden", True), ("...", True),
                                      (".", False), ("..", False), ("", False), ("a/b", False),
                                      ("a\x00", False)])
def test_bad_name(name, ok):
    assert (transfer.bad_name(name) is None) is ok


def test_prepare_slurp_creates_the_parents_inside_localdir(tmp_path):
    job = GetJob(TARGET, "src", os.path.join(str(tmp_path / "L"), "h1", "a", "b", "f"))
    transfer.prepare_slurp(job)
    assert (tmp_path / "L" / "h1" / "a" / "b").is_dir() and not (tmp_path / "L" / "h1" / "a" / "b" / "f").exists()
    transfer.prepare_slurp(job)  # again: nothing to do


def test_prepare_slurp_never_creates_directories_outside_through_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "L").mkdir()
    os.symlink(outside, tmp_path / "L" / "h1")
    job = GetJob(TARGET, "src", os.path.join(str(tmp_path / "L"), "h1", "sub", "deeper", "f"))
    with pytest.raises(TransferFailed) as info:
        transfer.prepare_slurp(job)
    assert "refusing to write outside" in info.value.msg
    assert list(outside.iterdir()) == []
    os.makedirs(tmp_path / "L" / "in")
    os.unlink(tmp_path / "L" / "h1")
    os.symlink(tmp_path / "L" / "in", tmp_path / "L" / "h1")  # inside localdir: followed
    transfer.prepare_slurp(job)
    assert (tmp_path / "L" / "in" / "sub" / "deeper").is_dir()


def test_prepare_slurp_with_a_file_in_the_way_names_it(tmp_path):
    (tmp_path / "L" / "h1").mkdir(parents=True)
    (tmp_path / "L" / "h1" / "a").write_bytes(b"")
    with pytest.raises(TransferFailed) as info:
        transfer.prepare_slurp(GetJob(TARGET, "src", os.path.join(str(tmp_path / "L"), "h1", "a", "f")))
    assert info.value.msg.endswith(f"{tmp_path / 'L' / 'h1' / 'a'}: Not a directory")


@pytest.mark.parametrize("path, sftp", [("~", "."), ("~/", "."), ("~/x", "x"), ("~//x", "x"), ("x", "x"),
                                        ("/abs/x", "/abs/x"), ("~user/x", "~user/x")])
def test_sftp_path_is_relative_to_the_login_directory(path, sftp):
    assert transfer.sftp_path(path) == sftp
