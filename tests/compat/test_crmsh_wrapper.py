"""crmsh's parallax wrapper (crmsh/parallax.py, utils.py) on parallax 2, on every backend (issue #8)."""

from __future__ import annotations

import logging
import os
import socket

import pytest

import parallax
from parallax.testing.conformance.fixtures import give_to_lab_user

import crmsh_calls as crmsh


def _tree(root: str) -> dict[str, bytes]:
    files = {"ca.crt": b"ca\n", "sub/node.p12": bytes(range(256))}
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return files


def test_options_keep_1_0_defaults():
    opts = parallax.Options()
    assert opts.recursive is True
    assert opts.timeout == 60  # the Parallax README's promise (1.0's code had none)


def test_qdevice_directory_copy_with_default_options(nodes, shared_dir, tmp_path):
    """qdevice.py copies a directory of certificates with default Options (recursive in 1.0)."""
    src = tmp_path / "qnetd-certs"
    files = _tree(str(src))
    dst = os.path.join(shared_dir, "dest")
    results = crmsh.parallax_copy(nodes, str(src), dst)
    assert [h for h, _ in results] == nodes
    for _, result in results:
        rc, _, _ = result
        assert rc == 0
    for rel, data in files.items():  # every node is this machine: one copy landed at dst
        with open(os.path.join(dst, rel), "rb") as f:
            assert f.read() == data


def test_directory_slurp_with_default_options(nodes, ssh_lab, shared_dir, tmp_path):
    files = _tree(os.path.join(shared_dir, "conf"))
    give_to_lab_user(ssh_lab, shared_dir)
    results = crmsh.parallax_slurp(nodes, str(tmp_path), os.path.join(shared_dir, "conf"))
    for host, result in results:
        _, _, _, path = result
        assert path == os.path.join(str(tmp_path), host, "conf")
        for rel, data in files.items():
            with open(os.path.join(path, rel), "rb") as f:
                assert f.read() == data


def test_missing_local_source_fails_per_host(nodes):
    results = dict(crmsh.parallax_copy(nodes, "/no/such/file", "/tmp/x", strict=False))
    assert list(results) == nodes
    for result in results.values():
        assert isinstance(result, parallax.TransferFailed)
        assert "/no/such/file" in str(result)
    with pytest.raises(ValueError, match=f"^Failed on {nodes[0]}: Exited with error code 255, Error output: "):
        crmsh.parallax_copy(nodes, "/no/such/file", "/tmp/x")


def test_cluster_copy_file_reports_failed_on_each_host(nodes, backend):
    if backend != "openssh":  # crmsh adds ControlPersist=no, an OpenSSH-only option
        with pytest.raises(parallax.UnsupportedOption, match="ControlPersist"):
            crmsh.cluster_copy_file("/no/such/file", nodes)
        return
    ok, failures = crmsh.cluster_copy_file("/no/such/file", nodes)
    assert not ok
    assert [f.split(": ")[0] for f in failures] == [f"Failed to push /no/such/file to {n}" for n in nodes]


def test_run_cmd_on_remote_reads_rc_and_stderr_of_a_failed_command(nodes):
    rc, out, err = crmsh.run_cmd_on_remote("echo bad >&2; exit 3", nodes[0])
    assert (rc, out, err) == (3, None, "bad")
    rc, out, err = crmsh.run_cmd_on_remote("echo fine", nodes[0])
    assert (rc, out, err) == (0, b"fine\n", None)


def _dead_address(ssh_lab) -> str:
    """A loopback address where nothing listens on the lab's port."""
    for last in range(250, 200, -1):
        addr = f"127.0.0.{last}"
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((addr, ssh_lab.port)) != 0:
                return addr
    raise AssertionError("no free loopback address")


def test_run_cmd_on_remote_sees_an_unreachable_node_as_ssh_failure(nodes, ssh_lab):
    """crmsh's ServiceManager must not read a dead node as 'service not active' (rc 1)."""
    rc, out, err = crmsh.run_cmd_on_remote("systemctl is-active corosync", _dead_address(ssh_lab))
    assert rc == 255
    assert out is None
    assert "refused" in err.lower()


def test_remote_exit_255_under_crmsh_loglevel_is_a_command_result(nodes):
    """crmsh always passes LogLevel=error: a remote 'exit 255' is still the command's status."""
    opts = crmsh._opts()
    result = parallax.run(nodes[:1], "echo x; exit 255", opts)[nodes[0]]
    assert not isinstance(result, parallax.Error), result
    assert tuple(result) == (255, b"x\n", b"")
    failed = parallax.call(nodes[:1], "echo x; exit 255", opts)[nodes[0]]
    assert isinstance(failed, parallax.CommandFailed) and failed.rc == 255 and failed.stdout == b"x\n"


def test_failed_hosts_are_not_logged_as_warnings(nodes, ssh_lab, caplog):
    caplog.set_level(logging.DEBUG, logger="parallax")
    results = crmsh.parallax_call([nodes[0], _dead_address(ssh_lab)], "exit 4", strict=False)
    assert all(isinstance(r, parallax.Error) for _, r in results)
    loud = [r for r in caplog.records if r.name.startswith("parallax") and r.levelno >= logging.WARNING]
    assert loud == []
    assert any(r.levelno == logging.INFO and "error code 4" in r.getMessage() for r in caplog.records)


def test_timeout_error_says_how_to_lift_it(nodes):
    opts = crmsh._opts()
    opts.timeout = 1
    err = parallax.call(nodes[:1], "sleep 5", opts)[nodes[0]]
    assert isinstance(err, parallax.Timeout)
    assert "timeout=0" in str(err)
    assert str(err).startswith("Exited with error code 255, Error output: ")
