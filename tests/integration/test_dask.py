"""A call sharded across a Dask cluster (``cluster=``) against the lab's real sshd.

One ``LocalCluster`` of three worker processes serves the whole module.  The
same calls made locally and through the cluster give identical results; the
server side shows that ``limit`` holds across workers; a worker killed with
SIGKILL mid-call gives ``WorkerLost`` for the host it had started, and no
host's command runs twice (counted on the hosts).
"""

from __future__ import annotations

import asyncio
import dataclasses
import glob
import os
import pickle
import signal
import socket
import threading
import time
import uuid

import pytest
from distributed import Client, LocalCluster, get_task_stream
from distributed.core import Status
from distributed.exceptions import WorkerStartTimeoutError
from helpers import lab_opts, ok

import parallax
from parallax.cluster.sharding import (
    WorkerInfo,
    decode_ranges,
    encode_ranges,
    place_group,
    plan_shards,
    split_limit,
)
from parallax.cluster.wire import ShardSpec
from parallax.hosts import HostSpec
from parallax.options import resolve
from parallax.testing.processes import children_of

# --- pure sharding logic -------------------------------------------------------------------------

TWO = [WorkerInfo("tcp://a:1", "0", 1), WorkerInfo("tcp://b:1", "1", 1)]


def marks_dir(lab, what):
    """A fresh directory in *lab*'s scratch space every lab user may write marks into."""
    marks = os.path.join(lab.scratch_dir, f"{what}-{uuid.uuid4().hex}")
    os.makedirs(marks)
    os.chmod(marks, 0o777)
    return marks


def settled(client, prefix: str, timeout: float = 10) -> None:
    """Wait until no task whose key starts with *prefix* is still processing: a shard's results
    come back on a stream before its task ends, and the task stream records a task at its end."""
    deadline = time.monotonic() + timeout
    while any(str(k).startswith(prefix) for keys in client.processing().values() for k in keys):
        assert time.monotonic() < deadline, f"a {prefix} task still runs {timeout} s after its call"
        time.sleep(0.05)


def test_limit_shares_never_add_up_past_limit():
    for limit in (1, 2, 3, 7, 32, 200):
        for sizes in ([5], [3, 3], [1, 100], [10, 10, 10], [1] * min(limit, 9)):
            if len(sizes) > limit:
                continue
            shares = split_limit(limit, sizes)
            assert sum(shares) <= limit and all(s >= 1 for s in shares), (limit, sizes, shares)
    assert split_limit(10, [50, 50]) == [5, 5]
    with pytest.raises(ValueError, match="limit=1 is smaller than the number of shards"):
        split_limit(1, [3, 3])


def test_shards_by_count_cover_every_job_once():
    keys = [f"h{i}" for i in range(1000)]
    plans = plan_shards(keys, limit=200, workers=TWO)
    assert len(plans) == 2
    assert sorted(i for p in plans for i in p.indices) == list(range(1000))
    assert sum(p.limit for p in plans) == 200
    small = plan_shards(keys[:5], limit=32, workers=TWO)
    assert len(small) == 1 and small[0].limit == 5  # too few hosts to be worth two tasks
    assert len(plan_shards(keys, limit=1, workers=TWO)) == 1


def test_shard_by_places_groups_on_resources_then_names():
    workers = [WorkerInfo("tcp://a:1", "w-a", 2, {"site-a": 2}), WorkerInfo("tcp://b:1", "w-b", 1)]
    keys = [f"{site}-{i}" for i in range(20) for site in ("a", "b")]
    plans = plan_shards(keys, limit=9, workers=workers,
                        shard_by=lambda k: "site-a" if k.startswith("a") else "w-b")
    by_group = {p.group: [] for p in plans}
    for p in plans:
        by_group[p.group].append(p)
    assert len(by_group["site-a"]) == 2 and len(by_group["w-b"]) == 1
    assert all(p.placement.submit_kwargs() == {"resources": {"site-a": 1}} for p in by_group["site-a"])
    assert by_group["w-b"][0].placement.submit_kwargs() == {"workers": ["tcp://b:1"], "allow_other_workers": True}
    assert sum(p.limit for p in plans) <= 9
    assert all(keys[i].startswith("a") for p in by_group["site-a"] for i in p.indices)
    with pytest.raises(ValueError, match="no Dask worker has a resource or a name 'site-z'"):
        place_group("site-z", workers)
    with pytest.raises(TypeError, match="shard_by"):
        plan_shards(keys, limit=9, workers=workers, shard_by=lambda k: 3)


