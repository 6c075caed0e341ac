"""crmsh's crm_pssh (``crm configure rsctest``, history's live update) on 1.0's
deprecated ``parallax.manager.Manager`` / ``parallax.task.Task`` layer (issue #8, item 3).

crm_pssh builds an ``ssh`` argument vector per host itself, so the backend
does not apply: these run the system ssh against the lab.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings

import pytest

from parallax.testing.processes import process_table, command_line

import crmsh_calls as crmsh


@pytest.fixture
def lab_options(ssh_lab):
    """What crm_pssh's ``opts.options`` would carry to reach the lab."""
    return [f"IdentityFile={ssh_lab.client_key}", f"UserKnownHostsFile={ssh_lab.known_hosts}",
            f"User={ssh_lab.user}", f"Port={ssh_lab.port}", "BatchMode=yes", "LogLevel=error"]


def test_do_pssh_returns_exit_statuses_and_writes_1_0_output_files(ssh_lab, lab_options, tmp_path):
    a, b = ssh_lab.addresses[:2]
    outdir, errdir = str(tmp_path / "out"), str(tmp_path / "err")
    with pytest.warns(DeprecationWarning):
        statuses = crmsh.do_pssh([(a, "echo out-$PARALLAX_NODENUM; echo err >&2"), (b, "exit 3"),
                                  (a, "echo again")], outdir, errdir, options=lab_options)
    assert statuses == [0, 3, 0]
    assert crmsh.examine_outcome(statuses) == "some ssh processes failed"
    # 1.0's file names: the host, then host.1 for the host's second task
    assert sorted(os.listdir(outdir)) == sorted([a, b, f"{a}.1"])
    assert (tmp_path / "out" / a).read_bytes() == b"out-0\n"  # PARALLAX_NODENUM reached the host (SendEnv)
    assert (tmp_path / "err" / a).read_bytes() == b"err\n"
    assert (tmp_path / "out" / f"{a}.1").read_bytes() == b"again\n"
    assert (tmp_path / "out" / b).read_bytes() == b""


def test_do_pssh_ssh_failure_is_255(ssh_lab, lab_options, tmp_path):
    bad = [o for o in lab_options if not o.startswith("IdentityFile")] + ["IdentityFile=/nonexistent",
                                                                         "IdentitiesOnly=yes"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        statuses = crmsh.do_pssh([(ssh_lab.addresses[0], "true")], str(tmp_path / "o"), str(tmp_path / "e"),
                                 options=bad)
    assert statuses == [255]
    assert crmsh.examine_outcome(statuses) == "ssh processes failed"
    assert b"Permission denied" in (tmp_path / "e" / ssh_lab.addresses[0]).read_bytes()


def test_do_pssh_timeout_kills_and_reports_a_negative_status(ssh_lab, lab_options, tmp_path):
    marker = f"crmpssh-{uuid.uuid4().hex[:8]}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        start = time.monotonic()
        statuses = crmsh.do_pssh([(ssh_lab.addresses[0], f"sleep 30 # {marker}"), (ssh_lab.addresses[1], "true")],
                                 str(tmp_path / "o"), str(tmp_path / "e"), timeout=1, options=lab_options)
        took = time.monotonic() - start
    assert statuses == [-9, 0]
    assert crmsh.examine_outcome(statuses) == "ssh process was killed"
    assert took < 20
    local_ssh = [p for p in process_table() if marker in command_line(p) and command_line(p).startswith("ssh")]
    assert local_ssh == []  # the ssh process group was killed


def test_manager_and_task_keep_1_0_attributes(ssh_lab, lab_options, tmp_path, capsys):
    from parallax.manager import DefaultCallbacks, FatalError, Manager
    from parallax.task import Task

    assert issubclass(FatalError, RuntimeError)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        manager = Manager(limit=2, timeout=0, callbacks=DefaultCallbacks())
        options = [arg for o in lab_options for arg in ("-o", o)]
        argv = ["ssh", ssh_lab.addresses[0], *options, "echo hi; echo no >&2; exit 2"]
        task = Task(ssh_lab.addresses[0], "2222", "admin", argv, inline=True)
        manager.add_task(task)
        assert manager.run() == [2]
    assert task.pretty_host == f"admin@{ssh_lab.addresses[0]}:2222"
    assert task.exitstatus == 2 and task.failures == ["Exited with error code 2"]
    assert task.outputbuffer == b"hi\n" and task.errorbuffer == b"no\n"
    printed = capsys.readouterr().out
    assert "[1] " in printed and f"[FAILURE] admin@{ssh_lab.addresses[0]}:2222 Exited with error code 2" in printed
    assert "hi\nStderr: no\n" in printed


def test_bad_task_input_is_a_clear_error():
    from parallax.task import Task

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(TypeError, match="argument vector"):
            Task("h", "", "", "ssh h true")
        with pytest.raises(ValueError, match="'a/b'"):
            Task("a/b", "", "", ["ssh", "a/b"])
