"""Secrets (passwords, key passphrases) never leak, on every built-in backend (issue 9, security 5).

Against a real sshd whose test account gets a real password for the module
(root only, as CI runs): the password is absent from ``repr()`` of options,
settings, targets, jobs and errors, from DEBUG logs of a whole call, from
every file under the temporary directory, and from ``/proc/*/cmdline`` and
``/proc/*/environ`` of every process, also after ``kill -9`` of the program
making the call.  A key passphrase unlocks keys only: it is never offered to
the server as a login password, which the sshd log (LogLevel VERBOSE) shows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

import pytest

import parallax
from parallax.backends.askpass import answer_for
from parallax.options import Options, resolve
from parallax.planner import plan_commands
from parallax.session import AsyncSession
from parallax.testing.processes import process_table, processes_with
from parallax.testing.passwords import password_lab, set_password

PASSWORD = "pw-" + uuid.uuid4().hex[:12] + " 'q\"$x"
PASSPHRASE = "pp-" + uuid.uuid4().hex[:12] + " phrase"
BACKENDS = ["openssh", "paramiko", "asyncssh"]


@pytest.fixture(scope="module")
def lab():
    with password_lab(PASSWORD) as lab:
        yield lab


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def password_opts(lab, backend, **kw):
    """Password login only (no key is even tried)."""
    base = dict(backend=backend, password=PASSWORD, default_user=lab.user, known_hosts=lab.known_hosts,
                host_key_policy="strict", ssh_options=["PubkeyAuthentication=no"], timeout=30)
    base.update(kw)
    return base


def encrypted_copy(source: str, directory: str, passphrase: str) -> str:
    """A copy of private key *source* encrypted with *passphrase*."""
    path = os.path.join(directory, f"key-{uuid.uuid4().hex[:8]}")
    with open(source, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", passphrase, "-f", path], check=True,
                   capture_output=True, timeout=20)
    return path


def secrets_in_proc() -> list[str]:
    """``/proc/PID/{cmdline,environ}`` files of any process that hold a secret."""
    found = []
    needles = [s.encode() for s in (PASSWORD, PASSPHRASE)]
    for pid in process_table():
        for name in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if any(n in data for n in needles):
                found.append(f"/proc/{pid}/{name} ({data[:80]!r})")
    return found


def secrets_in_files(root: str) -> list[str]:
    """Files under *root* whose content holds a secret."""
    found = []
    needles = [s.encode() for s in (PASSWORD, PASSPHRASE)]
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:  # sockets, vanished files
                continue
            if any(n in data for n in needles):
                found.append(path)
    return found


# --- repr() and logs ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_repr_of_options_settings_targets_and_jobs_hides_secrets(lab, backend):
    opts = Options(password=PASSWORD, passphrase=PASSPHRASE, backend=backend)
    settings = resolve(opts)
    texts = [repr(opts), str(opts), repr(settings), str(settings)]

    async def session_reprs() -> list[str]:
        async with AsyncSession(lab.hosts, opts) as s:
            jobs = plan_commands(s.targets, "true", s.settings, check=True)
            return [repr(s.settings), repr(s.targets), repr(jobs), repr(s.targets[0].connection),
                    repr(vars(s)), repr(s.backend.__dict__)]

    texts += asyncio.run(session_reprs())
    for text in texts:
        assert PASSWORD not in text and PASSPHRASE not in text, text
    assert "password=<hidden>" in repr(opts)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_whole_call_logs_no_secret_at_debug_level(lab, backend, caplog, tmp_path):
    key = encrypted_copy(lab.client_key, str(tmp_path), PASSPHRASE)
    names = ["", "parallax", "paramiko", "asyncssh", "parallax.paramiko.transport"]
    for name in names:
        caplog.set_level(logging.DEBUG, logger=name or None)
    good = parallax.run(lab.hosts, "echo in", **password_opts(lab, backend, verbose=True))
    assert all(r.stdout == b"in\n" for r in good.values()), good
    unlocked = parallax.run(lab.hosts[:1], "echo key", backend=backend, ssh_key=key, passphrase=PASSPHRASE,
                            default_user=lab.user, known_hosts=lab.known_hosts, timeout=30,
                            ssh_options=["IdentitiesOnly=yes"])
    assert [r.stdout for r in unlocked.values()] == [b"key\n"], unlocked
    bad = parallax.run(lab.hosts[:1], "true", **password_opts(lab, backend, password=PASSWORD + "-wrong"))
    err = next(iter(bad.values()))
    assert isinstance(err, parallax.AuthenticationFailed), err
    for text in (repr(err), str(err), repr(bad), repr(good)):
        assert PASSWORD not in text and PASSPHRASE not in text, text
    logged = caplog.text + "".join(repr(r.args) + repr(r.__dict__) for r in caplog.records)
    assert caplog.records, "nothing was logged at DEBUG: the test would prove nothing"
    assert PASSWORD not in logged and PASSPHRASE not in logged


# --- nothing on disk, in argv or environments, even after kill -9 ---------------------------

CHILD = textwrap.dedent("""
    import sys, parallax
    backend, user, known, token, *hosts = sys.argv[1:]
    password = sys.stdin.readline().rstrip("\\n")  # never in argv or the environment
    res = parallax.run(hosts, f"sleep {token}; echo done", backend=backend, password=password,
                       default_user=user, known_hosts=known, host_key_policy="strict",
                       ssh_options=["PubkeyAuthentication=no"], timeout=60)
    print(res)
