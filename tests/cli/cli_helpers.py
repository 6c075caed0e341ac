"""Running the installed ``parallax`` command in tests, and the flags that reach the test sshd."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Sequence

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
    proc = subprocess.run([parallax_exe(), *args], input=input if input is not None else b"",
                          capture_output=True, timeout=timeout, env=env if env is not None else clean_env(),
                          cwd=cwd, **kw)
    return Done(proc.returncode, proc.stdout.decode("utf-8", "replace"),
                proc.stderr.decode("utf-8", "replace"), proc.stdout)
