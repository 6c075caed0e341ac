"""The SSH test lab itself, exercised with plain OpenSSH clients (no parallax API).

The ``ssh_lab`` / ``make_ssh_lab`` fixtures come from
``parallax.testing.pytest_plugin``, registered in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from parallax.testing import SSHLab, can_start_sshd
from parallax.testing.sshd import SSHD_PATH

TIMEOUT = 20


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)


def ssh(lab: SSHLab, host: str, command: str, *options: str) -> subprocess.CompletedProcess:
    return run(["ssh", "-F", lab.ssh_config, *options, host, command])


def test_can_start_sshd_reports_ok_here():
    ok, reason = can_start_sshd()
    assert isinstance(ok, bool) and isinstance(reason, str)
    assert ok or reason


def test_layout_and_files(ssh_lab: SSHLab):
    lab = ssh_lab
    n = len(lab.addresses)
    assert n == 4
    assert lab.addresses == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    assert lab.port not in (0, 22)
    assert lab.hosts == [f"127.0.0.{i}:{lab.port}" for i in range(2, 2 + n)]
    assert lab.host_tuples() == [(a, lab.port, lab.user) for a in lab.addresses]
    if os.geteuid() == 0:
        assert lab.user == "parallaxtest"
    for key in (lab.client_key, lab.wrong_key):
        st = os.stat(key)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == os.geteuid()
    kh = Path(lab.known_hosts).read_text().splitlines()
    key_part = " ".join(lab.host_key_pub.split()[:2])
    for addr, alias in zip(lab.addresses, lab.aliases):
        assert f"[{addr}]:{lab.port},[{alias}]:{lab.port},{alias} {key_part}" in kh
    assert lab.host_key_pub.startswith("ssh-ed25519 ")
    cfg = Path(lab.ssh_config).read_text()
    assert "Host h4\n    HostName 127.0.0.5\n" in cfg
    assert os.path.isfile(lab.log_file)
    assert "MaxSessions 100" in Path(lab.sshd_config).read_text()


def test_aliases_reach_distinct_addresses(ssh_lab: SSHLab):
    for alias, addr in [("h1", "127.0.0.2"), ("h2", "127.0.0.3")]:
        r = ssh(ssh_lab, alias, 'echo "$SSH_CONNECTION"')
        assert r.returncode == 0, r.stderr
        _client, _cport, server, sport = r.stdout.split()
        assert (server, int(sport)) == (addr, ssh_lab.port)


def test_command_runs_as_lab_user_with_its_shell(ssh_lab: SSHLab):
    r = run(ssh_lab.ssh_argv(ssh_lab.addresses[2], 'id -un; echo "$0"; cd && pwd'))
    assert r.returncode == 0, r.stderr
    user, shell, home = r.stdout.split("\n")[:3]
    pw = pwd.getpwnam(ssh_lab.user)
    assert user == ssh_lab.user
    assert shell == os.path.basename(pw.pw_shell)
    if os.geteuid() == 0:
        assert shell == "sh"
    assert home == pw.pw_dir


def test_accept_env_passes_parallax_variables(ssh_lab: SSHLab):
    env = dict(os.environ, PARALLAX_LAB_PROBE="42", OTHER_LAB_PROBE="no")
    r = run(["ssh", "-F", ssh_lab.ssh_config, "-o", "SendEnv=PARALLAX_LAB_PROBE OTHER_LAB_PROBE",
             "h3", 'echo "${PARALLAX_LAB_PROBE-unset} ${OTHER_LAB_PROBE-unset}"'], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "42 unset"


def test_sftp_put_and_get(ssh_lab: SSHLab, tmp_path):
    src = tmp_path / "src.bin"
    payload = os.urandom(100_000)
    src.write_bytes(payload)
    back = tmp_path / "back.bin"
    remote = f"{ssh_lab.scratch_dir}/sftp-{os.getpid()}.bin"
    batch = f"put {src} {remote}\nget {remote} {back}\nrm {remote}\n"
    r = run(["sftp", "-F", ssh_lab.ssh_config, "-b", "-", "h1"], stdin=None, input=batch)
    assert r.returncode == 0, r.stderr
    assert back.read_bytes() == payload


def test_wrong_key_is_refused(ssh_lab: SSHLab):
    r = run(ssh_lab.ssh_argv("h2", "true", key=ssh_lab.wrong_key))
    assert r.returncode == 255
    assert "Permission denied" in r.stderr


def test_connection_count_increases_per_connection(ssh_lab: SSHLab):
    before = ssh_lab.connection_count()
    logins = ssh_lab.login_count()
    for host in ("h1", "h4"):
        assert ssh(ssh_lab, host, "true").returncode == 0
    assert ssh_lab.connection_count() == before + 2
    assert ssh_lab.login_count() == logins + 2


def test_stop_kills_everything_and_removes_workdir(make_ssh_lab):
    lab = make_ssh_lab(hosts=2)
    workdir, port = lab.workdir, lab.port
    # A session that stays open while we stop the lab.
    client = subprocess.Popen(["ssh", "-F", lab.ssh_config, "h2", "sleep 60"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while "Starting session" not in lab.log_text():
            assert time.monotonic() < deadline, lab.log_text()
            assert client.poll() is None, lab.log_text()
            time.sleep(0.01)
        pids = lab.pids()
        # listener, per-connection monitor, privsep child, the remote command
        assert len(pids) >= 3, pids
        lab.stop()
        lab.stop()  # idempotent
        # The remote command is terminated first (143 = killed by SIGTERM), or
        # the connection drops (255); either way the client does not hang.
        assert client.wait(timeout=TIMEOUT) in (143, 255)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state == "Z", f"lab process {pid} survived stop()"
    assert not os.path.exists(workdir)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=1).close()
    assert "Received signal 15" in lab.log_text()  # log stays readable after stop


def test_second_lab_runs_alongside(ssh_lab: SSHLab, make_ssh_lab):
    other = make_ssh_lab(hosts=2)
    assert other.port != ssh_lab.port
    assert other.workdir != ssh_lab.workdir
    assert other.host_key_pub != ssh_lab.host_key_pub
    r1 = ssh(other, "h2", 'echo "$SSH_CONNECTION"')
    r2 = ssh(ssh_lab, "h2", 'echo "$SSH_CONNECTION"')
    assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr, r2.stderr)
    assert r1.stdout.split()[2:] == ["127.0.0.3", str(other.port)]
    assert r2.stdout.split()[2:] == ["127.0.0.3", str(ssh_lab.port)]
    # The other lab's host key is not trusted for this lab.
    r = run(["ssh", "-F", other.ssh_config, "-p", str(ssh_lab.port), "127.0.0.2", "true"])
    assert r.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in r.stderr or "host key" in r.stderr.lower()


def test_more_addresses_than_one_sshd_can_listen_on(make_ssh_lab):
    # OpenSSH listens on at most 16 sockets per process; bigger labs run several.
    lab = make_ssh_lab(hosts=20)
    assert len(lab.sshd_configs) == 2
    assert lab.addresses[-1] == "127.0.0.21"
    for addr in lab.addresses:
        socket.create_connection((addr, lab.port), timeout=2).close()
    r = run(["ssh", "-F", lab.ssh_config, "h20", 'echo "$SSH_CONNECTION"'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[2] == "127.0.0.21"


def test_extra_config_overrides_defaults(make_ssh_lab):
    lab = make_ssh_lab(hosts=1, extra_config="MaxSessions 3\nSetEnv PARALLAX_LAB_SET=yes\n"
                                             "Match Address 127.0.0.2\n    PermitTTY no\n")
    r = run([SSHD_PATH, "-T", "-f", lab.sshd_config])
    assert r.returncode == 0, r.stderr
    assert "maxsessions 3" in r.stdout.splitlines()
    r = ssh(lab, "h1", 'echo "$PARALLAX_LAB_SET"')
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "yes"


def test_bad_config_raises_with_log_tail(make_ssh_lab):
    with pytest.raises(RuntimeError) as info:
        make_ssh_lab(hosts=1, extra_config="NoSuchOption yes")
    assert "NoSuchOption" in str(info.value)
    assert "sshd_config" in str(info.value)


def test_unavailable_lab_skips_locally_and_fails_on_ci(monkeypatch, make_ssh_lab):
    from parallax.testing import pytest_plugin

    monkeypatch.setattr(pytest_plugin, "can_start_sshd", lambda: (False, "no sshd here"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no sshd here"):
        make_ssh_lab(hosts=1)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no sshd here"):
        make_ssh_lab(hosts=1)


def test_listener_pids_are_the_running_sshd_listeners(make_ssh_lab):
    lab = make_ssh_lab(hosts=20)  # one sshd per 16 addresses: two listeners
    pids = lab.listener_pids()
    assert len(pids) == 2
    assert set(pids) <= set(lab.pids())
    lab.stop()
    assert lab.listener_pids() == []
