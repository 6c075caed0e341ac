"""``python -m parallax demo``, the first thing a new user runs, end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from parallax.testing import can_start_sshd


@pytest.mark.parametrize("kind", ["sshd", "embedded"])
def test_demo_runs_and_cleans_up(kind, tmp_path):
    if kind == "sshd" and not can_start_sshd()[0]:
        if os.environ.get("CI"):
            pytest.fail(f"sshd cannot start: {can_start_sshd()[1]}")
        pytest.skip(can_start_sshd()[1])
    proc = subprocess.run([sys.executable, "-m", "parallax", "demo", "--host-kind", kind],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "reached on 127.0.0.2" in out
    assert "CommandFailed: Exited with error code 3, Error output: about to fail" in out
    assert "ConnectionFailed" in out  # the dead host, while the live one answered
    assert out.count("/slurped/") == 3 and "greeting.txt" in out
    assert "Done;" in out
    assert list(tmp_path.iterdir()) == []  # nothing left in the working directory
