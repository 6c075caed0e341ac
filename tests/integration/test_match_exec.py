"""Issue 9, Security 1: no host name and no ssh config makes parallax run a local command.

paramiko's ``SSHConfig.lookup`` and asyncssh's config loader run a config's
``Match exec`` command through a local shell, with ``%h`` expanded to the host
name.  The in-process backends refuse such a config before any lookup (a
``BadInput`` naming the file and line), and every input form refuses a host
name holding a character OpenSSH refuses (``x;touch${IFS}PWNED;``) before
anything runs, whatever the backend.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from helpers import lab_opts, ok

import parallax
from parallax.errors import BadInput
from parallax.testing import SSHLab

IN_PROCESS = ["paramiko", "asyncssh"]
EVIL = "x;touch${IFS}PWNED;"


def match_exec_config(tmp_path: pathlib.Path, lab: SSHLab, *, name: str = "ssh_config") -> pathlib.Path:
    """An ssh config whose line 4 is ``Match exec "touch <tmp>/PWNED-%h"``, otherwise usable for *lab*."""
    path = tmp_path / name
    path.write_text(
        "# a config a victim might have\n"
        f"Host *\n    IdentityFile {lab.client_key}\n"
        f'Match exec "touch {tmp_path}/PWNED-%h"\n'
        "    User nobody\n"
    )
    return path


def pwned(tmp_path: pathlib.Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("PWNED"))


def error_of(call) -> BadInput:
    """The BadInput a call raises (paramiko checks up front) or returns for its host (asyncssh)."""
    try:
        results = call()
    except BadInput as e:
        return e
    (error,) = results.values()
    assert isinstance(error, BadInput), error
    return error


CONTROL = {
    "paramiko": "import paramiko, sys; paramiko.SSHConfig.from_path(sys.argv[1]).lookup('victim')",
    # asyncssh's own config loader (a module of asyncssh parallax no longer uses), called as asyncssh calls it
    "asyncssh": "import sys, getpass; from asyncssh.config import SSHClientConfig; "
                "SSHClientConfig.load(None, [sys.argv[1]], False, False, False, getpass.getuser(), (), 'victim', ())",
}


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_the_config_really_runs_a_command_when_the_library_reads_it(ssh_lab: SSHLab, tmp_path, backend):
    # the control: the library itself, without parallax's guard, runs the command (so the tests below mean
    # something); in a child process, as paramiko's runner wants a stdin pytest does not give
    cfg = match_exec_config(tmp_path, ssh_lab)
    subprocess.run([sys.executable, "-c", CONTROL[backend], str(cfg)], stdin=subprocess.DEVNULL, check=True,
                   timeout=60)
    # paramiko expands %h to the host name; asyncssh runs the command as written
    assert pwned(tmp_path) == (["PWNED-victim"] if backend == "paramiko" else ["PWNED-%h"])


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_match_exec_config_is_refused_naming_file_and_line(ssh_lab: SSHLab, tmp_path, backend):
    cfg = match_exec_config(tmp_path, ssh_lab)
    before = ssh_lab.connection_count()
    error = error_of(lambda: parallax.run(ssh_lab.hosts[:1], "true",
                                          **lab_opts(ssh_lab, backend, ssh_config=str(cfg), timeout=30)))
    assert names_line(error, cfg, 4) and "Match exec" in str(error)
    assert pwned(tmp_path) == []
    assert ssh_lab.connection_count() == before  # refused before connecting


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_negated_and_equals_forms_are_refused(ssh_lab: SSHLab, tmp_path, backend):
    cfg = tmp_path / "cfg"
    cfg.write_text(f"Match host nothing-matches !EXEC=\"touch {tmp_path}/PWNED-%h\"\n    User nobody\n")
    error = error_of(lambda: parallax.run(ssh_lab.hosts[:1], "true",
                                          **lab_opts(ssh_lab, backend, ssh_config=str(cfg), timeout=30)))
    assert names_line(error, cfg, 1)
    assert pwned(tmp_path) == []


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_match_exec_in_an_included_file_is_refused(ssh_lab: SSHLab, tmp_path, backend):
    inner = match_exec_config(tmp_path, ssh_lab, name="inner")
    outer = tmp_path / "outer"
    outer.write_text(f"Host *\n    ConnectTimeout 20\nInclude {inner}\n")
    error = error_of(lambda: parallax.run(ssh_lab.hosts[:1], "true",
                                          **lab_opts(ssh_lab, backend, ssh_config=str(outer), timeout=30)))
    assert names_line(error, inner, 4)  # both in-process backends follow Include now, as ssh does
    assert pwned(tmp_path) == []


def names_line(error: object, path: object, line: int) -> bool:
    """Whether *error* names the file and line (``FILE:LINE`` or ``'FILE', line LINE``)."""
    text = str(error)
    return f"{path}:{line}:" in text or f"{path}', line {line}" in text


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_a_config_without_match_exec_still_works(ssh_lab: SSHLab, tmp_path, backend):
    cfg = tmp_path / "cfg"
    cfg.write_text("# exec is only a word in a comment here\nMatch host *\n    ConnectTimeout 20\n")
    ok(parallax.run(ssh_lab.hosts[:1], "true", **lab_opts(ssh_lab, backend, ssh_config=str(cfg), timeout=30)))


def _forms(tmp_path: pathlib.Path) -> dict[str, object]:
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text(f"ok-host\n{EVIL}\n")
    return {
        "string": EVIL,
        "list": [EVIL],
        "tuple": [(EVIL, 22)],
        "tuple user": [("h1", 22, EVIL)],
        "user@": [f"{EVIL}@h1"],
        "node set": [f"h[1-2],{EVIL}"],
        "path": hosts_file,
        "list with path": [hosts_file],
        "PARALLAX_HOSTS": None,
    }


@pytest.mark.parametrize("backend", ["openssh", *IN_PROCESS])
@pytest.mark.parametrize("form", list(_forms(pathlib.Path("/"))))
def test_shell_characters_in_a_host_are_refused_in_every_form(ssh_lab, tmp_path, monkeypatch, backend, form):
    hosts = _forms(tmp_path)[form]
    monkeypatch.setenv("PARALLAX_HOSTS", str(tmp_path / "hosts"))
    monkeypatch.chdir(tmp_path)  # a relative PWNED would land here
    cfg = match_exec_config(tmp_path, ssh_lab)
    with pytest.raises(ValueError) as info:
        parallax.run(hosts, "true", **lab_opts(ssh_lab, backend, ssh_config=str(cfg), timeout=30))
    assert EVIL in str(info.value)
    assert "';'" in str(info.value)
    assert pwned(tmp_path) == []
    assert not os.path.exists("PWNED")


@pytest.mark.parametrize("value", [EVIL, "a$(id)", "a`id`", "a|b", "a&b", "a>b", "a\\b", 'a"b', "a'b", "a{b}"])
def test_default_user_and_parallax_user_are_refused_with_shell_characters(value):
    with pytest.raises(ValueError, match="option default_user"):
        parallax.run(["h1"], "true", default_user=value, backend="mock")
    with pytest.raises(ValueError, match="PARALLAX_USER"):
        parallax.options.resolve(parallax.Options(), {"PARALLAX_USER": value})
