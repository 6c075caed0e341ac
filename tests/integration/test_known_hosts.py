"""Recording host keys under accept-new (issue 9, security 4): beyond the conformance suite.

The conformance suite checks every backend against a missing directory, an
unwritable file and 60 hosts accepted at once.  Here: the shared recorder
under threads *and* processes at once, and the openssh backend with the
known_hosts file named through ``ssh_options`` instead of ``known_hosts=``.
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import stat
import struct
import threading

import parallax
from parallax.ssh.known_hosts_cache import pin_host_key
from helpers import lab_opts

def _blob(n: int) -> str:
    """A well-formed ssh-ed25519 public key blob (base64) for the number *n*."""
    kind = b"ssh-ed25519"
    raw = struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + n.to_bytes(32, "big")
    return base64.b64encode(raw).decode()


KEYS = [(f"[10.0.0.{n}]:22", "ssh-ed25519", _blob(n)) for n in range(40)]


def _record_all(path: str) -> None:
    threads = [threading.Thread(target=pin_host_key, args=(path, *entry)) for entry in KEYS * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_recorder_writes_each_key_once_under_threads_and_processes(tmp_path):
    path = str(tmp_path / "a" / "b" / "known_hosts")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_record_all, args=(path,)) for _ in range(4)]
    for p in procs:
        p.start()
    _record_all(path)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    with open(path) as f:
        lines = f.read().splitlines()
    assert sorted(lines) == sorted(" ".join(e) for e in KEYS)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.dirname(os.path.dirname(path))).st_mode) == 0o700


def test_recorder_keeps_a_file_without_final_newline_intact(tmp_path):
    path = tmp_path / "known_hosts"
    old, new = _blob(1), _blob(2)
    path.write_text(f"old ssh-ed25519 {old}")
    assert pin_host_key(str(path), "new", "ssh-ed25519", new)
    assert not pin_host_key(str(path), "new", "ssh-ed25519", new)
    assert path.read_text() == f"old ssh-ed25519 {old}\nnew ssh-ed25519 {new}\n"


def test_openssh_creates_the_directory_of_a_known_hosts_file_given_as_ssh_option(ssh_lab, tmp_path):
    known = tmp_path / "missing" / "dir" / "known_hosts"
    opts = lab_opts(ssh_lab, known_hosts=None, ssh_options=[f"UserKnownHostsFile={known}"],
                    host_key_policy="accept-new")
    res = parallax.call(ssh_lab.hosts[:2], "echo in", **opts)
    assert [r.stdout for r in res.values()] == [b"in\n"] * 2, res
    assert ssh_lab.host_key_pub.split()[1] in known.read_text()
    assert len(known.read_text().splitlines()) == 2
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
