"""``-A``: one password prompt on the terminal, the answer used for every host (a real sshd with passwords)."""

from __future__ import annotations

import shlex

import pytest
from cli_helpers import Pane, clean_env, cli, parallax_exe, wait_exit

from parallax.testing.passwords import password_lab as password_lab_of

PASSWORD = "pa ss-w0rd'\"$x"  # the same one tests/integration/test_password_auth.py uses


@pytest.fixture(scope="module")
def password_lab():
    with password_lab_of(PASSWORD, pubkey=False) as lab:
        yield lab


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
