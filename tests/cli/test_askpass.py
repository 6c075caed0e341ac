"""``-A``: one password prompt on the terminal, the answer used for every host (a real sshd with passwords)."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest
from cli_helpers import Pane, clean_env, cli, parallax_exe, wait_exit

from parallax.testing.sshd import TEST_ACCOUNT

PASSWORD = "pa ss-w0rd'\"$x"  # the same one tests/integration/test_password_auth.py uses


@pytest.fixture(scope="module")
def password_lab():
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("setting the test account's password needs root")
        pytest.skip("setting the test account's password needs root")
    from parallax.testing.sshd import SSHLab

    lab = SSHLab(hosts=2, extra_config="PasswordAuthentication yes\nPubkeyAuthentication no\n").start()
    assert lab.user == TEST_ACCOUNT
    subprocess.run(["chpasswd"], input=f"{lab.user}:{PASSWORD}\n", text=True, check=True)
    try:
        yield lab
    finally:
        subprocess.run(["usermod", "-p", "*", lab.user], check=True)
        lab.stop()


def flags(lab) -> list[str]:
    return ["-H", " ".join(lab.hosts), "-l", lab.user, "-O", f"UserKnownHostsFile={lab.known_hosts}", "-i"]


@pytest.mark.parametrize("backend", ["openssh", "paramiko"])
def test_askpass_prompts_once_on_the_terminal(password_lab, tmp_path, backend):
    pane = Pane(tmp_path)
    try:
        argv = [parallax_exe(), "run", "-A", *flags(password_lab), "--backend", backend, "id -un"]
        done = pane.start(shlex.join(argv))
        prompt = pane.wait_for(lambda lines: any(x.startswith("Password:") for x in lines))
        assert any("do not enter your password" in x for x in prompt)  # pssh's warning first
        pane.type(PASSWORD)
        assert wait_exit(done) == 0, "\n".join(pane.screen())
        screen = pane.screen()
        assert sum(x.startswith("Password:") for x in screen) == 1  # once, for both hosts
        assert screen.count(password_lab.user) == 2
        assert not any(PASSWORD in x for x in screen)  # never echoed
    finally:
        pane.close()


def test_without_askpass_password_hosts_fail_with_exit_4(password_lab):
    r = cli("run", *flags(password_lab), "-O", "BatchMode=yes", "true", env=clean_env())
    assert r.rc == 4, r.out + r.err