""")


@pytest.mark.parametrize("backend", BACKENDS)
def test_password_is_never_on_disk_in_argv_or_environ_even_after_kill_9(lab, backend):
    tmp = tempfile.mkdtemp(prefix="pxsec-", dir="/tmp")  # short: the backend's private dir goes here
    token = f"20.{uuid.uuid4().int % 10**6:06d}"
    env = {**os.environ, "TMPDIR": tmp}
    child = subprocess.Popen([sys.executable, "-c", CHILD, backend, lab.user, lab.known_hosts, token, *lab.hosts],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    descendants: set[int] = set()
    try:
        child.stdin.write((PASSWORD + "\n").encode())
        child.stdin.flush()
        deadline = time.monotonic() + 30
        while len(processes_with(token)) < 2 * len(lab.hosts) and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        # both remote commands run (the shell and its sleep on each host): authenticated by password
        assert len(processes_with(token)) >= len(lab.hosts), "the remote commands never started"
        table = process_table()
        descendants = _descendants(child.pid, table)
        assert not secrets_in_files(tmp), secrets_in_files(tmp)
        assert not secrets_in_proc(), secrets_in_proc()
        if backend == "openssh":
            assert os.listdir(tmp), "the openssh backend made no private directory under TMPDIR"
        child.kill()
        child.wait(10)
        assert not secrets_in_files(tmp), f"left on disk after kill -9: {secrets_in_files(tmp)}"
        assert not secrets_in_proc(), secrets_in_proc()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for pid in descendants | set(processes_with(token)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        subprocess.run(["rm", "-rf", tmp], check=False)


def _descendants(root: int, table: dict[int, tuple[int, str]]) -> set[int]:
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


# --- a passphrase is never a login password -------------------------------------------------


def password_attempts(lab, since: int) -> list[str]:
    """sshd log lines (after offset *since*) about password or keyboard-interactive logins."""
    text = lab.log_text()[since:]
    return [ln for ln in text.splitlines()
            if "password" in ln.lower() or "keyboard-interactive" in ln.lower()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_passphrase_is_never_offered_as_a_login_password(lab, backend, tmp_path):
    # The account's password *is* the passphrase here: offering it would log in.
    refused_key = encrypted_copy(lab.wrong_key, str(tmp_path), PASSPHRASE)
    base = dict(backend=backend, ssh_key=refused_key, default_user=lab.user, known_hosts=lab.known_hosts,
                timeout=30, ssh_options=["IdentitiesOnly=yes"])
    set_password(lab.user, PASSPHRASE)
    try:
        since = len(lab.log_text())
        err = next(iter(parallax.run(lab.hosts[:1], "echo in", passphrase=PASSPHRASE, **base).values()))
        assert isinstance(err, parallax.AuthenticationFailed), f"logged in with the passphrase: {err!r}"
        time.sleep(0.2)  # sshd writes its log lines asynchronously
        assert not password_attempts(lab, since), password_attempts(lab, since)
        assert "publickey" in lab.log_text()[since:], "the refused key was not even offered"
        # the same value given as password= as well is the caller's choice: then it is offered
        since = len(lab.log_text())
        r = next(iter(parallax.run(lab.hosts[:1], "echo in", passphrase=PASSPHRASE, password=PASSPHRASE,
                                   **base).values()))
        assert not isinstance(r, parallax.Error) and r.stdout == b"in\n", r
        time.sleep(0.2)
        assert any("Accepted password" in ln for ln in password_attempts(lab, since)), \
            "the sshd log shows no password login: the check above would prove nothing"
    finally:
        set_password(lab.user, PASSWORD)


@pytest.mark.parametrize("backend", BACKENDS)
def test_passphrase_unlocks_the_key_and_password_only_logs_in(lab, backend, tmp_path):
    key = encrypted_copy(lab.client_key, str(tmp_path), PASSPHRASE)
    base = dict(backend=backend, ssh_key=key, default_user=lab.user, known_hosts=lab.known_hosts, timeout=30,
                ssh_options=["IdentitiesOnly=yes"])
    since = len(lab.log_text())
    both = parallax.run(lab.hosts[:1], "echo key", passphrase=PASSPHRASE, password=PASSPHRASE + "-not-it",
                        **base)
    assert [r.stdout for r in both.values()] == [b"key\n"], both
    time.sleep(0.2)
    log = lab.log_text()[since:]
    assert "Accepted publickey" in log, log[-2000:]
    assert not password_attempts(lab, since), password_attempts(lab, since)
    locked = parallax.run(lab.hosts[:1], "echo key", **base)
    assert isinstance(next(iter(locked.values())), parallax.AuthenticationFailed), locked


def test_askpass_answers_only_the_prompt_it_was_asked_for():
    user, host = "alice", "web1"
    assert answer_for(f"{user}@{host}'s password: ", "pw", "pp") == "pw"
    assert answer_for("Password: ", "pw", "pp") == "pw"
    assert answer_for("Enter passphrase for key '/root/.ssh/id_ed25519': ", "pw", "pp") == "pp"
    assert answer_for(f"{user}@{host}'s password: ", None, "pp") is None
    assert answer_for("Enter passphrase for key '/k': ", "pw", None) is None
    for other in ("Are you sure you want to continue connecting (yes/no/[fingerprint])? ",
                  "Enter PIN for ED25519-SK key /k: ", "Verification code: ", ""):
        assert answer_for(other, "pw", "pp") is None, other


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("persistent_shell", [False, True])
def test_password_login_in_a_session(lab, backend, persistent_shell):
    with parallax.Session(lab.hosts, persistent_shell=persistent_shell, **password_opts(lab, backend)) as s:
        for _ in range(2):
            res = s.run("id -un")
            assert [r.stdout for r in res.values()] == [f"{lab.user}\n".encode()] * len(lab.hosts), res
        assert PASSWORD not in repr(s.backend.__dict__) and PASSWORD not in repr(s._session.settings)


def test_askpass_helper_answers_by_prompt_and_token_only(tmp_path):
    from parallax.backends.askpass import ENV_TOKEN, AskpassServer

    async def ask(env: dict[str, str], prompt: str) -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_exec(env["SSH_ASKPASS"], prompt, env={**os.environ, **env},
                                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out, _ = await proc.communicate()
        return proc.returncode, out

    async def main() -> list[tuple[int, bytes]]:
        directory = tmp_path / "private"
        directory.mkdir(mode=0o700)
        server = AskpassServer(str(directory))
        try:
            env = server.environment(PASSWORD, PASSPHRASE)
            only_phrase = server.environment(None, PASSPHRASE)
            assert PASSWORD not in repr(env) and PASSPHRASE not in repr(env)
            with open(env["SSH_ASKPASS"]) as f:
                assert PASSWORD not in f.read()
            return [
                await ask(env, "alice@web1's password: "),
                await ask(env, "Enter passphrase for key '/k': "),
                await ask(env, "Are you sure you want to continue connecting (yes/no/[fingerprint])? "),
                await ask(only_phrase, "alice@web1's password: "),
                await ask({**env, ENV_TOKEN: "0" * 32}, "alice@web1's password: "),
            ]
        finally:
            server.close()

    answers = asyncio.run(main())
    assert answers == [(0, PASSWORD.encode() + b"\n"), (0, PASSPHRASE.encode() + b"\n"), (1, b""), (1, b""),
                       (1, b"")]
