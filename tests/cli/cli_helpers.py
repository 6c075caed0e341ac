"""Running the installed ``parallax`` command in tests, and the flags that reach the test sshd."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest

#: pssh's status line: "[1] 12:34:56 [SUCCESS] host" / "[2] 12:34:57 [FAILURE] host words".
STATUS = re.compile(r"^\[(\d+)\] (\d\d:\d\d:\d\d) \[(SUCCESS|FAILURE)\] (\S+)(?: (.*))?$")


@dataclass
class Done:
    """A finished ``parallax`` process."""

    rc: int
    out: str
    err: str
    raw: bytes

    def statuses(self) -> list[re.Match]:
        """The status lines of stdout, in order."""
        return [m for m in map(STATUS.match, self.out.splitlines()) if m]


def parallax_exe() -> str:
    exe = shutil.which("parallax")
    assert exe, "the parallax console script is not installed: pip install --no-deps -e ."
    return exe


def lab_flags(lab) -> list[str]:
    """pssh-style flags that reach *lab*: -l and -O options only (what any pssh user would write)."""
    return ["-l", lab.user, "-O", f"IdentityFile={lab.client_key}", "-O", f"UserKnownHostsFile={lab.known_hosts}",
            "-O", "IdentitiesOnly=yes", "-O", "BatchMode=yes", "-O", "StrictHostKeyChecking=yes"]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without PARALLAX_* (so only what a test sets applies)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARALLAX_")}
    env.pop("SSH_AUTH_SOCK", None)
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, input: bytes | None = None,
        timeout: float = 60, cwd: str | None = None, **kw) -> Done:
    """Run the installed ``parallax`` with *args*; stdin is empty unless *input* is given."""
    proc = subprocess.run([parallax_exe(), *args], check=False, input=input if input is not None else b"",
                          capture_output=True, timeout=timeout, env=env if env is not None else clean_env(),
                          cwd=cwd, **kw)
    return Done(proc.returncode, proc.stdout.decode("utf-8", "replace"),
                proc.stderr.decode("utf-8", "replace"), proc.stdout)


class Pane:
    """One tmux pane on a private server."""

    def __init__(self, tmp_path) -> None:
        exe = shutil.which("tmux")
        if exe is None:
            if os.environ.get("CI"):
                pytest.fail("tmux is not installed (.ci/run installs it)")
            pytest.skip("tmux is not installed")
        self.tmux = [exe, "-L", f"parallax-test-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
        self.tmp = tmp_path
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "t", "-x", "200", "-y", "50",
                        "bash --norc --noprofile"],
                       check=True, timeout=30)

    def start(self, script: str) -> str:
        """Run *script* (shell) in the pane; return the path of the file its exit status lands in."""
        done = self.tmp / f"done-{uuid.uuid4().hex[:6]}"
        path = self.tmp / "script.sh"
        setup = "for v in $(compgen -e | grep '^PARALLAX_'); do unset \"$v\"; done\n"
        path.write_text(setup + script + f"\necho $? > {shlex.quote(str(done))}\n")
        subprocess.run([*self.tmux, "send-keys", "-t", "t", f"clear; bash {shlex.quote(str(path))}", "Enter"],
                       check=True, timeout=30)
        return str(done)

    def type(self, text: str) -> None:
        """Type *text* literally into the pane, then Enter."""
        subprocess.run([*self.tmux, "send-keys", "-t", "t", "-l", text], check=True, timeout=30)
        subprocess.run([*self.tmux, "send-keys", "-t", "t", "Enter"], check=True, timeout=30)

    def key(self, name: str) -> None:
        """Press one key (tmux's name for it, e.g. ``C-c``)."""
        subprocess.run([*self.tmux, "send-keys", "-t", "t", name], check=True, timeout=30)

    def screen(self, escapes: bool = False) -> list[str]:
        """The visible lines; with *escapes*, with the colours as escape sequences."""
        flags = ["-p", "-e"] if escapes else ["-p"]
        out = subprocess.run([*self.tmux, "capture-pane", *flags, "-t", "t"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        return out.splitlines()

    def wait_for(self, predicate, timeout: float = 60) -> list[str]:
        """Capture the pane until *predicate(lines)* holds; those lines."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.screen()
            if predicate(lines):
                return lines
            time.sleep(0.05)
        raise AssertionError("pane never showed what was expected:\n" + "\n".join(self.screen()))

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], check=False, capture_output=True, timeout=30)


def exit_file(done: str) -> int | None:
    """The exit status a :meth:`Pane.start` script wrote, or ``None`` while it runs."""
    try:
        with open(done) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def wait_exit(done: str, timeout: float = 90) -> int:
    """Wait for the exit status of a :meth:`Pane.start` script."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = exit_file(done)
        if status is not None:
            return status
        time.sleep(0.05)
    raise AssertionError("the command did not finish")
