"""Slurp against the real sshd lab, every backend: never through a local symlink leading outside
<localdir>, and never a setuid/setgid file or directory (issue 9, Security 2 and 3)."""

from __future__ import annotations

import os
import shutil
import stat
import uuid

import pytest
from helpers import lab_opts

import parallax
from parallax.testing.conformance.fixtures import give_to_lab_user

BACKENDS = ["openssh", "paramiko", "asyncssh"]


@pytest.fixture
def remote(ssh_lab):
    """A fresh directory on the lab hosts (this machine's file system) owned by the lab user."""
    path = os.path.join(ssh_lab.scratch_dir, f"safety-{uuid.uuid4().hex[:10]}")
    os.mkdir(path, 0o755)
    with open(os.path.join(path, "f"), "wb") as f:
        f.write(b"from the server\n")
    os.makedirs(os.path.join(path, "src", "sub"))
    with open(os.path.join(path, "src", "sub", "x"), "wb") as f:
        f.write(b"x\n")
    with open(os.path.join(path, "src", "top"), "wb") as f:
        f.write(b"top\n")
    give_to_lab_user(ssh_lab, path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def outside(tmp_path):
    """A directory outside <localdir> holding a file that must stay as it is."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "f").write_bytes(b"precious\n")
    return path


def untouched(outside) -> bool:
    return sorted(os.listdir(outside)) == ["f"] and (outside / "f").read_bytes() == b"precious\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_symlink_at_the_host_directory_leading_outside_is_refused(ssh_lab, backend, remote, outside, tmp_path):
    host = ssh_lab.hosts[0]
    localdir = tmp_path / "L"
    localdir.mkdir()
    os.symlink(outside, localdir / host)
    opts = lab_opts(ssh_lab, backend)
    single = parallax.slurp([host], os.path.join(remote, "f"), "f", localdir=str(localdir), **opts)[host]
    assert isinstance(single, parallax.TransferFailed), single
    assert f"refusing to write outside {localdir}" in single.msg, single.msg
    tree = parallax.slurp([host], os.path.join(remote, "src"), "tree", localdir=str(localdir), recursive=True,
                          **opts)[host]
    assert isinstance(tree, parallax.TransferFailed), tree
    assert untouched(outside)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_symlink_below_the_host_directory_leading_outside_is_refused(ssh_lab, backend, remote, outside, tmp_path):
    hosts = ssh_lab.hosts[:2]
    localdir = tmp_path / "L"
    # host 0 has a symlink where the remote src/sub will land; host 1 is clean
    (localdir / hosts[0] / "got" / "src").mkdir(parents=True)
    os.symlink(outside, localdir / hosts[0] / "got" / "src" / "sub")
    res = parallax.slurp(hosts, os.path.join(remote, "src"), "got", localdir=str(localdir), recursive=True,
                         **lab_opts(ssh_lab, backend))
    assert isinstance(res[hosts[0]], parallax.TransferFailed), res[hosts[0]]
    assert "refusing to write outside" in res[hosts[0]].msg and "sub" in res[hosts[0]].msg
    assert untouched(outside)
    clean = res[hosts[1]]
    assert isinstance(clean, parallax.SlurpResult), clean
    assert (localdir / hosts[1] / "got" / "sub" / "x").read_bytes() == b"x\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_symlink_that_stays_inside_localdir_is_followed(ssh_lab, backend, remote, tmp_path):
    host = ssh_lab.hosts[0]
    localdir = tmp_path / "L"
    (localdir / "elsewhere").mkdir(parents=True)
    os.symlink(localdir / "elsewhere", localdir / host)
    r = parallax.slurp([host], os.path.join(remote, "f"), "f", localdir=str(localdir),
                       **lab_opts(ssh_lab, backend))[host]
    assert isinstance(r, parallax.SlurpResult), r
    assert (localdir / "elsewhere" / "f").read_bytes() == b"from the server\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_setuid_file_on_the_host_arrives_without_setuid(ssh_lab, backend, remote, tmp_path):
    host = ssh_lab.hosts[0]
    suid = os.path.join(remote, "suid")
    shutil.copy("/bin/true", suid)
    tree = os.path.join(remote, "sgid-dir")
    os.mkdir(tree)
    with open(os.path.join(tree, "inner"), "wb") as f:
        f.write(b"inner\n")
    give_to_lab_user(ssh_lab, remote)  # chown first: it clears set-id bits
    os.chmod(suid, 0o4755)
    os.chmod(os.path.join(tree, "inner"), 0o6750)
    os.chmod(tree, 0o2755)
    assert os.stat(suid).st_mode & stat.S_ISUID  # the lab host really has a setuid file
    opts = lab_opts(ssh_lab, backend)
    localdir = tmp_path / "L"
    r = parallax.slurp([host], suid, "suid", localdir=str(localdir), **opts)[host]
    assert isinstance(r, parallax.SlurpResult), r
    assert stat.S_IMODE(os.stat(r.path).st_mode) == 0o755
    r = parallax.slurp([host], tree, "tree", localdir=str(localdir), recursive=True, **opts)[host]
    assert isinstance(r, parallax.SlurpResult), r
    assert stat.S_IMODE(os.stat(os.path.join(r.path, "inner")).st_mode) == 0o750
    assert not os.stat(r.path).st_mode & (stat.S_ISUID | stat.S_ISGID)


def test_openssh_legacy_scp_protocol_does_not_bring_setuid_either(ssh_lab, remote, tmp_path):
    # scp -O (the legacy protocol, through ssh_extra) keeps set-id bits with -p; the backend clears them
    host = ssh_lab.hosts[0]
    suid = os.path.join(remote, "suid")
    shutil.copy("/bin/true", suid)
    give_to_lab_user(ssh_lab, remote)
    os.chmod(suid, 0o4755)
    r = parallax.slurp([host], suid, "suid", localdir=str(tmp_path / "L"), ssh_extra=["-O"],
                       **lab_opts(ssh_lab, "openssh"))[host]
    assert isinstance(r, parallax.SlurpResult), r
    assert stat.S_IMODE(os.stat(r.path).st_mode) == 0o755


def test_no_directory_is_created_outside_localdir_before_the_backend_runs(tmp_path):
    """The scheduler makes <localdir>/<host>/sub checked step by step, not with os.makedirs."""
    from parallax.backends.mock import MockBackend

    local, outside = tmp_path / "local", tmp_path / "outside"
    local.mkdir()
    outside.mkdir()
    (local / "h1").symlink_to(outside)
    backend = MockBackend(files={"h1": {"/f": b"x"}})
    result = parallax.slurp(["h1"], "/f", "sub/f", localdir=str(local), backend=backend)["h1"]
    assert isinstance(result, parallax.TransferFailed), result
    assert list(outside.iterdir()) == []  # not even an empty sub/
    assert [kind for _, kind, _ in backend.hosts.calls] == []  # refused before the backend was asked
