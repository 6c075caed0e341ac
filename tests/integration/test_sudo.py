"""``sudo=True`` on every built-in backend, against a real sshd and a real sudo (issue 11).

The module creates an account ``parallaxsudo`` (one per test worker) with a password and a sudoers
rule that needs it (``ALL=(root) ALL``) plus one that does not
(``(nobody) NOPASSWD: ALL``); root only, as CI runs.  Checked: the command
runs as the sudo user, input follows the password intact, a wrong or missing
password is a ``CommandFailed`` saying so, and the password is absent from
argv and environments of every process, from temp files, DEBUG logs and
``repr()`` of options, settings, jobs, results and errors.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

import pytest

import parallax
from parallax.options import Options, resolve
from parallax.planner import plan_commands, plan_targets
from parallax.testing.processes import process_table, processes_with
from parallax.testing.sshd import _ensure_test_account

#: One account per pytest-xdist worker (``gw0``, ``gw1``, ...): each worker sets its own password.
ACCOUNT = "parallaxsudo" + os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
SUDO_PASSWORD = "sudo-" + uuid.uuid4().hex[:12] + " 'x\"$y"
SUDOERS = f"/etc/sudoers.d/{ACCOUNT}-test"
BACKENDS = ["openssh", "paramiko", "asyncssh"]


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0 or shutil.which("sudo") is None:
        reason = "needs root and sudo (apt-get install -y sudo)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from parallax.testing.sshd import SSHLab

    _ensure_test_account(ACCOUNT, f"/home/{ACCOUNT}")
    subprocess.run(["chpasswd"], input=f"{ACCOUNT}:{SUDO_PASSWORD}\n", text=True, check=True)
    with open(SUDOERS, "w") as f:
        f.write(f"{ACCOUNT} ALL=(root) ALL\n{ACCOUNT} ALL=(nobody) NOPASSWD: ALL\n")
    os.chmod(SUDOERS, 0o440)
    subprocess.run(["visudo", "-c", "-f", SUDOERS], check=True, capture_output=True)
    lab = SSHLab(hosts=2, user=ACCOUNT).start()
    try:
        yield lab
    finally:
        os.unlink(SUDOERS)
        subprocess.run(["usermod", "-p", "*", ACCOUNT], check=True)
        lab.stop()


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def opts(lab, backend, **kw):
    base = dict(backend=backend, ssh_key=lab.client_key, known_hosts=lab.known_hosts, default_user=lab.user,
                host_key_policy="strict", timeout=30, sudo=True, sudo_password=SUDO_PASSWORD)
    base.update(kw)
    return base


@pytest.mark.parametrize("backend", BACKENDS)
def test_sudo_runs_as_root_and_input_follows_the_password_intact(lab, backend):
    res = parallax.call(lab.hosts, "id -un; cat", input_stream=b"line 1\nline 2\n", **opts(lab, backend))
    for r in res.values():
        assert not isinstance(r, parallax.Error), r
        assert r.stdout == b"root\nline 1\nline 2\n", r
        assert SUDO_PASSWORD.encode() not in r.stdout + r.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_sudo_user_without_password_rule_never_leaves_the_password_on_stdin(lab, backend):
    res = parallax.call(lab.hosts[:1], "id -un; cat", input_stream=b"in\n",
                        **opts(lab, backend, sudo_user="nobody"))
    r = next(iter(res.values()))
    assert not isinstance(r, parallax.Error), r
    assert r.stdout == b"nobody\nin\n", r
    bare = parallax.call(lab.hosts[:1], "id -un", **opts(lab, backend, sudo_user="nobody", sudo_password=None))
    assert [x.stdout for x in bare.values()] == [b"nobody\n"], bare


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["call", "run"])
def test_a_wrong_or_missing_sudo_password_is_a_command_failed_saying_so(lab, backend, mode):
    fn = getattr(parallax, mode)
    wrong = SUDO_PASSWORD + "-wrong"
    marker = f"/tmp/parallax-sudo-ran-{uuid.uuid4().hex[:8]}"
    res = fn(lab.hosts, f"touch {marker}", **opts(lab, backend, sudo_password=wrong))
    for err in res.values():
        assert isinstance(err, parallax.CommandFailed), err
        assert "sudo refused the password" in str(err), str(err)
        assert wrong not in str(err) + repr(err) and wrong.encode() not in err.stdout + err.stderr
    missing = fn(lab.hosts[:1], f"touch {marker}", **opts(lab, backend, sudo_password=None))
    err = next(iter(missing.values()))
    assert isinstance(err, parallax.CommandFailed) and "needs a password" in str(err), err
    assert not os.path.exists(marker), "the command ran although sudo refused"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("persistent_shell", [False, True])
def test_sudo_in_a_session_and_prompt_once(lab, backend, persistent_shell, monkeypatch):
    prompts = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return SUDO_PASSWORD

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    kw = opts(lab, backend, sudo_password=None, sudo_askpass=True)
    with parallax.Session(lab.hosts, persistent_shell=persistent_shell, **kw) as s:
        for _ in range(2):
            res = s.call("id -un")
            assert [r.stdout for r in res.values()] == [b"root\n"] * len(lab.hosts), res
        plain = s.call("id -un", sudo=False)
        assert [r.stdout for r in plain.values()] == [ACCOUNT.encode() + b"\n"] * len(lab.hosts), plain
    assert len(prompts) == 1, prompts


def test_sudo_user_is_checked_before_anything_runs():
    with pytest.raises(ValueError, match="sudo_user"):
        resolve(None, sudo=True, sudo_user="root; touch /tmp/x")
    with pytest.raises(TypeError, match="sudo_user"):
        resolve(None, sudo=True, sudo_user=0)
    with pytest.raises(ValueError, match="sudo_password"):
        plan_commands(plan_targets(["h"], resolve(None)), "true",
                      resolve(None, sudo=True, sudo_password="a\nb"), check=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sudo_password_in_no_repr_log_argv_environ_or_file(lab, backend, caplog):
    for name in ("", "parallax", "paramiko", "asyncssh", "parallax.paramiko.transport"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    options = Options(**opts(lab, backend, verbose=True))
    settings = resolve(options)
    jobs = plan_commands(plan_targets(lab.hosts, settings), "id -un", settings, check=True, stdin=b"x")
    res = parallax.call(lab.hosts, "id -un", options)
    bad = parallax.call(lab.hosts[:1], "true", options, sudo_password="nope")
    texts = [repr(options), repr(settings), repr(jobs), repr(res), repr(bad), str(bad), caplog.text,
             "".join(repr(r.__dict__) for r in caplog.records)]
    texts += [repr(e.task) for e in bad.values()]
    for text in texts:
        assert SUDO_PASSWORD not in text, text[:2000]
    assert caplog.records, "nothing was logged at DEBUG: the test would prove nothing"

    # while a sudo command runs (started by another program, killed with -9 at the end)
    tmp = tempfile.mkdtemp(prefix="pxsudo-", dir="/tmp")
    token = f"21.{uuid.uuid4().int % 10**6:06d}"
    child_code = textwrap.dedent("""
        import sys, parallax
        backend, user, key, known, token, *hosts = sys.argv[1:]
        pw = sys.stdin.readline().rstrip("\\n")
        parallax.call(hosts, f"sleep {token}", backend=backend, ssh_key=key, known_hosts=known,
                      default_user=user, host_key_policy="strict", timeout=60, sudo=True, sudo_password=pw)
    """)
    child = subprocess.Popen([sys.executable, "-c", child_code, backend, lab.user, lab.client_key, lab.known_hosts,
                              token, *lab.hosts], stdin=subprocess.PIPE, env={**os.environ, "TMPDIR": tmp})
    try:
        child.stdin.write((SUDO_PASSWORD + "\n").encode())
        child.stdin.flush()
        deadline = time.monotonic() + 30
        while not any(cmd.startswith("sleep ") for cmd in processes_with(token).values()) \
                and time.monotonic() < deadline:
            assert child.poll() is None
            time.sleep(0.05)
        assert any(cmd.startswith("sleep ") for cmd in processes_with(token).values()), "sudo never ran the command"
        assert not _secret_in_proc(), _secret_in_proc()
        assert not _secret_in_files(tmp), _secret_in_files(tmp)
        child.kill()
        child.wait(10)
        assert not _secret_in_files(tmp), _secret_in_files(tmp)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for pid in processes_with(token):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


def _secret_in_proc() -> list[str]:
    found = []
    for pid in process_table():
        for name in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    if SUDO_PASSWORD.encode() in f.read():
                        found.append(f"/proc/{pid}/{name}")
            except OSError:
                pass
    return found


def _secret_in_files(root: str) -> list[str]:
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as f:
                    if SUDO_PASSWORD.encode() in f.read():
                        found.append(path)
            except OSError:
                pass
    return found


def test_the_command_line_sudo_flag_prompts_once_and_runs_as_root(lab, tmp_path):
    """``parallax run --sudo`` in a real terminal: the password is typed at the prompt, never on argv."""
    import shlex

    exe = shutil.which("parallax")
    assert exe, "the parallax console script is not installed"
    hosts = " ".join(lab.hosts)
    out = tmp_path / "out.txt"
    argv = [exe, "run", "-H", hosts, "-l", lab.user, "-i", "--no-progress", "-O", f"IdentityFile={lab.client_key}",
            "-O", f"UserKnownHostsFile={lab.known_hosts}", "-O", "IdentitiesOnly=yes", "--sudo", "--", "id", "-u"]
    session = f"parallax-sudo-{uuid.uuid4().hex[:8]}"
    line = shlex.join(argv) + f" > {shlex.quote(str(out))} 2>&1; echo EXIT=$? >> {shlex.quote(str(out))}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50"], check=True)
    try:
        subprocess.run(["tmux", "send-keys", "-t", session, line, "Enter"], check=True)
        deadline = time.monotonic() + 30
        while "sudo password" not in subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                                    capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "no sudo password prompt"
            time.sleep(0.1)
        assert _secret_in_proc() == []
        subprocess.run(["tmux", "send-keys", "-t", session, "-l", SUDO_PASSWORD], check=True)
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        while "EXIT=" not in (out.read_text() if out.exists() else ""):
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    text = out.read_text()
    assert "EXIT=0" in text, text
    assert text.count("[SUCCESS]") == 2 and text.count("\n0\n") == 2, text  # id -u: root on both hosts
    assert SUDO_PASSWORD not in text
