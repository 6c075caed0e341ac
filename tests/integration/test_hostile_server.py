"""Slurp from a malicious SFTP server (parallax.testing.hostile): hostile names, modes, sizes, drops.

The first address serves the hostile tree, the second an honest one at the
same paths: every call covers "the rest of the batch is unaffected".
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

import parallax
from parallax.testing.hostile import HostileDir, HostileFile, HostileSSHHost

from helpers import lab_opts

BACKENDS = ["openssh", "paramiko", "asyncssh"]
IN_PROCESS = ["paramiko", "asyncssh"]

# case -> the hostile entry listed next to "good"
CLIMB = HostileDir({"sub/..": HostileDir({"sub/..": HostileDir({"sub/..": HostileDir({
    "evil": HostileFile(b"pwned")})})})})
BAD_NAMES = {
    "climb": ("sub/..", CLIMB),
    "slash": ("a/b", HostileFile(b"pwned")),
    "empty": ("", HostileFile(b"pwned")),
    "nul": ("x\x00y", HostileFile(b"pwned")),
}
SHORT = os.urandom(300_000)
ZERO = os.urandom(1_000_000)


def tree(hostile: bool) -> HostileDir:
    names = HostileDir({case: HostileDir({"good": HostileFile(b"good"), **({bad: node} if hostile else {})})
                        for case, (bad, node) in BAD_NAMES.items()})
    # ".." listed (again) as a directory with content: skipped; "." listed as a file: refused
    dots = HostileDir({"f": HostileFile(b"ok"), **({"..": HostileDir({"evil": HostileFile(b"pwned")})}
                                                   if hostile else {})})
    dotfile = HostileDir({"f": HostileFile(b"ok"), **({".": HostileFile(b"pwned")} if hostile else {})})
    modes = HostileDir({
        "suid": HostileFile(b"u", mode=0o4755 if hostile else 0o755),
        "sgid": HostileFile(b"g", mode=0o2755 if hostile else 0o755),
        "dir": HostileDir({"f": HostileFile(b"f", mode=0o6750 if hostile else 0o750)},
                          mode=0o2775 if hostile else 0o775),
    }, mode=0o4755 if hostile else 0o755)
    sizes = HostileDir({
        "short": HostileFile(SHORT, size=10 if hostile else None),  # listed smaller than it is
        "long": HostileFile(b"0123456789", size=2**40 if hostile else None),  # listed as 1 TiB
        "zero": HostileFile(ZERO, size=0 if hostile else None),
    })
    latin = HostileDir({"good": HostileFile(b"good"), **({"caf\udce9": HostileFile(b"latin-1")} if hostile else {})})
    drop = HostileFile(b"0123456789abcdef", length=64 << 20, drop_at=(2 << 20) if hostile else None)
    huge = HostileFile(b"0123456789abcdef", length=(8 << 30) if hostile else 16)
    return HostileDir({"names": names, "dots": dots, "dotfile": dotfile, "modes": modes, "sizes": sizes,
                       "latin": latin, "drop": drop, "huge": huge})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with HostileSSHHost([tree(True), tree(False)], workdir=str(tmp_path_factory.mktemp("hostile"))) as host:
        yield host


def slurp(server, backend, src, localdir, **kw):
    return parallax.slurp(server.hosts, src, "got", localdir=str(localdir), **lab_opts(server, backend, **kw))


def written(top) -> dict[str, bytes]:
    out = {}
    for d, _, names in os.walk(top):
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                out[os.path.relpath(os.path.join(d, n), top)] = f.read()
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["climb", "slash"])
def test_a_name_with_a_slash_is_refused_on_every_backend(server, backend, case, tmp_path):
    res = slurp(server, backend, f"/names/{case}", tmp_path / "L", recursive=True)
    bad, honest = res[server.hosts[0]], res[server.hosts[1]]
    assert isinstance(bad, parallax.TransferFailed), bad
    name = BAD_NAMES[case][0]
    assert f"/names/{case}: the server listed a file name with a slash ({name!r})" in bad.msg
    assert isinstance(honest, parallax.SlurpResult), honest
    assert written(tmp_path)[os.path.join("L", server.hosts[1], "got", "good")] == b"good"
    assert b"pwned" not in written(tmp_path).values()


@pytest.mark.parametrize("backend", IN_PROCESS)
@pytest.mark.parametrize("case, why", [("empty", "an empty file name"), ("nul", "a file name with a NUL")])
def test_an_empty_or_nul_name_is_refused(server, backend, case, why, tmp_path):
    res = slurp(server, backend, f"/names/{case}", tmp_path / "L", recursive=True)
    bad = res[server.hosts[0]]
    assert isinstance(bad, parallax.TransferFailed), bad
    assert f"/names/{case}: the server listed {why}" in bad.msg
    assert isinstance(res[server.hosts[1]], parallax.SlurpResult)
    assert b"pwned" not in written(tmp_path).values()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_name_that_is_not_utf8(server, backend, tmp_path):
    # a valid POSIX name; scp copies it as bytes, the SFTP libraries cannot decode it: a clear failure
    res = slurp(server, backend, "/latin", tmp_path / "L", recursive=True)
    assert isinstance(res[server.hosts[1]], parallax.SlurpResult)
    bad = res[server.hosts[0]]
    if backend == "openssh":
        assert isinstance(bad, parallax.SlurpResult), bad
        got = os.path.join(os.fsencode(tmp_path / "L" / server.hosts[0] / "got"), b"caf\xe9")
        with open(got, "rb") as f:
            assert f.read() == b"latin-1"
    else:
        assert isinstance(bad, parallax.TransferFailed), bad
        assert bad.msg.endswith("/latin: the server listed a file name that is not UTF-8"), bad.msg


@pytest.mark.parametrize("case", ["empty", "nul"])
def test_openssh_writes_nothing_outside_for_an_empty_or_nul_name(server, case, tmp_path):
    # scp (C strings) cannot even see these names; whatever it reports, nothing lands outside
    res = slurp(server, "openssh", f"/names/{case}", tmp_path / "L", recursive=True)
    assert isinstance(res[server.hosts[1]], parallax.SlurpResult)
    outside = {k: v for k, v in written(tmp_path).items() if not k.startswith(os.path.join("L", server.hosts[0]))
               and not k.startswith(os.path.join("L", server.hosts[1]))}
    assert outside == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_dot_entries_are_never_followed(server, backend, tmp_path):
    res = slurp(server, backend, "/dots", tmp_path / "L", recursive=True)
    for host in server.hosts:
        assert isinstance(res[host], parallax.SlurpResult), res[host]
        assert written(tmp_path / "L" / host) == {os.path.join("got", "f"): b"ok"}
    assert b"pwned" not in written(tmp_path).values()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dot_listed_as_a_file_is_refused(server, backend, tmp_path):
    res = slurp(server, backend, "/dotfile", tmp_path / "L", recursive=True)
    if backend == "paramiko":  # paramiko's listdir drops "." and ".." before parallax sees them
        assert written(tmp_path / "L" / server.hosts[0]) == {os.path.join("got", "f"): b"ok"}
    else:
        assert isinstance(res[server.hosts[0]], parallax.TransferFailed), res[server.hosts[0]]
        assert ("/dotfile/." if backend == "openssh" else "/dotfile: the server listed the file name '.'") \
            in res[server.hosts[0]].msg
    assert isinstance(res[server.hosts[1]], parallax.SlurpResult), res[server.hosts[1]]
    assert b"pwned" not in written(tmp_path).values()


@pytest.mark.parametrize("backend", BACKENDS)
def test_setuid_and_setgid_never_arrive(server, backend, tmp_path):
    res = slurp(server, backend, "/modes", tmp_path / "L", recursive=True)
    expected = {".": 0o755, "suid": 0o755, "sgid": 0o755, "dir": 0o775, "dir/f": 0o750}
    for host in server.hosts:
        got = tmp_path / "L" / host / "got"
        assert isinstance(res[host], parallax.SlurpResult), res[host]
        modes = {p: stat.S_IMODE(os.stat(got / p).st_mode) for p in expected}
        if backend == "openssh":  # scp -p sets no directory modes (the umask applies): only files exact
            assert {p: m for p, m in modes.items() if p in ("suid", "sgid", "dir/f")} == \
                {p: m for p, m in expected.items() if p in ("suid", "sgid", "dir/f")}, (host, modes)
            assert not any(m & 0o7000 for m in modes.values()), (host, modes)
        else:
            assert modes == expected, (host, modes)
    single = slurp(server, backend, "/modes/suid", tmp_path / "one")
    path = single[server.hosts[0]].path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_listed_sizes_are_not_trusted(server, backend, tmp_path):
    res = slurp(server, backend, "/sizes", tmp_path / "L", recursive=True)
    for host in server.hosts:
        assert isinstance(res[host], parallax.SlurpResult), res[host]
        assert written(tmp_path / "L" / host / "got") == {"short": SHORT, "long": b"0123456789", "zero": ZERO}


def test_openssh_with_lying_sizes_ends_and_writes_only_what_was_served(server, tmp_path):
    res = slurp(server, "openssh", "/sizes", tmp_path / "L", recursive=True)
    assert written(tmp_path / "L" / server.hosts[1] / "got") == {"short": SHORT, "long": b"0123456789", "zero": ZERO}
    for name, data in written(tmp_path / "L" / server.hosts[0] / "got").items():
        true = {"short": SHORT, "long": b"0123456789", "zero": ZERO}[name]
        assert true.startswith(data), name  # a prefix of the real bytes, never anything else
    assert isinstance(res[server.hosts[0]], (parallax.SlurpResult, parallax.TransferFailed))


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_a_timeout_mid_download_ends_that_host_only(server, backend, tmp_path):
    res = slurp(server, backend, "/huge", tmp_path / "L", timeout=2)
    assert isinstance(res[server.hosts[0]], parallax.Timeout), res[server.hosts[0]]
    assert written(tmp_path / "L" / server.hosts[1]) == {"got": b"0123456789abcdef"}


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_in_a_session_a_timed_out_download_leaves_the_connection_usable(server, backend, tmp_path):
    # The connection is kept if the cancelled transfer lets go of it within CANCEL_GRACE, else
    # closed (by design: the grace is spent inside the caller's limit; a loaded CI machine was
    # seen to pass it once on paramiko, whose transfer runs in a thread).  So the connection
    # must work after every timeout, and be the same one after 3 of at most 4.  This catches a
    # fallback taken always or often, not a rare one: with a grace of 0.1 ms paramiko still
    # kept it 2 times in 10, and this failed in 1 of 2 runs of that.
    new_logins: list[int] = []
    with parallax.Session(server.hosts[:1], localdir=str(tmp_path / "L"), **lab_opts(server, backend)) as s:
        while new_logins.count(0) < 3 and len(new_logins) < 4:
            first = s.slurp("/huge", "got", timeout=2)[server.hosts[0]]
            assert isinstance(first, parallax.Timeout), first
            logins = server.login_count()
            again = s.run("echo still here")[server.hosts[0]]
            assert again.stdout == b"still here\n", again
            new_logins.append(server.login_count() - logins)  # 0: the same connection
    assert new_logins.count(0) >= 3, f"timed-out downloads cost the connection (new logins per try: {new_logins})"


CLIENT = textwrap.dedent("""
    import json, sys
    import parallax
    hosts, key, known, user, backend, localdir = json.loads(sys.argv[1])
    res = parallax.slurp(hosts, "/drop", "got", localdir=localdir, ssh_key=key, known_hosts=known,
                         default_user=user, backend=backend)
    print(json.dumps({h: type(r).__name__ for h, r in res.items()}))
    print(json.dumps({h: str(r) for h, r in res.items()}))