def test_start_record_ranges_round_trip():
    values = {0, 1, 2, 5, 7, 8, 100}
    assert encode_ranges(values) == [[0, 2], [5, 5], [7, 8], [100, 100]]
    assert decode_ranges(encode_ranges(values)) == values


def test_options_are_checked():
    with pytest.raises(TypeError, match="option cluster"):
        resolve(cluster=42)
    with pytest.raises(ValueError, match="limit_per_worker"):
        resolve(limit_per_worker=0)
    with pytest.raises(TypeError, match="shard_by"):
        resolve(shard_by="site")
    assert resolve(environ={"PARALLAX_CLUSTER": "tcp://10.0.0.1:8786"}).cluster == "tcp://10.0.0.1:8786"


def test_import_parallax_never_imports_distributed():
    import subprocess
    import sys

    code = ("import sys, parallax; from parallax.backends.mock import MockHosts; "
            "parallax.run(['a'], 'true', backend='mock', mock=MockHosts(), local_shortcut=False); "
            "print(sorted(m for m in ('distributed', 'dask', 'parallax.cluster.client') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out


def test_results_and_errors_pickle_with_their_fields():
    err = parallax.WorkerLost("The worker running this host died; the command may or may not have run",
                              None, host="web1", stdout=b"o", stderr=b"e", rc=None, duration=1.5)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is parallax.WorkerLost and isinstance(back, parallax.TransportError)
    assert (back.msg, back.host, back.stdout, back.stderr, back.duration) == (err.msg, "web1", b"o", b"e", 1.5)
    res = parallax.CallResult(0, b"out", b"", host="web1", duration=0.5, truncated=3)
    again = pickle.loads(pickle.dumps(res))
    assert again == res and again.host == "web1" and again.truncated == 3


class PluginError(parallax.TransportError):
    """A third-party backend's error whose constructor differs from Error's."""

    def __init__(self, code: int, detail: str) -> None:  # unpickling calls cls(msg): a TypeError
        super().__init__(f"plugin failure {code}", host="web1", stderr=detail.encode(), rc=code)


def test_an_error_that_cannot_make_the_round_trip_travels_as_a_plain_error():
    from parallax.cluster.wire import decode, encode, portable

    sent = portable(PluginError(4, "why\n"))
    back = decode(encode([("end", 0, sent)]))[0][2]
    assert type(back) is parallax.Error
    assert (back.msg, back.host, back.stderr, back.rc) == ("plugin failure 4", "web1", b"why\n", 4)
    lost = portable(parallax.WorkerLost("gone", object(), host="h"))
    assert type(lost) is parallax.WorkerLost and lost.task is None  # the caller restores its own job


# --- against the lab, through a LocalCluster of three worker processes ------------------------------


WORKERS = 3


def _start_cluster() -> tuple[LocalCluster, Client]:
    cluster = LocalCluster(n_workers=WORKERS, processes=True, threads_per_worker=1, dashboard_address=None)
    return cluster, Client(cluster)


@pytest.fixture(scope="module")
def dask_cluster():
    # Started once for the module; a cluster that cannot start fails the tests (no skip).
    box = dict(zip(("cluster", "client"), _start_cluster()))
    try:
        yield box
    finally:
        box["client"].close()
        box["cluster"].close()


@pytest.fixture
def cluster(dask_cluster):
    """The module's client, with every worker up (a test may have killed one, which its nanny
    restarts).  A nanny that gave up (a CI run saw one stay away for 60 s under load) is Dask's
    affair, not parallax's: the cluster is then started again for the tests that follow."""
    try:
        dask_cluster["client"].wait_for_workers(WORKERS, timeout=30)
        # a nanny whose restart ran late closes the worker it started (seen at three pytest workers)
        healthy = all(n.status == Status.running for n in dask_cluster["cluster"].workers.values())
    except WorkerStartTimeoutError:
        healthy = False
    if not healthy:
        dask_cluster["client"].close()
        dask_cluster["cluster"].close()
        dask_cluster.update(zip(("cluster", "client"), _start_cluster()))
        dask_cluster["client"].wait_for_workers(WORKERS, timeout=60)
    return dask_cluster["client"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return s.getsockname()[1]


def same(local, sharded):
    """Results of a local and a sharded call are indistinguishable."""
    assert list(local) == list(sharded)
    for key in local:
        a, b = local[key], sharded[key]
        assert type(a) is type(b), (key, a, b)
        if isinstance(a, parallax.Error):
            assert (a.msg, a.host, a.stdout, a.stderr, a.rc) == (b.msg, b.host, b.stdout, b.stderr, b.rc), key
            assert str(a) == str(b), key
            assert b.task is not None and b.task.key == key
        else:
            assert tuple(a) == tuple(b) and a.host == b.host, key


def test_call_and_run_give_the_same_results_as_a_local_call(ssh_lab, cluster, tmp_path):
    dead = f"127.0.0.2:{free_port()}"
    hosts = [*ssh_lab.hosts, dead]
    opts = lab_opts(ssh_lab, timeout=20)
    for fn, cmd in ((parallax.call, "echo out; echo err >&2; exit 3"), (parallax.call, "echo fine"),
                    (parallax.run, "echo out; echo err >&2; exit 3")):
        local = fn(hosts, cmd, **opts)
        sharded = fn(hosts, cmd, cluster=cluster, **opts)
        same(local, sharded)
    assert isinstance(sharded[dead], parallax.ConnectionFailed)
    rc, out, err = sharded[ssh_lab.hosts[0]]  # 1.0 result shape
    assert (rc, out, err) == (3, b"out\n", b"err\n")
    # a timeout and an unknown host key, through a scheduler address string
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    address = cluster.scheduler.address
    for kw, cmd, cls in (({"timeout": 1}, "sleep 5", parallax.Timeout),
                         ({"known_hosts": str(empty), "host_key_policy": "strict"}, "true", parallax.HostKeyUnknown)):
        local = parallax.run(ssh_lab.hosts[:2], cmd, **{**opts, **kw})
        sharded = parallax.run(ssh_lab.hosts[:2], cmd, cluster=address, **{**opts, **kw})
        assert all(isinstance(r, cls) for r in sharded.values()), sharded
        same(local, sharded)


def test_copy_and_slurp_through_the_cluster(ssh_lab, cluster, tmp_path):
    src = tmp_path / "payload.txt"
    src.write_bytes(b"payload\n")
    remote = os.path.join(ssh_lab.scratch_dir, f"dask-{uuid.uuid4().hex}.txt")
    opts = lab_opts(ssh_lab)
    copied = ok(parallax.copy(ssh_lab.hosts, str(src), remote, cluster=cluster, **opts))
    assert all(type(r) is parallax.CopyResult and r.rc == 0 for r in copied.values())
    with open(remote, "rb") as f:
        assert f.read() == b"payload\n"
    got = ok(parallax.slurp(ssh_lab.hosts, remote, "back.txt", cluster=cluster, localdir=str(tmp_path / "in"), **opts))
    for host, r in got.items():
        rc, out, err, path = r  # 1.0 result shape
        assert (rc, out, err) == (0, b"", b"") and path == str(tmp_path / "in" / host / "back.txt")
        with open(path, "rb") as f:
            assert f.read() == b"payload\n"


def test_output_files_printing_and_callbacks_happen_on_the_caller(ssh_lab, cluster, tmp_path, capfd):
    finished, started = [], []
    caller = os.getpid()
    res = ok(parallax.call(
        ssh_lab.hosts, "echo line1; echo line2; echo oops >&2", cluster=cluster, print_out=True,
        outdir=str(tmp_path / "out"), errdir=str(tmp_path / "err"),
        on_start=lambda h: started.append((h, os.getpid())),
        on_finish=lambda h, r: finished.append((h, os.getpid(), r.stdout)),
        **lab_opts(ssh_lab)))
    assert sorted(h for h, _ in started) == sorted(ssh_lab.hosts)
    assert sorted(finished) == sorted((h, caller, b"line1\nline2\n") for h in ssh_lab.hosts)
    printed = capfd.readouterr()
    for host in ssh_lab.hosts:
        assert f"{host}: line1\n" in printed.out and f"{host}: line2\n" in printed.out
        assert f"{host}: oops\n" in printed.err
        assert (tmp_path / "out" / host).read_bytes() == b"line1\nline2\n"
        assert (tmp_path / "err" / host).read_bytes() == b"oops\n"
        assert res[host].stdout == b"line1\nline2\n"


def test_max_output_bounds_what_a_worker_keeps(ssh_lab, cluster):
    res = ok(parallax.call(ssh_lab.hosts[:2], "head -c 100000 /dev/zero", cluster=cluster, max_output=1000,
                           **lab_opts(ssh_lab)))
    assert all(r.stdout == b"\0" * 1000 and r.truncated == 99000 for r in res.values())


def test_a_sharded_session_and_shard_by_placement(ssh_lab, cluster):
    names = {a: str(w["name"]) for a, w in cluster.scheduler_info()["workers"].items()}
    by_name = {n: a for a, n in names.items()}
    group = {h: str(i % 2) for i, h in enumerate(ssh_lab.hosts)}  # worker names of a LocalCluster: 0, 1
    with get_task_stream(cluster) as ts, parallax.Session(
            ssh_lab.hosts, cluster=cluster, shard_by=group.__getitem__, **lab_opts(ssh_lab)) as s:
        first = ok(s.run("echo $SSH_CONNECTION"))
        second = ok(s.run("echo again"))
        s.close()
        settled(cluster, "parallax-holder-")
    assert list(first) == ssh_lab.hosts
    for host, r in first.items():
        assert r.stdout.split()[2].decode() == host.split(":")[0]  # each host reached its own address
    assert all(r.stdout == b"again\n" for r in second.values())
    shard_tasks = [t for t in ts.data if str(t["key"]).startswith("parallax-holder-")]
    assert len(shard_tasks) == 2  # two groups: one long-lived holder each, for both calls
    for t in shard_tasks:
        g = str(t["key"]).split("-")[2]
        assert t["worker"] == by_name[g], t
    with pytest.raises(ValueError, match="no Dask worker has a resource or a name 'elsewhere'"):
        parallax.run(ssh_lab.hosts, "true", cluster=cluster, shard_by=lambda h: "elsewhere", **lab_opts(ssh_lab))


def test_parallax_cluster_in_the_environment_shards_every_call(ssh_lab, cluster, monkeypatch):
    monkeypatch.setenv("PARALLAX_CLUSTER", cluster.scheduler.address)
    with get_task_stream(cluster) as ts:
        res = ok(parallax.run(ssh_lab.hosts, "echo hi", **lab_opts(ssh_lab)))
        settled(cluster, "parallax-shard-")
    assert [r.stdout for r in res.values()] == [b"hi\n"] * len(ssh_lab.hosts)
    assert any(str(t["key"]).startswith("parallax-shard-") for t in ts.data)


def test_a_group_placed_by_a_worker_resource(ssh_lab):
    # a second, in-process cluster whose only worker offers the resource "site-x"
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=2, resources={"site-x": 2},
                      dashboard_address=":0", worker_dashboard_address=":0") as local, \
            Client(local) as client, get_task_stream(client) as ts:
        res = ok(parallax.run(ssh_lab.hosts, "echo $SSH_CONNECTION", cluster=client,
                              shard_by=lambda h: "site-x", **lab_opts(ssh_lab)))
        settled(client, "parallax-shard-")
    assert [r.stdout.split()[2].decode() for r in res.values()] == ssh_lab.addresses
    shards = [t for t in ts.data if str(t["key"]).startswith("parallax-shard-site-x-")]
    assert len(shards) == 1  # four hosts: one shard (MIN_SHARD), on the worker with the resource


@pytest.mark.filterwarnings("ignore:the mock= option is deprecated")
def test_a_password_never_reaches_the_cluster_logs(cluster):
    from parallax.backends.mock import MockHosts, MockResponse

    secret = f"pw-{uuid.uuid4().hex}"
    hosts = MockHosts(default=MockResponse(stdout=b"ok\n"), responses={"m3": MockResponse(fail="auth")})
    names = [f"m{i}" for i in range(20)]
    res = parallax.run(names, "true", backend="mock", mock=hosts, password=secret, cluster=cluster,
                       local_shortcut=False)
    assert isinstance(res["m3"], parallax.AuthenticationFailed) and res["m1"].stdout == b"ok\n"
    logs = repr(cluster.get_worker_logs()) + repr(cluster.get_scheduler_logs())
    assert secret not in logs
    settings = resolve(password=secret)
    spec = ShardSpec("c", 0, (), (), settings, None, False, False, None, "here")
    assert secret not in repr(spec) and secret not in repr(settings)


def test_the_overall_deadline_holds_across_the_cluster(ssh_lab, cluster):
    opts = lab_opts(ssh_lab, limit=2, deadline=2, timeout=60)
    t0 = time.monotonic()
    res = parallax.run(ssh_lab.hosts, "sleep 20", cluster=cluster, **opts)
    assert time.monotonic() - t0 < 15
    kinds = sorted(type(r).__name__ for r in res.values())
    assert kinds == ["Cancelled", "Cancelled", "Timeout", "Timeout"], res  # as locally: 2 running, 2 unstarted
    assert all(r.msg == "Overall deadline of 2 s reached" for r in res.values() if isinstance(r, parallax.Timeout))


def test_limit_per_worker_caps_a_shard_by_its_workers_threads():
    from parallax.cluster.runner import _shard_limit

    spec = ShardSpec("c", 0, (), (), resolve(limit=50), None, False, False, 8, "here")
    assert _shard_limit(spec, 1) == 8 and _shard_limit(spec, 4) == 2
    assert _shard_limit(dataclasses.replace(spec, limit_per_worker=None), 4) == 50


def test_a_backend_object_cannot_travel(cluster):
    from parallax.backends.mock import MockBackend, MockHosts

    with pytest.raises(TypeError, match="give the backend by name"):
        parallax.run(["a", "b"], "true", backend=MockBackend(MockHosts()), cluster=cluster)


def _peak(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one instant (an end at the same instant as a start closes first)."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = running = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_limit_holds_across_workers_measured_on_the_server(ssh_lab, cluster):
    # 1,000 hosts (distinct result keys over the lab's addresses) through the three workers
    # with limit=200: shares of 67 + 67 + 66.  Each command stamps its start and end on the
    # server; the first ones also wait on a FIFO that the test opens once 200 commands have
    # started, so a correct run reaches exactly 200 at once (all three shards side by side)
    # and any command the scheduler let in beyond the limit overlaps them and shows.
    marks = marks_dir(ssh_lab, "limit")
    gate = marks + ".gate"
    os.mkfifo(gate, 0o666)
    os.chmod(gate, 0o666)
    addresses = ssh_lab.addresses
    count, limit = 1000, 200
    hosts = [HostSpec(key=f"n{i:04d}", host=addresses[i % len(addresses)], port=ssh_lab.port) for i in range(count)]
    # One file per shell pid, appended to: pids are reused in a run of 1,000 (pid_max may be 32768).
    cmd = f'f={marks}/$$; date +%s.%N >> "$f"; : < {gate}; sleep 0.5; date +%s.%N >> "$f"'
    done = threading.Event()
    opened: list[int] = []

    def open_the_gate() -> None:
        give_up = time.monotonic() + 30
        while len(os.listdir(marks)) < limit and time.monotonic() < give_up and not done.is_set():
            time.sleep(0.01)
        opened.append(len(os.listdir(marks)))
        fd = os.open(gate, os.O_RDWR)  # never blocks on Linux; the waiting commands' opens return
        done.wait()
        os.close(fd)

    gatekeeper = threading.Thread(target=open_the_gate)
    gatekeeper.start()
    try:
        res = ok(parallax.run(hosts, cmd, cluster=cluster, limit=limit, **lab_opts(ssh_lab, "asyncssh", timeout=120)))
    finally:
        done.set()
        gatekeeper.join()
    assert len(res) == count
    spans = []
    for path in glob.glob(os.path.join(marks, "*")):
        with open(path) as f:
            stamps = [float(x) for x in f.read().split()]
        assert len(stamps) % 2 == 0 and stamps == sorted(stamps), (path, stamps)  # one command at a time per pid
        spans += zip(stamps[::2], stamps[1::2])
    assert len(spans) == count  # every host's command ran once
    peak = _peak(spans)
    assert peak <= limit, f"{peak} hosts ran at once with limit={limit}"
    assert peak == limit, (f"only {peak} at once ({opened[0]} started when the gate opened): "
                           f"the {WORKERS} shards (a share of about {limit // WORKERS} each) did not run side by side")


def _sleepers(lab) -> list[int]:
    from parallax.testing.processes import command_line

    return [p for p in lab.pids() if "sleep 30" in command_line(p)]


def test_ctrl_c_cancels_every_shard_and_kills_remote_commands(ssh_lab, cluster):
    marks = marks_dir(ssh_lab, "cancel")
    cmd = f"set -- $SSH_CONNECTION; touch {marks}/$3; sleep 30"

    async def main():
        task = asyncio.ensure_future(parallax.aio.run(ssh_lab.hosts, cmd, cluster=cluster, **lab_opts(ssh_lab)))
        limit = time.monotonic() + 30
        while len(os.listdir(marks)) < len(ssh_lab.hosts) and time.monotonic() < limit:
            await asyncio.sleep(0.1)
        assert len(os.listdir(marks)) == len(ssh_lab.hosts)
        assert _sleepers(ssh_lab), "the check below would see nothing"
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    took = asyncio.run(main())
    assert took < 20
    limit = time.monotonic() + 10
    while _sleepers(ssh_lab) and time.monotonic() < limit:
        time.sleep(0.2)
    assert not _sleepers(ssh_lab), "a remote command outlived the cancelled call"
    left = cluster.run(children_of)
    assert not any(left.values()), f"processes left on the workers: {left}"


def test_sigint_on_a_sync_caller_cancels_the_shards(ssh_lab, cluster, tmp_path):
    import subprocess
    import sys

    marks = marks_dir(ssh_lab, "sigint")
    script = tmp_path / "caller.py"
    script.write_text(
        "import sys, parallax\n"
        "opts = dict(ssh_key=sys.argv[3], known_hosts=sys.argv[4], default_user=sys.argv[5])\n"
        "try:\n"
        "    parallax.run(sys.argv[6:], 'set -- $SSH_CONNECTION; touch ' + sys.argv[2] + '/$3; sleep 30',\n"
        "                 cluster=sys.argv[1], **opts)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(7)\n")
    proc = subprocess.Popen([sys.executable, str(script), cluster.scheduler.address, marks, ssh_lab.client_key,
                             ssh_lab.known_hosts, ssh_lab.user, *ssh_lab.hosts],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        limit = time.monotonic() + 30
        while len(os.listdir(marks)) < len(ssh_lab.hosts) and time.monotonic() < limit and proc.poll() is None:
            time.sleep(0.1)
        assert len(os.listdir(marks)) == len(ssh_lab.hosts), proc.communicate(timeout=5)
        assert _sleepers(ssh_lab), "the check below would see nothing"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 7 and "interrupted" in out, (out, err)
    limit = time.monotonic() + 10
    while _sleepers(ssh_lab) and time.monotonic() < limit:
        time.sleep(0.2)
    assert not _sleepers(ssh_lab), "a remote command outlived the interrupted call"
    assert not any(cluster.run(children_of).values())


@pytest.mark.parametrize("idempotent", [False, True])
def test_a_worker_killed_mid_call_gives_worker_lost_and_no_host_runs_twice(ssh_lab, cluster, idempotent):
    marks = marks_dir(ssh_lab, "kill")
    # Two shards of two hosts (one per worker, by name), one host at a time each: the
    # killed worker's shard has one host started (-> WorkerLost) and one never
    # started (-> runs when the shard is re-run).
    cmd = f"set -- $SSH_CONNECTION; echo ran >> {marks}/$3; sleep 3; echo done"
    group = {h: str(i // 2) for i, h in enumerate(ssh_lab.hosts)}
    box = {}
    thread = threading.Thread(target=lambda: box.update(res=parallax.run(
        ssh_lab.hosts, cmd, cluster=cluster, limit=2, shard_by=group.__getitem__, idempotent=idempotent,
        **lab_opts(ssh_lab, timeout=60))))
    thread.start()
    limit = time.monotonic() + 30
    while len(os.listdir(marks)) < 2 and time.monotonic() < limit:
        time.sleep(0.05)
    assert len(os.listdir(marks)) == 2, os.listdir(marks)
    victim_address = min(a for a, keys in cluster.processing().items() if keys)
    pids = cluster.run(os.getpid)
    os.kill(pids[victim_address], signal.SIGKILL)
    thread.join(90)
    assert not thread.is_alive()
    res = box["res"]
    counts = {}
    for host in ssh_lab.hosts:
        with open(os.path.join(marks, host.split(":")[0])) as f:
            counts[host] = f.read().count("ran")
    lost = [h for h, r in res.items() if isinstance(r, parallax.WorkerLost)]
    if idempotent:  # allowed to run again: the started host ran twice, every host succeeded
        assert not lost and all(r.stdout == b"done\n" for r in res.values()), res
        assert sorted(counts.values()) == [1, 1, 1, 2], counts
        return
    assert len(lost) == 1, [(h, type(r).__name__, getattr(r, "msg", None)) for h, r in res.items()]
    assert "may or may not have run" in str(res[lost[0]])
    assert all(r.stdout == b"done\n" for h, r in res.items() if h not in lost), res
    assert counts == {h: 1 for h in ssh_lab.hosts}, f"a host ran more or less than once: {counts}"


# --- a sharded Session: one long-lived holder (a Dask actor) per shard ------------------------------


def _by_worker(lab):
    """shard_by putting the lab's hosts on two of the LocalCluster's workers (names "0" and "1")."""
    group = {h: str(i // 2) for i, h in enumerate(lab.hosts)}
    return group.__getitem__


def _holders(cluster) -> dict[str, list[str]]:
    """The shard holders alive on each worker: ``{worker address: [actor keys]}``."""
    return cluster.run(lambda dask_worker: sorted(str(k) for k in dask_worker.state.actors
                                                  if str(k).startswith("parallax-holder-")))


def _sources(results) -> dict[str, tuple[bytes, bytes]]:
    """Each host's client address and port, from ``$SSH_CONNECTION``: the same port, the same connection."""
    return {h: tuple(r.stdout.split()[:2]) for h, r in results.items()}


def _wait(predicate, seconds=10.0):
    limit = time.monotonic() + seconds
    while not predicate() and time.monotonic() < limit:
        time.sleep(0.1)
    return predicate()


def test_a_sharded_session_keeps_its_connections_open(ssh_lab, cluster):
    with parallax.Session(ssh_lab.hosts, cluster=cluster, shard_by=_by_worker(ssh_lab), **lab_opts(ssh_lab)) as s:
        first = ok(s.run("echo $SSH_CONNECTION"))
        connections = ssh_lab.connection_count()
        holders = _holders(cluster)
        assert sorted(len(keys) for keys in holders.values()) == [0, 1, 1], holders  # one per shard, one per worker
        for _ in range(3):
            again = ok(s.run("echo $SSH_CONNECTION"))
            assert _sources(again) == _sources(first)  # each host through the same connection
        assert ok(s.run("echo sub", hosts=ssh_lab.hosts[1:3]))[ssh_lab.hosts[1]].stdout == b"sub\n"
        assert ssh_lab.connection_count() == connections, "a repeat call opened a new SSH connection"
        assert _holders(cluster) == holders  # the same holders served every call
        with pytest.raises(ValueError, match="limit=1 is smaller than the number of shards"):
            s.run("true", limit=1)
    assert _wait(lambda: not any(_holders(cluster).values()))


def test_persistent_shell_in_a_sharded_session_opens_no_new_ssh_session(ssh_lab, cluster):
    def sessions_started() -> int:
        return ssh_lab.log_text().count("Starting session: ")

    with parallax.Session(ssh_lab.hosts, cluster=cluster, shard_by=_by_worker(ssh_lab), persistent_shell=True,
                          **lab_opts(ssh_lab, "asyncssh")) as s:
        ok(s.run("true"))
        sessions, connections = sessions_started(), ssh_lab.connection_count()
        for i in range(3):
            res = s.run(f"echo {i}; exit {i}")
            assert [(r.rc, r.stdout) for r in res.values()] == [(i, f"{i}\n".encode())] * len(ssh_lab.hosts)
        assert isinstance(s.call("exit 2")[ssh_lab.hosts[0]], parallax.CommandFailed)
        assert sessions_started() == sessions, "a command opened a new SSH session"
        assert ssh_lab.connection_count() == connections


EXIT_SCRIPT = """
import sys, parallax
hosts, (address, key, known_hosts, user) = sys.argv[5:], sys.argv[1:5]
group = {h: str(i // 2) for i, h in enumerate(hosts)}
s = parallax.Session(hosts, cluster=address, shard_by=group.__getitem__, persistent_shell=True,
                     ssh_key=key, known_hosts=known_hosts, default_user=user)
res = s.run("true")
print("ready" if all(r.rc == 0 for r in res.values()) else res, flush=True)
sys.stdin.readline()  # then exit without closing the session
"""


@pytest.mark.parametrize("how", ["close", "gc", "exit", "killed"])
def test_closing_a_sharded_session_leaves_nothing_on_the_workers(ssh_lab, cluster, how, tmp_path):
    import gc
    import subprocess
    import sys
    import warnings

    from parallax.testing.processes import processes_with

    assert not any(cluster.run(children_of).values())
    before = set(processes_with(" -s"))
    if how in ("exit", "killed"):  # the caller's interpreter ends (or is killed) with the session open
        script = tmp_path / "caller.py"
        script.write_text(EXIT_SCRIPT)
        proc = subprocess.Popen([sys.executable, str(script), cluster.scheduler.address, ssh_lab.client_key,
                                 ssh_lab.known_hosts, ssh_lab.user, *ssh_lab.hosts],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
    else:
        s = parallax.Session(ssh_lab.hosts, cluster=cluster, shard_by=_by_worker(ssh_lab), persistent_shell=True,
                             **lab_opts(ssh_lab))  # openssh: a ControlMaster process per host on the workers
        ok(s.run("true"))
    shells = (set(processes_with(" -s")) - before) & set(ssh_lab.pids())
    assert len(shells) == len(ssh_lab.hosts), "expected one persistent shell per host"
    assert sum(len(p) for p in cluster.run(children_of).values()) >= len(ssh_lab.hosts)
    if how == "close":
        s.close()
    elif how == "gc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            del s
            gc.collect()
    elif how == "exit":
        proc.communicate("\n", timeout=30)
        assert proc.returncode == 0
    else:  # no finalizer runs: the scheduler drops the client, the workers its holders
        proc.kill()
        proc.communicate(timeout=30)
    assert _wait(lambda: not any(os.path.exists(f"/proc/{p}") for p in shells)), "a remote shell outlived it"
    assert _wait(lambda: not any(cluster.run(children_of).values())), cluster.run(children_of)
    assert _wait(lambda: not any(_holders(cluster).values())), _holders(cluster)


def test_a_killed_workers_holder_is_replaced(ssh_lab, cluster):
    marks = marks_dir(ssh_lab, "holder")
    cmd = f"set -- $SSH_CONNECTION; echo ran >> {marks}/$3; sleep 3; echo $1 $2"
    box = {}
    with parallax.Session(ssh_lab.hosts, cluster=cluster, shard_by=_by_worker(ssh_lab), limit=2,
                          **lab_opts(ssh_lab, "asyncssh", timeout=60)) as s:
        thread = threading.Thread(target=lambda: box.update(res=s.run(cmd)))
        thread.start()
        assert _wait(lambda: len(os.listdir(marks)) == 2, 30), os.listdir(marks)  # one host per shard started
        holders = _holders(cluster)
        victim = next(a for a, keys in holders.items() if any(k.startswith("parallax-holder-0-") for k in keys))
        os.kill(cluster.run(os.getpid)[victim], signal.SIGKILL)
        thread.join(60)
        assert not thread.is_alive()
        res = box["res"]
        lost = [h for h, r in res.items() if isinstance(r, parallax.WorkerLost)]
        assert lost == [ssh_lab.hosts[0]], res  # shard 0 had started its first host; the second ran on the new holder
        counts = {h: open(os.path.join(marks, h.split(":")[0])).read().count("ran") for h in ssh_lab.hosts}
        assert counts == {h: 1 for h in ssh_lab.hosts}, f"a host ran more or less than once: {counts}"
        kept = {h: tuple(r.stdout.split()) for h, r in res.items() if h not in lost}
        connections = ssh_lab.connection_count()
        again = ok(s.run("echo $SSH_CONNECTION"))
        assert ssh_lab.connection_count() - connections == 1  # only the lost host connects again
        assert {h: _sources(again)[h] for h in kept} == kept  # the others' connections were kept
        replaced = _holders(cluster)
        assert victim not in replaced and sum(len(k) for k in replaced.values()) == 2, replaced
        old = {k for keys in holders.values() for k in keys}
        new = {k for keys in replaced.values() for k in keys} - old
        assert len(new) == 1 and new.pop().startswith("parallax-holder-0-"), replaced  # shard 0's, made again


def test_cancelling_a_sharded_session_call_kills_its_commands_and_keeps_the_holders(ssh_lab, cluster):
    marks = marks_dir(ssh_lab, "session-cancel")
    cmd = f"set -- $SSH_CONNECTION; touch {marks}/$3; sleep 30"

    async def main():
        async with parallax.aio.Session(ssh_lab.hosts, cluster=cluster, shard_by=_by_worker(ssh_lab),
                                        **lab_opts(ssh_lab, "asyncssh")) as s:
            ok(await s.run("true"))
            connections = ssh_lab.connection_count()
            task = asyncio.ensure_future(s.run(cmd))
            limit = time.monotonic() + 30
            while len(os.listdir(marks)) < len(ssh_lab.hosts) and time.monotonic() < limit:
                await asyncio.sleep(0.1)
            assert _sleepers(ssh_lab), "the check below would see nothing"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await asyncio.to_thread(_wait, lambda: not _sleepers(ssh_lab)), "a remote command outlived it"
            again = ok(await s.run("echo back"))
            assert [r.stdout for r in again.values()] == [b"back\n"] * len(ssh_lab.hosts)
            assert ssh_lab.connection_count() == connections  # the holders kept their connections
            assert sum(len(k) for k in _holders(cluster).values()) == 2

    asyncio.run(main())
    assert _wait(lambda: not any(_holders(cluster).values()))
