"""Scheduler, API and event consumers through the public API on the in-memory mock backend.

No SSH here: ``backend="mock"`` answers from a :class:`MockHosts` description
while the real planner, scheduler, events and result assembly run.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import parallax
import parallax.aio
from parallax import scheduler as scheduler_module
from parallax.backends.mock import FAILURES, MockBackend, MockHosts, MockResponse
from parallax.errors import (
    AuthenticationFailed,
    BadInput,
    Cancelled,
    CommandFailed,
    ConnectionFailed,
    ConnectionLost,
    Error,
    HostKeyChanged,
    HostKeyUnknown,
    NameResolutionFailed,
    Timeout,
    TransferFailed,
    UnsupportedOption,
)
from parallax.results import CallResult, CopyResult, SlurpResult


@pytest.fixture(autouse=True)
def _isolate(monkeypatch):
    """No PARALLAX_* from the developer's shell; fast retries."""
    for name in list(os.environ):
        if name.startswith("PARALLAX_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(scheduler_module, "RETRY_DELAY", 0.01)


def mock_call(hosts, cmd="uptime", mock=None, **kw):
    return parallax.call(hosts, cmd, backend=MockBackend(mock or MockHosts()), **kw)


# --- results and errors -------------------------------------------------------------


def test_call_success_and_unpacking():
    m = MockHosts(default=MockResponse(stdout=b"ok\n", stderr=b"note\n"))
    res = mock_call(["web1", "web2"], mock=m)
    assert list(res) == ["web1", "web2"]
    rc, out, err = res["web1"]
    assert (rc, out, err) == (0, b"ok\n", b"note\n")
    assert isinstance(res["web2"], CallResult)
    assert res["web2"].host == "web2"
    assert res["web2"].duration >= 0
    assert m.calls == [("web1", "run", "uptime"), ("web2", "run", "uptime")]


def test_call_nonzero_is_command_failed():
    m = MockHosts(responses={"web1": MockResponse(rc=1, stdout=b"partial\n", stderr=b"boom\n")})
    res = mock_call(["web1", "web2"], mock=m)
    err = res["web1"]
    assert isinstance(err, CommandFailed)
    assert err.rc == 1
    assert "Exited with error code 1" in str(err)
    assert "boom" in str(err)
    assert err.stdout == b"partial\n"
    assert err.host == "web1"
    assert err.task is not None and err.task.key == "web1"
    assert isinstance(res["web2"], CallResult)


def test_run_nonzero_is_a_result():
    m = MockHosts(default=MockResponse(rc=3, stderr=b"warn\n"))
    res = parallax.run(["a"], "false", backend=MockBackend(m))
    rc, out, err = res["a"]
    assert (rc, out, err) == (3, b"", b"warn\n")


def test_run_transport_failure_is_still_an_error():
    m = MockHosts(default=MockResponse(fail="refused"))
    res = parallax.run(["a"], "true", backend=MockBackend(m))
    assert isinstance(res["a"], ConnectionFailed)


def test_result_keys_as_written():
    m = MockHosts()
    res = mock_call(["root@web1:2222", ("web2", 2200, "admin"), ("web3",), "[::1]:22"], mock=m)
    assert list(res) == ["root@web1:2222", "web2", "web3", "[::1]:22"]
    assert m.targets["root@web1:2222"].user == "root"
    assert m.targets["root@web1:2222"].port == 2222
    assert (m.targets["web2"].user, m.targets["web2"].port) == ("admin", 2200)
    assert m.targets["[::1]:22"].host == "::1"


def test_duplicate_key_rejected_before_anything_runs():
    m = MockHosts()
    with pytest.raises(ValueError, match="duplicate host key 'web1'"):
        mock_call(["web1", "web2", ("web1",)], mock=m)
    assert m.calls == []


def test_bad_host_rejected_before_anything_runs():
    m = MockHosts()
    with pytest.raises(ValueError, match="-oProxyCommand"):
        mock_call(["web1", "-oProxyCommand=x"], mock=m)
    assert m.calls == []


def test_results_in_input_order_despite_completion_order():
    m = MockHosts(responses={"slow": MockResponse(delay=0.05)})
    res = mock_call(["slow", "fast1", "fast2"], mock=m)
    assert list(res) == ["slow", "fast1", "fast2"]


# --- limit ---------------------------------------------------------------------------


def test_limit_respected_exactly():
    m = MockHosts(default=MockResponse(delay=0.01))
    hosts = [f"h{i:03d}" for i in range(100)]
    res = mock_call(hosts, mock=m, limit=10)
    assert m.max_concurrent == 10
    assert all(isinstance(r, CallResult) for r in res.values())
    assert len(res) == 100
    assert m.running == 0


def test_limit_one_is_sequential():
    m = MockHosts(default=MockResponse(delay=0.001))
    mock_call(["a", "b", "c"], mock=m, limit=1)
    assert m.max_concurrent == 1
    assert [c[0] for c in m.calls] == ["a", "b", "c"]


def test_default_limit_is_32():
    m = MockHosts(default=MockResponse(delay=0.01))
    mock_call([f"h{i}" for i in range(40)], mock=m)
    assert m.max_concurrent == 32


def test_parallax_par_sets_limit(monkeypatch):
    monkeypatch.setenv("PARALLAX_PAR", "3")
    m = MockHosts(default=MockResponse(delay=0.01))
    mock_call([f"h{i}" for i in range(10)], mock=m)
    assert m.max_concurrent == 3


# --- timeouts and deadline ------------------------------------------------------------


def test_per_host_timeout():
    m = MockHosts(responses={"web2": MockResponse(delay=5.0)})
    start = time.monotonic()
    res = mock_call(["web1", "web2", "web3"], mock=m, timeout=0.5)
    elapsed = time.monotonic() - start
    assert isinstance(res["web2"], Timeout)
    assert "0.5" in str(res["web2"])
    assert isinstance(res["web1"], CallResult) and isinstance(res["web3"], CallResult)
    assert elapsed < 4.0  # the slow host was stopped, not waited for
    assert m.cancelled == ["web2"]
    assert m.running == 0


def test_timeout_keeps_output_received_so_far():
    m = MockHosts(default=MockResponse(stdout=[b"first\n", b"never\n"], chunk_delay=5.0))
    res = mock_call(["a"], mock=m, timeout=0.2)
    assert isinstance(res["a"], Timeout)
    assert res["a"].stdout == b"first\n"


def test_timeout_zero_means_no_limit():
    m = MockHosts(default=MockResponse(delay=0.05))
    res = mock_call(["a"], mock=m, timeout=0)
    assert isinstance(res["a"], CallResult)


def test_overall_deadline_running_timeout_unstarted_cancelled():
    m = MockHosts(responses={"slow1": MockResponse(delay=5.0), "slow2": MockResponse(delay=5.0)})
    start = time.monotonic()
    res = mock_call(["slow1", "fast", "slow2", "never"], mock=m, limit=2, deadline=0.3)
    assert time.monotonic() - start < 4.0
    assert isinstance(res["fast"], CallResult)
    assert isinstance(res["slow1"], Timeout) and "deadline" in str(res["slow1"])
    assert isinstance(res["slow2"], Timeout)
    assert isinstance(res["never"], Cancelled)
    assert not isinstance(res["never"], Timeout)
    assert list(res) == ["slow1", "fast", "slow2", "never"]
    assert [c[0] for c in m.calls] == ["slow1", "fast", "slow2"]  # "never" never reached the backend
    assert sorted(m.cancelled) == ["slow1", "slow2"]


# --- retries -------------------------------------------------------------------------


def test_retry_after_connection_failure_succeeds():
    m = MockHosts(responses={"flaky": MockResponse(fail="refused", fail_times=1, stdout=b"hi\n")})
    res = mock_call(["flaky"], mock=m, retries=1)
    assert res["flaky"] == (0, b"hi\n", b"")
    assert m.calls == [("flaky", "run", "uptime"), ("flaky", "run", "uptime")]
    assert m.disconnects == ["flaky", "flaky"]  # before the retry, and after the host's last job


def test_no_retry_by_default():
    m = MockHosts(responses={"flaky": MockResponse(fail="refused", fail_times=1)})
    res = mock_call(["flaky"], mock=m)
    assert isinstance(res["flaky"], ConnectionFailed)
    assert m.calls == [("flaky", "run", "uptime")]


def test_retries_exhausted():
    m = MockHosts(responses={"down": MockResponse(fail="refused")})
    res = mock_call(["down"], mock=m, retries=2)
    assert isinstance(res["down"], ConnectionFailed)
    assert [c[1] for c in m.calls] == ["run", "run", "run"]
    assert m.disconnects == ["down"] * 3


def test_response_sequence_per_attempt():
    m = MockHosts(responses={"h": [MockResponse(fail="dns"), MockResponse(fail="refused"), MockResponse(rc=0)]})
    res = mock_call(["h"], mock=m, retries=5)
    assert isinstance(res["h"], CallResult)
    assert m.attempts["h"] == 3


@pytest.mark.parametrize("response", [
    MockResponse(rc=1, stderr=b"fail\n"),
    MockResponse(fail="auth"),
    MockResponse(fail="hostkey-changed"),
])
def test_non_connection_failures_never_retried(response):
    m = MockHosts(default=response)
    res = mock_call(["h"], mock=m, retries=3)
    assert isinstance(res["h"], Error)
    assert m.calls == [("h", "run", "uptime")]


def test_connect_timeout_is_a_connection_failure_and_is_retried():
    m = MockHosts(responses={"h": MockResponse(fail="timeout", fail_times=1)})
    res = mock_call(["h"], mock=m, retries=1)
    assert isinstance(res["h"], CallResult)
    assert m.attempts["h"] == 2


def test_connection_lost_after_command_ran_is_not_retried():
    m = MockHosts(responses={"h": MockResponse(stdout=b"x", fail="lost", fail_times=1)})
    res = mock_call(["h"], mock=m, retries=1)
    assert isinstance(res["h"], ConnectionLost)
    assert [c[1] for c in m.calls] == ["run"]
    assert res["h"].stdout == b"x"


# --- cancellation --------------------------------------------------------------------


def test_aio_call_cancelled_propagates_and_leaves_no_tasks():
    m = MockHosts(default=MockResponse(delay=5.0))

    async def main():
        task = asyncio.create_task(parallax.aio.call([f"h{i}" for i in range(5)], "sleep",
                                                     backend=MockBackend(m), limit=2))
        while m.running < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return asyncio.all_tasks() - {asyncio.current_task()}

    start = time.monotonic()
    leftover = asyncio.run(main())
    assert time.monotonic() - start < 4.0
    assert leftover == set()
    assert sorted(m.cancelled) == ["h0", "h1"]
    assert m.running == 0
    assert len(m.calls) == 2  # unstarted hosts never reached the backend


def test_aio_twins():
    m = MockHosts(default=MockResponse(rc=2), files={"a": {"/f": b"data"}})

    async def main():
        called = await parallax.aio.call(["a"], "x", backend=MockBackend(m))
        ran = await parallax.aio.run(["a"], "x", backend=MockBackend(m))
        return called, ran

    called, ran = asyncio.run(main())
    assert isinstance(called["a"], CommandFailed) and called["a"].rc == 2
    assert ran["a"].rc == 2


def test_sync_api_inside_running_loop():
    m = MockHosts(default=MockResponse(stdout=b"ok\n"))

    async def main():
        return parallax.call(["a", "b"], "uptime", backend=MockBackend(m))

    res = asyncio.run(main())
    assert res["a"] == (0, b"ok\n", b"")
    assert res["b"] == (0, b"ok\n", b"")


def test_sync_api_inside_running_loop_propagates_errors():
    async def main():
        return parallax.call(["a", "a"], "uptime", backend=MockBackend(MockHosts()))

    with pytest.raises(ValueError, match="duplicate"):
        asyncio.run(main())


# --- event consumers -------------------------------------------------------------------


def test_print_out_prefixes_lines(capsys):
    m = MockHosts(responses={"web1": MockResponse(stdout=[b"one\ntw", b"o\nthree"]),
                             "web2": MockResponse(stderr=b"oops\n")})
    mock_call(["web1", "web2"], mock=m, print_out=True)
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["web1: one", "web1: two", "web1: three"]
    assert "web2: oops" in captured.err.splitlines()


def test_outdir_errdir_one_file_per_host(tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    m = MockHosts(responses={"a": MockResponse(stdout=[b"a1\n", b"a2\n"], stderr=b"ae\n"),
                             "b": MockResponse(stdout=b"b1\n", rc=1)})
    mock_call(["a", "b"], mock=m, outdir=str(out), errdir=str(err))
    assert (out / "a").read_bytes() == b"a1\na2\n"
    assert (out / "b").read_bytes() == b"b1\n"
    assert (err / "a").read_bytes() == b"ae\n"
    assert (err / "b").read_bytes() == b""
    assert sorted(os.listdir(out)) == ["a", "b"]


def test_parallax_outdir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PARALLAX_OUTDIR", str(tmp_path))
    mock_call(["a"], mock=MockHosts(default=MockResponse(stdout=b"x\n")))
    assert (tmp_path / "a").read_bytes() == b"x\n"


def test_callbacks_are_called():
    events = []
    m = MockHosts(responses={"a": MockResponse(stdout=[b"1", b"2"], stderr=b"e"), "b": MockResponse(fail="auth")})
    res = mock_call(
        ["a", "b"], mock=m, limit=1,
        on_start=lambda host: events.append(("start", host)),
        on_output=lambda host, stream, data: events.append(("output", host, stream, data)),
        on_finish=lambda host, result: events.append(("finish", host, result)),
    )
    assert events == [
        ("start", "a"),
        ("output", "a", "stdout", b"1"),
        ("output", "a", "stdout", b"2"),
        ("output", "a", "stderr", b"e"),
        ("finish", "a", res["a"]),
        ("start", "b"),
        ("finish", "b", res["b"]),
    ]
    assert isinstance(events[-1][2], AuthenticationFailed)


def test_max_output_caps_and_reports_truncated():
    m = MockHosts(default=MockResponse(stdout=[b"0123456789", b"abcdef"], stderr=b"xyz"))
    res = mock_call(["a"], mock=m, max_output=12)
    assert res["a"].stdout == b"0123456789ab"
    assert res["a"].stderr == b"xyz"
    assert res["a"].truncated == 4


def test_inline_false_keeps_no_output_but_callbacks_see_it():
    seen = []
    m = MockHosts(default=MockResponse(stdout=b"out", stderr=b"err"))
    res = mock_call(["a"], mock=m, inline=False, on_output=lambda h, s, d: seen.append(d))
    assert res["a"] == (0, b"", b"")
    assert seen == [b"out", b"err"]
    res = mock_call(["a"], mock=m, inline=False, inline_stdout=True)
    assert res["a"] == (0, b"out", b"")


def test_raising_on_finish_does_not_lose_results():
    m = MockHosts()

    def on_finish(host, result):
        if host == "b":
            raise RuntimeError("callback bug")

    res = mock_call(["a", "b", "c"], mock=m, limit=1, on_finish=on_finish)
    assert [type(r) for r in res.values()] == [CallResult, CallResult, CallResult]


def test_input_stream_reaches_every_host():
    m = MockHosts()
    mock_call(["a", "b"], "cat", mock=m, input_stream=b"payload")
    assert m.stdin == {"a": b"payload", "b": b"payload"}
    m2 = MockHosts()
    mock_call(["a"], "cat", mock=m2)
    assert m2.stdin == {}


def test_callable_response_depends_on_command():
    def answer(host, command):
        return MockResponse(stdout=f"{host}:{command}".encode(), rc=0 if command == "good" else 1)

    m = MockHosts(default=answer)
    assert mock_call(["a"], "good", mock=m)["a"].stdout == b"a:good"
    assert isinstance(mock_call(["a"], "bad", mock=m)["a"], CommandFailed)


def test_response_by_bare_host_name():
    m = MockHosts(responses={"web1": MockResponse(rc=4)})
    assert parallax.run(["root@web1:2222"], "x", backend=MockBackend(m))["root@web1:2222"].rc == 4


# --- failures map to the shared classes with openssh's message shapes --------------------


@pytest.mark.parametrize(("kind", "cls", "text"), [
    ("refused", ConnectionFailed, "Connection to root@db:2222 failed: "),
    ("dns", NameResolutionFailed, "Could not resolve hostname db: "),
    ("auth", AuthenticationFailed, "Authentication failed for root@db:2222: "),
    ("hostkey-unknown", HostKeyUnknown, "Host key for root@db:2222 is not trusted: "),
    ("hostkey-changed", HostKeyChanged, "Host key for root@db:2222 has changed: "),
    ("timeout", Timeout, "Connection to root@db:2222 timed out: "),
    ("transfer", TransferFailed, "Transfer with root@db:2222 failed: "),
    ("lost", ConnectionLost, "Connection to root@db:2222 lost: "),
])
def test_failure_kinds(kind, cls, text):
    m = MockHosts(default=MockResponse(fail=kind))
    res = mock_call(["root@db:2222"], mock=m)
    err = res["root@db:2222"]
    assert type(err) is cls
    assert err.msg.startswith(text)
    # 1.0's text, which crmsh parses: 255 (ssh's status) for a failure without a remote status
    assert str(err) == f"Exited with error code 255, Error output: {err.msg}"
    assert err.host == "root@db:2222"


def test_failure_list_is_complete():
    assert set(FAILURES) == {"refused", "dns", "auth", "hostkey-unknown", "hostkey-changed", "timeout",
                             "transfer", "lost"}


def test_custom_failure_message():
    m = MockHosts(default=MockResponse(fail="auth", message="Permission denied (publickey)."))
    assert mock_call(["h"], mock=m)["h"].msg == "Authentication failed for h: Permission denied (publickey)."


def test_lost_connection_keeps_output():
    m = MockHosts(default=MockResponse(stdout=b"half", fail="lost"))
    err = mock_call(["h"], mock=m)["h"]
    assert isinstance(err, ConnectionFailed)
    assert err.stdout == b"half"


def test_bad_mock_response_rejected():
    with pytest.raises(ValueError, match="fail="):
        MockResponse(fail="nope")
    with pytest.raises(ValueError, match="stdout"):
        MockResponse(stdout="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fail_times"):
        MockResponse(fail="dns", fail_times=-1)


def test_mock_backend_requires_mock_hosts():
    with pytest.raises(BadInput, match=r'backend="mock" needs mock=MockHosts'):
        parallax.call(["a"], "x", backend="mock")
    with pytest.raises(ValueError, match="mock="):
        parallax.call(["a"], "x", backend=MockBackend({"a": 1}))


def test_mock_backend_is_registered():
    from parallax.plugins import backend_factory

    with pytest.warns(DeprecationWarning, match="mock= option is deprecated"):
        backend = backend_factory("mock")(parallax.options.resolve(parallax.Options(mock=MockHosts()), {}))
    assert isinstance(backend, MockBackend)
    assert backend.name == "mock"


def test_unsupported_option_refused_before_anything_runs():
    m = MockHosts(supported_options=frozenset({"port"}))
    with pytest.raises(UnsupportedOption, match="Compression"):
        mock_call(["a", "b"], mock=m, ssh_options=["Port=22", "Compression=yes"])
    assert m.calls == []
    assert isinstance(mock_call(["a"], mock=m, ssh_options=["Port=22"])["a"], CallResult)


def test_local_shortcut_never_bypasses_the_mock_backend():
    import socket

    m = MockHosts(default=MockResponse(stdout=b"mocked"))
    me = socket.gethostname()
    res = parallax.run([me], "echo local", backend=MockBackend(m))
    assert res[me].stdout == b"mocked"
    assert m.calls == [(me, "run", "echo local")]


# --- copy and slurp ----------------------------------------------------------------------


def test_copy_file(tmp_path):
    src = tmp_path / "app.conf"
    src.write_bytes(b"conf")
    m = MockHosts()
    res = parallax.copy(["a", "b"], str(src), "/etc/app.conf", backend=MockBackend(m))
    rc, out, err = res["a"]
    assert rc == 0
    assert isinstance(res["b"], CopyResult)
    assert (res["b"].src, res["b"].dst) == (str(src), "/etc/app.conf")
    assert m.files == {"a": {"/etc/app.conf": b"conf"}, "b": {"/etc/app.conf": b"conf"}}
    assert m.calls == [("a", "put", "/etc/app.conf"), ("b", "put", "/etc/app.conf")]


def test_copy_file_into_existing_remote_directory(tmp_path):
    src = tmp_path / "f.txt"
    src.write_bytes(b"x")
    m = MockHosts(files={"a": {"/srv/existing": b""}})
    parallax.copy(["a"], str(src), "/srv", backend=MockBackend(m))
    assert m.files["a"]["/srv/f.txt"] == b"x"


def test_copy_directory_recursive(tmp_path):
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "top").write_bytes(b"1")
    (d / "sub" / "deep").write_bytes(b"2")
    m = MockHosts(files={"b": {"/opt/x": b""}})
    parallax.copy(["a", "b"], str(d), "/opt", backend=MockBackend(m), recursive=True)
    assert m.files["a"] == {"/opt/top": b"1", "/opt/sub/deep": b"2"}  # "as" a new dst
    assert m.files["b"] == {"/opt/x": b"", "/opt/tree/top": b"1", "/opt/tree/sub/deep": b"2"}  # "into"


def test_copy_directory_is_recursive_by_default_as_in_1_0(tmp_path):
    d = tmp_path / "tree"
    d.mkdir()
    (d / "top").write_bytes(b"1")
    m = MockHosts()
    res = parallax.copy(["a"], str(d), "/opt", parallax.Options(), backend=MockBackend(m))
    assert not isinstance(res["a"], parallax.Error), res["a"]
    assert m.files["a"] == {"/opt/top": b"1"}


def test_copy_directory_without_recursive_fails_per_host(tmp_path):
    m = MockHosts()
    res = parallax.copy(["a", "b"], str(tmp_path), "/opt", backend=MockBackend(m), recursive=False)
    assert all(isinstance(r, TransferFailed) and "recursive" in r.msg for r in res.values()), res
    assert m.calls == []


@pytest.mark.parametrize("kind", ["missing", "unreadable"])
def test_copy_bad_local_source_fails_per_host_not_raises(tmp_path, kind):
    src = tmp_path / "src"
    if kind == "unreadable":
        src.write_bytes(b"x")
        src.chmod(0)
        if os.access(src, os.R_OK):  # root reads anything: make it unreadable another way
            src.unlink()
            src.symlink_to(src)  # a symlink loop: open() and stat() fail
    finished = []
    m = MockHosts()
    res = parallax.copy(["a", "b"], str(src), "/x", backend=MockBackend(m),
                        on_finish=lambda host, r: finished.append(host))
    assert set(res) == {"a", "b"}
    for r in res.values():
        assert isinstance(r, TransferFailed), r
        assert str(src) in str(r)
        assert str(r).startswith("Exited with error code 255, Error output: ")
    assert m.calls == []  # nothing was sent anywhere
    assert sorted(finished) == ["a", "b"]  # the per-host events still fire


def test_copy_failure(tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"")
    m = MockHosts(responses={"a": MockResponse(fail="transfer")})
    res = parallax.copy(["a", "b"], str(src), "/f", backend=MockBackend(m))
    assert isinstance(res["a"], TransferFailed)
    assert "a" not in m.files
    assert m.files["b"] == {"/f": b""}


def test_slurp_file(tmp_path):
    m = MockHosts(files={"web1": {"/etc/hostname": b"web1\n"}, "web2": {"/etc/hostname": b"web2\n"}})
    res = parallax.slurp(["web1", "web2"], "/etc/hostname", "hostname", backend=MockBackend(m),
                         localdir=str(tmp_path))
    rc, out, err, path = res["web1"]
    assert rc == 0
    assert path == os.path.join(str(tmp_path), "web1", "hostname")
    assert open(path, "rb").read() == b"web1\n"
    assert isinstance(res["web2"], SlurpResult)
    assert (tmp_path / "web2" / "hostname").read_bytes() == b"web2\n"
    assert m.calls == [("web1", "get", "/etc/hostname"), ("web2", "get", "/etc/hostname")]


def test_slurp_missing_file_is_transfer_failed(tmp_path):
    m = MockHosts(files={"a": {"/f": b"x"}})
    res = parallax.slurp(["a", "b"], "/f", "f", backend=MockBackend(m), localdir=str(tmp_path))
    assert isinstance(res["a"], SlurpResult)
    assert isinstance(res["b"], TransferFailed)
    assert "No such file" in str(res["b"])
    assert not (tmp_path / "b" / "f").exists()


def test_slurp_directory_recursive(tmp_path):
    m = MockHosts(files={"a": {"/etc/app/one": b"1", "/etc/app/sub/two": b"2", "/etc/other": b"no"}})
    res = parallax.slurp(["a"], "/etc/app", "app", backend=MockBackend(m), localdir=str(tmp_path),
                         recursive=True)
    assert res["a"].path == os.path.join(str(tmp_path), "a", "app")
    assert (tmp_path / "a" / "app" / "one").read_bytes() == b"1"
    assert (tmp_path / "a" / "app" / "sub" / "two").read_bytes() == b"2"
    res = parallax.slurp(["a"], "/etc/app", "app2", backend=MockBackend(m), localdir=str(tmp_path),
                         recursive=False)
    assert isinstance(res["a"], TransferFailed)


def test_slurp_bad_destination_rejected_before_anything_runs(tmp_path):
    m = MockHosts()
    with pytest.raises(ValueError, match="relative"):
        parallax.slurp(["a"], "/f", "/abs", backend=MockBackend(m))
    assert m.calls == []


def test_aio_copy_and_slurp(tmp_path):
    src = tmp_path / "s"
    src.write_bytes(b"data")
    m = MockHosts()

    async def main():
        copied = await parallax.aio.copy(["a"], str(src), "/r", backend=MockBackend(m))
        slurped = await parallax.aio.slurp(["a"], "/r", "back", backend=MockBackend(m), localdir=str(tmp_path))
        return copied, slurped

    copied, slurped = asyncio.run(main())
    assert copied["a"].rc == 0
    assert open(slurped["a"].path, "rb").read() == b"data"


def test_one_off_call_releases_each_connection_after_its_job_but_a_session_keeps_them():
    m = MockHosts()
    mock_call(["a", "b"], mock=m)
    assert sorted(m.disconnects) == ["a", "b"]
    m.reset()
    with parallax.Session(["a", "b"], backend=MockBackend(m)) as s:
        s.call("one")
        s.call("two")
    assert m.disconnects == []
    assert len(m.calls) == 4


# --- diagnostics: quiet and verbose --------------------------------------------------------


def test_failures_are_logged_unless_quiet(caplog):
    m = MockHosts(responses={"bad": MockResponse(rc=2)})
    with caplog.at_level("INFO", logger="parallax"):
        mock_call(["bad", "good"], mock=m)
    assert any("bad: Exited with error code 2" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("INFO", logger="parallax"):
        mock_call(["bad"], mock=m, quiet=True)
    assert not [r for r in caplog.records if "bad:" in r.getMessage()]


def test_verbose_and_parallax_verbose_print_diagnostics_to_stderr(capfd, monkeypatch):
    mock_call(["a"], verbose=True)
    err = capfd.readouterr().err
    assert "parallax: a: started" in err and "parallax: a: finished (rc=0" in err
    mock_call(["quiet-again"])  # verbose lasted for its own call only
    assert "quiet-again" not in capfd.readouterr().err
    monkeypatch.setenv("PARALLAX_VERBOSE", "1")
    mock_call(["b"])
    assert "parallax: b: finished" in capfd.readouterr().err


# --- file descriptors ------------------------------------------------------------------------


def _in_child(code: str) -> str:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_soft_fd_limit_is_raised_when_limit_needs_it():
    out = _in_child(
        "import resource, parallax\n"
        "from parallax.backends.mock import MockHosts\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 8192))\n"
        "r = parallax.run([f'h{i}' for i in range(300)], 'x', backend='mock', mock=MockHosts(), limit=200)\n"
        "print(len(r), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    n, soft = map(int, out.split())
    assert n == 300 and soft >= 200 * 8


def test_fd_limit_that_cannot_be_raised_is_refused_before_anything_runs():
    out = _in_child(
        "import resource, parallax\n"
        "from parallax.backends.mock import MockHosts\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))\n"
        "m = MockHosts()\n"
        "try:\n"
        "    parallax.run([f'h{i}' for i in range(300)], 'x', backend='mock', mock=m, limit=200)\n"
        "except ValueError as e:\n"
        "    print(len(m.calls), e)\n"
    )
    assert out.startswith("0 limit=200 needs about")
    assert "RLIMIT_NOFILE allows at most 512" in out