""")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dropped_connection_is_a_result_without_a_traceback(server, backend, tmp_path):
    # A separate client process: its stderr is what a user of parallax would see.
    args = json.dumps([server.hosts, server.client_key, server.known_hosts, server.user, backend,
                       str(tmp_path / "L")])
    proc = subprocess.run([sys.executable, "-c", CLIENT, args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    kinds_line, messages = proc.stdout.splitlines()[:2]
    kinds = json.loads(kinds_line)
    assert kinds[server.hosts[1]] == "SlurpResult"
    assert issubclass(getattr(parallax, kinds[server.hosts[0]]), parallax.ConnectionFailed), messages
    assert proc.stderr == ""  # no traceback, no "Task exception was never retrieved", no asyncio warning


def test_paramiko_prefetch_thread_failures_are_kept_off_stderr():
    """What the paramiko backend's excepthook relies on still holds, and it passes other threads on."""
    import paramiko

    from parallax.backends import paramiko_sftp as backend

    # paramiko starts its read-ahead thread with target=SFTPFile._prefetch_thread and no name
    assert callable(getattr(paramiko.SFTPFile, "_prefetch_thread", None)), \
        "paramiko changed: see parallax.backends.paramiko_sftp._quiet_prefetch_threads"

    class Probe:
        def _prefetch_thread(self) -> None:
            pass

    t = threading.Thread(target=Probe()._prefetch_thread)
    assert t.name.endswith("(_prefetch_thread)"), t.name  # how Python names an unnamed thread

    seen: list[str] = []
    hook = backend._prefetch_excepthook(lambda args: seen.append(args.thread.name))

    class Args:
        exc_type, exc_value, exc_traceback, thread = OSError, OSError("Socket is closed"), None, t

    hook(Args)
    assert seen == []  # swallowed (logged at debug)
    Args.exc_type, Args.exc_value = ValueError, ValueError("a bug")
    hook(Args)
    assert seen == [t.name]  # not a connection error: passed on
    Args.exc_type, Args.exc_value, Args.thread = OSError, OSError("x"), threading.Thread(target=print)
    hook(Args)
    assert seen[-1] == Args.thread.name  # not a prefetch thread: passed on
