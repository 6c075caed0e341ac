"""OpenSSH-backend behaviour beyond the conformance suite, against a real sshd.

Covers argument order (the caller's settings win over parallax's defaults),
host names that look like options, ssh diagnostics kept out of stderr, the
concurrency limit measured on live ssh processes, cancellation leaving no
process behind, askpass, outdir/errdir/print_out and the local shortcut.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

import parallax
from parallax.backends.openssh import OpenSSHBackend
from parallax.jobs import Target
from parallax.options import resolve
from parallax.planner import plan_targets
from parallax.testing.processes import children_of, command_line, processes_with

from helpers import lab_opts


def effective_config(argv: list[str]) -> dict[str, str]:
    """What ssh would use for *argv*: run it with ``-G`` (prints config, connects nowhere)."""
    i = argv.index("--")
    out = subprocess.run([argv[0], "-G", *argv[1:i], "--", argv[i + 1]], capture_output=True, text=True, check=True)
    cfg: dict[str, str] = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(" ")
        cfg.setdefault(key, value)
    return cfg


def target_for(tmp_path, environ=None, **kw) -> Target:
    settings = resolve(None, environ=environ or {}, **kw)
    return plan_targets(["somehost"], settings)[0]


# --- argument order -----------------------------------------------------

def test_caller_ssh_options_win_over_parallax_defaults(tmp_path):
    backend = OpenSSHBackend()
    try:
        t = target_for(tmp_path, ssh_options=["ConnectTimeout=7", "BatchMode=no"], connect_timeout=3,
                       ssh_config=str(_empty_config(tmp_path)))
        cfg = effective_config(backend.ssh_argv(t, "true", "/dev/null"))
        assert cfg["connecttimeout"] == "7"
        assert cfg["batchmode"] == "no"
        # without the caller's option, parallax's defaults apply
        t = target_for(tmp_path, connect_timeout=3, ssh_config=str(_empty_config(tmp_path)))
        cfg = effective_config(backend.ssh_argv(t, "true", "/dev/null"))
        assert cfg["connecttimeout"] == "3"
        assert cfg["batchmode"] == "yes"
    finally:
        backend.__del__()


def _empty_config(tmp_path):
    p = tmp_path / "empty_config"
    p.write_text("")
    return p


def test_users_ssh_config_wins_over_parallax_defaults(tmp_path):
    cfg_file = tmp_path / "config"
    cfg_file.write_text("Host somehost\n  ConnectTimeout 9\n  BatchMode no\n  User fromconfig\n")
    backend = OpenSSHBackend()
    try:
        t = target_for(tmp_path, connect_timeout=3, ssh_config=str(cfg_file))
        cfg = effective_config(backend.ssh_argv(t, "true", "/dev/null"))
        assert cfg["connecttimeout"] == "9"
        assert cfg["batchmode"] == "no"
        assert cfg["user"] == "fromconfig"
        # an explicit default_user is the caller's choice and beats the config
        t = target_for(tmp_path, default_user="explicit", ssh_config=str(cfg_file))
        assert effective_config(backend.ssh_argv(t, "true", "/dev/null"))["user"] == "explicit"
    finally:
        backend.__del__()


def test_ssh_options_beat_parallax_options_env_and_ssh_extra(tmp_path):
    backend = OpenSSHBackend()
    try:
        env = {"PARALLAX_OPTIONS": "ConnectTimeout=11 ServerAliveInterval=13"}
        t = target_for(tmp_path, environ=env, ssh_options=["ConnectTimeout=7"],
                       ssh_extra=["-o", "ServerAliveInterval=99", "-o", "ServerAliveCountMax=5"],
                       ssh_config=str(_empty_config(tmp_path)))
        cfg = effective_config(backend.ssh_argv(t, "true", "/dev/null"))
        assert cfg["connecttimeout"] == "7"  # ssh_options first
        assert cfg["serveraliveinterval"] == "13"  # PARALLAX_OPTIONS before ssh_extra
        assert cfg["serveralivecountmax"] == "5"  # ssh_extra still beats ssh's default
        # host_key_policy is parallax's translation: a caller's explicit option wins
        t = target_for(tmp_path, ssh_options=["StrictHostKeyChecking=no"], host_key_policy="strict",
                       ssh_config=str(_empty_config(tmp_path)))
        assert effective_config(backend.ssh_argv(t, "true", "/dev/null"))["stricthostkeychecking"] == "false"
    finally:
        backend.__del__()


def test_host_is_passed_after_double_dash():
    backend = OpenSSHBackend()
    try:
        t = Target(key="h", host="h", ssh_config="/dev/null")
        argv = backend.ssh_argv(t, "-oProxyCommand=x", "/dev/null")
        assert argv[-3:] == ["--", "h", "-oProxyCommand=x"]
        argv = backend.scp_argv(t, ["/tmp/a"], "h:/tmp/b", recursive=False)
        assert argv[-3:] == ["--", "/tmp/a", "h:/tmp/b"]
    finally:
        backend.__del__()


# --- injection and bad input ------------------------------------------------

@pytest.mark.parametrize("hosts", [
    ["-oProxyCommand=touch {marker}"],
    [("-oProxyCommand=touch {marker}", 22)],
    ["ok-host", "-oProxyCommand=touch {marker}"],
    ["host\n-oProxyCommand=touch {marker}"],
])
def test_option_injection_through_host_is_refused_and_runs_nothing(ssh_lab, tmp_path, hosts):
    marker = tmp_path / "pwned"
    hosts = [h.format(marker=marker) if isinstance(h, str) else (h[0].format(marker=marker), h[1]) for h in hosts]
    before = ssh_lab.connection_count()
    with pytest.raises(ValueError, match="ProxyCommand"):
        parallax.call(hosts, "true", **lab_opts(ssh_lab))
    time.sleep(0.2)
    assert not marker.exists()
    assert ssh_lab.connection_count() == before


def test_bad_option_value_is_refused_before_connecting(ssh_lab):
    before = ssh_lab.connection_count()
    with pytest.raises(ValueError, match="ssh_options"):
        parallax.call(ssh_lab.hosts, "true", **lab_opts(ssh_lab, ssh_options=["ProxyCommand\n=x"]))
    assert ssh_lab.connection_count() == before


# --- exit status 255 and diagnostics ------------------------------------------

def test_remote_exit_255_is_the_commands_status(ssh_lab):
    res = parallax.run(ssh_lab.hosts[:2], "echo out; echo err >&2; exit 255", **lab_opts(ssh_lab))
    for r in res.values():
        assert not isinstance(r, parallax.Error), r
        assert (r.rc, r.stdout, r.stderr) == (255, b"out\n", b"err\n")
    res = parallax.call(ssh_lab.hosts[:1], "exit 255", **lab_opts(ssh_lab))
    err = res[ssh_lab.hosts[0]]
    assert isinstance(err, parallax.CommandFailed) and err.rc == 255
    assert "Exited with error code 255" in str(err)


def test_ssh_warnings_never_reach_the_hosts_stderr(ssh_lab, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    res = parallax.run(ssh_lab.hosts[:1], "echo hi",
                       **lab_opts(ssh_lab, known_hosts=str(kh), host_key_policy="accept-new"))
    r = res[ssh_lab.hosts[0]]
    assert not isinstance(r, parallax.Error), r
    assert r.stderr == b""  # "Warning: Permanently added ..." went to ssh's log
    assert kh.read_text().strip()  # and the key was recorded


# --- concurrency limit measured on live processes -------------------------------

def _my_ssh_children() -> int:
    return sum(1 for pid in children_of() if command_line(pid).split(" ", 1)[0].endswith("ssh"))


def test_hundred_hosts_limit_ten_never_more_than_ten_ssh_processes(make_ssh_lab):
    lab = make_ssh_lab(hosts=100)
    peak = 0
    samples = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, samples
        while not stop.is_set():
            peak = max(peak, _my_ssh_children())
            samples += 1
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        res = parallax.call(lab.hosts, "sleep 0.3; echo ok", **lab_opts(lab, limit=10, timeout=60))
    finally:
        stop.set()
        sampler.join()
    assert len(res) == 100
    bad = {k: v for k, v in res.items() if isinstance(v, parallax.Error)}
    assert not bad, list(bad.items())[:3]
    assert all(r.stdout == b"ok\n" for r in res.values())
    assert samples > 50
    assert 2 <= peak <= 10, peak


# --- cancellation -----------------------------------------------------------------

def _processes_with(marker: str) -> list[str]:
    return [f"{pid}: {cmd}" for pid, cmd in processes_with(marker).items() if "pytest" not in cmd]


def test_timeout_kills_local_ssh_and_the_remote_command(ssh_lab):
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    token = f"30.{uuid.uuid4().int % 10**6:06d}"
    cmd = f'case "$SSH_CONNECTION" in *" {ssh_lab.addresses[0]} "*) sleep {token};; esac; echo {marker}'
    t0 = time.monotonic()
    res = parallax.call(ssh_lab.hosts[:3], cmd, **lab_opts(ssh_lab, timeout=1.5))
    assert time.monotonic() - t0 < 10
    assert isinstance(res[ssh_lab.hosts[0]], parallax.Timeout)
    for h in ssh_lab.hosts[1:3]:
        assert res[h].stdout == f"{marker}\n".encode()
    deadline = time.monotonic() + 3
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_with(marker)  # neither the local ssh nor the remote shell
    assert not _processes_with(f"sleep {token}")


def test_the_remote_kill_spares_a_session_with_the_same_client_port_to_another_server(ssh_lab):
    """The kill matches all four fields of SSH_CONNECTION: the same client address and port in a
    connection to another address or port (another sshd on the host, or one of the lab's other
    hosts) is someone else's session (a CI run lost a command of another test to it)."""
    token = f"30.{uuid.uuid4().int % 10**6:06d}"
    box = {}
    thread = threading.Thread(target=lambda: box.update(res=parallax.call(
        ssh_lab.hosts[:1], f"sleep {token}", **lab_opts(ssh_lab, timeout=2))))
    thread.start()
    decoy = None
    try:
        def remote_connection() -> str | None:  # the remote command's SSH_CONNECTION, once it runs
            for p in processes_with(f"sleep {token}"):
                with contextlib.suppress(OSError), open(f"/proc/{p}/environ", "rb") as f:
                    for entry in f.read().split(b"\0"):
                        if entry.startswith(b"SSH_CONNECTION="):
                            return entry.split(b"=", 1)[1].decode()
            return None

        deadline = time.monotonic() + 10
        while (connection := remote_connection()) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert connection, "the remote command never started"
        client_ip, client_port, _, server_port = connection.split()
        decoy_token = f"31.{uuid.uuid4().int % 10**6:06d}"
        decoy = subprocess.Popen(["sleep", decoy_token], start_new_session=True, user=ssh_lab.user,
                                 group=pwd.getpwnam(ssh_lab.user).pw_gid, extra_groups=[], env={
            "SSH_CONNECTION": f"{client_ip} {client_port} 127.0.0.9 {int(server_port) + 1}"})
        thread.join(15)
        assert isinstance(box["res"][ssh_lab.hosts[0]], parallax.Timeout)
        deadline = time.monotonic() + 3
        while _processes_with(f"sleep {token}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _processes_with(f"sleep {token}"), "the cancelled command still runs"
        time.sleep(0.5)  # past the kill's second scan
        assert decoy.poll() is None, "the kill ended another connection's process"
    finally:
        thread.join(15)
        if decoy is not None:
            decoy.kill()
            decoy.wait()


def test_keyboard_interrupt_leaves_no_ssh_process(ssh_lab, tmp_path):
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "interrupted.py"
    script.write_text(textwrap.dedent(f"""
        import parallax, signal, sys
        # a CI runner may start us with SIGINT ignored; Ctrl-C must raise KeyboardInterrupt here
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            parallax.call({ssh_lab.hosts[:3]!r}, "sleep 30 # {marker}", ssh_key={ssh_lab.client_key!r},
                          known_hosts={ssh_lab.known_hosts!r}, default_user={ssh_lab.user!r})
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(42)
        print("not interrupted", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len([p for p in _processes_with(marker) if "ssh" in p]) < 3:
        time.sleep(0.05)
    assert len([p for p in _processes_with(marker) if "ssh" in p]) >= 3, "ssh processes never started"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 42, (out, err)
    assert b"interrupted" in out
    deadline = time.monotonic() + 3
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    # no local ssh, and no remote `sh -c "sleep 30 # marker"` either
    assert not _processes_with(marker)


def test_overall_deadline_cancels_unstarted_hosts(ssh_lab):
    res = parallax.call(ssh_lab.hosts[:4], "sleep 5", **lab_opts(ssh_lab, limit=2, deadline=1))
    kinds = sorted(type(r).__name__ for r in res.values())
    assert kinds == ["Cancelled", "Cancelled", "Timeout", "Timeout"]


# --- askpass: one prompt feeds every ssh ---------------------------------------------

def test_askpass_prompts_once_and_unlocks_a_passphrase_key(ssh_lab, tmp_path, monkeypatch, capsys):
    key = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret pass", "-f", str(key)], check=True)
    authorized = _authorized_keys_file(ssh_lab)
    with open(authorized, "a") as f:
        f.write((tmp_path / "locked.pub").read_text())
    prompts = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": prompts.append(prompt) or "s3cret pass")
    res = parallax.call(ssh_lab.hosts[:3], "echo unlocked", **lab_opts(ssh_lab, ssh_key=str(key), askpass=True))
    assert len(prompts) == 1
    assert all(not isinstance(r, parallax.Error) and r.stdout == b"unlocked\n" for r in res.values()), res
    assert "do not enter your password" in capsys.readouterr().err
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "wrong")
    res = parallax.call(ssh_lab.hosts[:1], "true", **lab_opts(ssh_lab, ssh_key=str(key), askpass=True,
                                                              warn_message=False, ssh_options=["IdentitiesOnly=yes"]))
    assert isinstance(res[ssh_lab.hosts[0]], parallax.AuthenticationFailed)


def _authorized_keys_file(lab) -> str:
    with open(os.path.join(lab.workdir, "sshd_config")) as f:
        for line in f:
            if line.strip().lower().startswith("authorizedkeysfile"):
                return line.split(None, 1)[1].strip()
    raise AssertionError("no AuthorizedKeysFile in the lab config")


# --- output consumers with real ssh -------------------------------------------------

def test_outdir_errdir_and_print_out(ssh_lab, tmp_path, capfd):
    outdir, errdir = tmp_path / "out", tmp_path / "err"
    hosts = ssh_lab.hosts[:2]
    res = parallax.call(hosts, "echo line1; echo line2; echo oops >&2",
                        **lab_opts(ssh_lab, outdir=str(outdir), errdir=str(errdir), print_out=True))
    assert all(not isinstance(r, parallax.Error) for r in res.values()), res
    for h in hosts:
        assert (outdir / h).read_bytes() == b"line1\nline2\n"
        assert (errdir / h).read_bytes() == b"oops\n"
    captured = capfd.readouterr()
    for h in hosts:  # each line as it arrives, prefixed: the hosts' lines may interleave
        mine = [line for line in captured.out.splitlines() if line.startswith(f"{h}: ")]
        assert mine == [f"{h}: line1", f"{h}: line2"], captured.out
        assert f"{h}: oops\n" in captured.err


def test_parallax_outdir_environment_variable(ssh_lab, tmp_path, monkeypatch):
    monkeypatch.setenv("PARALLAX_OUTDIR", str(tmp_path / "envout"))
    parallax.call(ssh_lab.hosts[:1], "echo via-env", **lab_opts(ssh_lab))
    assert (tmp_path / "envout" / ssh_lab.hosts[0]).read_bytes() == b"via-env\n"


# --- the 1.0 local shortcut ------------------------------------------------------------

def test_local_shortcut_runs_without_ssh(ssh_lab):
    me = socket.gethostname()
    before = ssh_lab.connection_count()
    # the shortcut applies when no other user or port is asked for
    res = parallax.call([me], 'echo "conn=[$SSH_CONNECTION]"; exit 0', **lab_opts(ssh_lab, default_user=None))
    assert res[me].stdout == b"conn=[]\n"
    assert ssh_lab.connection_count() == before
    # Port given as an ssh option keeps the shortcut eligible; disabled, ssh really connects.
    res = parallax.call([me], "true", **lab_opts(ssh_lab, default_user=None, ssh_options=["Port=1"]))
    assert not isinstance(res[me], parallax.Error)
    res = parallax.call([me], "true", **lab_opts(ssh_lab, default_user=None, ssh_options=["Port=1"],
                                                 local_shortcut=False))
    assert isinstance(res[me], parallax.ConnectionFailed)
