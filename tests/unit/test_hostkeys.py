"""parallax.ssh.hostkeys and .policy: the policy table, known_hosts lookup (ssh-keygen -F as oracle), recording."""

from __future__ import annotations

import base64
import multiprocessing
import os
import random
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from parallax.ssh.hostkeys import (
    HostCertificateUnsupported,
    HostKey,
    HostKeyPolicy,
    HostKeyStatus,
    KnownHosts,
    Verdict,
    decide,
    hash_name,
    load_revoked_keys,
    parse_known_hosts,
    policy_for,
    record_host_key,
)

needs_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")


def ed25519(seed: int) -> HostKey:
    """A well-formed ed25519 public key blob (any 32 bytes are one)."""
    raw = seed.to_bytes(4, "big") * 8
    blob = len(b"ssh-ed25519").to_bytes(4, "big") + b"ssh-ed25519" + (32).to_bytes(4, "big") + raw
    return HostKey("ssh-ed25519", blob)


def ecdsa_like(seed: int) -> HostKey:
    t = b"ecdsa-sha2-nistp256"
    point = b"\x04" + seed.to_bytes(4, "big") * 16
    blob = len(t).to_bytes(4, "big") + t + (8).to_bytes(4, "big") + b"nistp256" + len(point).to_bytes(4, "big") + point
    return HostKey(t.decode(), blob)


# --- the policy table ---------------------------------------------------------

def test_strict_host_key_checking_table() -> None:
    assert {v: policy_for(v) for v in ("yes", "true", "ask", "accept-new", "no", "false", "off", "YES")} == {
        "yes": HostKeyPolicy.STRICT, "true": HostKeyPolicy.STRICT, "ask": HostKeyPolicy.STRICT,
        "accept-new": HostKeyPolicy.ACCEPT_NEW, "no": HostKeyPolicy.NO, "false": HostKeyPolicy.NO,
        "off": HostKeyPolicy.NO, "YES": HostKeyPolicy.STRICT}
    assert policy_for("off", parallax_name=True) is HostKeyPolicy.OFF
    with pytest.raises(ValueError, match="StrictHostKeyChecking 'maybe'"):
        policy_for("maybe")
    with pytest.raises(ValueError, match="host_key_policy 'ask'"):
        policy_for("ask", parallax_name=True)


@pytest.mark.parametrize(("policy", "unknown", "changed"), [
    (HostKeyPolicy.STRICT, (False, False, False), (False, False, False)),
    (HostKeyPolicy.ACCEPT_NEW, (True, True, False), (False, False, False)),
    (HostKeyPolicy.NO, (True, True, False), (True, False, True)),  # OpenSSH's no: changed ok, no password auth
    (HostKeyPolicy.OFF, (True, False, False), (True, False, False)),
])
def test_decisions(policy: HostKeyPolicy, unknown: tuple[bool, bool, bool], changed: tuple[bool, bool, bool]) -> None:
    def as_tuple(status: HostKeyStatus) -> tuple[bool, bool, bool]:
        d = decide(policy, Verdict(status))
        return d.accept, d.record, d.disable_password

    assert as_tuple(HostKeyStatus.UNKNOWN) == unknown
    assert as_tuple(HostKeyStatus.CHANGED) == changed
    assert as_tuple(HostKeyStatus.KNOWN) == (True, False, False)
    assert as_tuple(HostKeyStatus.REVOKED)[0] is (policy is HostKeyPolicy.OFF)  # off looks nothing up


# --- keys -----------------------------------------------------------------------

def test_host_key_parsing() -> None:
    k = ed25519(1)
    assert HostKey.from_openssh(f"{k} comment here") == k
    with pytest.raises(ValueError, match="does not hold a ssh-rsa key"):
        HostKey.from_parts("ssh-rsa", k.base64)
    with pytest.raises(ValueError, match="invalid base64"):
        HostKey.from_parts("ssh-ed25519", "not base64!")


# --- lookup ---------------------------------------------------------------------

def corpus_file(path: Path, invalid: bool = True) -> dict[str, HostKey]:
    keys = {n: ed25519(i) for i, n in enumerate(["a", "b", "c", "d", "e", "f", "g"], 1)}
    path.write_text("\n".join([
        "# a comment",
        f"plain.example {keys['a']}",
        f"[ported.example]:2222 {keys['b']}",
        f"*.wild.example,!bad.wild.example {keys['c']}",
        f"@revoked rev.example {keys['d']}",
        f"@cert-authority *.ca.example {keys['e']}",
        f"   indented.example,Other.Example {keys['f']} with comment",
        f"db? {keys['g']}",
        "garbage line" if invalid else "# (no garbage line)",
        f"@bogus marker.example {keys['a']}" if invalid else "# (no bad marker)",
        f"multi.example {keys['a']}",
        f"multi.example {ecdsa_like(9)}",
        "",
    ]))
    return keys


NAMES = ["plain.example", "PLAIN.example", "[ported.example]:2222", "ported.example", "[ported.example]:22",
         "a.wild.example", "bad.wild.example", "wild.example", "rev.example", "x.ca.example", "indented.example",
         "other.example", "db1", "db12", "multi.example", "marker.example", "nothing"]


def keygen_lines(name: str, path: Path) -> set[int]:
    proc = subprocess.run(["ssh-keygen", "-F", name, "-f", str(path)], capture_output=True, text=True, timeout=30)
    found = set()
    for line in proc.stdout.splitlines():
        if line.startswith("# Host ") and " found: line " in line:
            found.add(int(line.split(" found: line ")[1].split()[0]))
    return found


@needs_keygen
@pytest.mark.parametrize("hashed", [False, True])
def test_lookup_matches_ssh_keygen_F(tmp_path: Path, hashed: bool) -> None:
    path = tmp_path / "known_hosts"
    corpus_file(path, invalid=not hashed)  # ssh-keygen -H refuses files with invalid lines
    if hashed:
        subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True, timeout=30)
        assert "|1|" in path.read_text()
    kh = KnownHosts.load([str(path)])
    for name in NAMES:
        assert {e.line for e in kh.find(name)} == keygen_lines(name, path), name


def test_check_statuses(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    keys = corpus_file(path)
    kh = KnownHosts.load([str(path), str(tmp_path / "missing")])
    assert kh.check("plain.example", keys["a"]).status is HostKeyStatus.KNOWN
    changed = kh.check("plain.example", keys["b"])
    assert changed.status is HostKeyStatus.CHANGED and changed.entry is not None and changed.entry.line == 2
    # a key of another type: "changed", as OpenSSH's check_hostkeys_by_key_or_type (and ssh against a real sshd)
    assert kh.check("plain.example", ecdsa_like(1)).status is HostKeyStatus.CHANGED
    assert kh.check("[ported.example]:2222", keys["b"]).status is HostKeyStatus.KNOWN
    assert kh.check("ported.example", keys["b"]).status is HostKeyStatus.UNKNOWN
    assert kh.check("x.wild.example", keys["c"]).status is HostKeyStatus.KNOWN
    assert kh.check("bad.wild.example", keys["c"]).status is HostKeyStatus.UNKNOWN
    assert kh.check("rev.example", keys["d"]).status is HostKeyStatus.REVOKED
    assert kh.check("x.ca.example", keys["e"]).status is HostKeyStatus.UNKNOWN  # CA lines are not plain keys
    assert kh.check("multi.example", ecdsa_like(9)).status is HostKeyStatus.KNOWN
    assert kh.check("multi.example", ecdsa_like(8)).status is HostKeyStatus.CHANGED
    assert kh.known_types("multi.example") == ("ssh-ed25519", "ecdsa-sha2-nistp256")
    assert kh.known_types("rev.example") == ()
    assert kh.check("marker.example", keys["a"]).status is HostKeyStatus.UNKNOWN  # a bad marker line is skipped
    cert = HostKey("ssh-ed25519-cert-v01@openssh.com", b"")
    with pytest.raises(HostCertificateUnsupported, match="host certificate"):
        kh.check("plain.example", cert)


def test_several_files_and_revoked_anywhere(tmp_path: Path) -> None:
    user, system = tmp_path / "user", tmp_path / "system"
    user.write_text(f"h1 {ed25519(1)}\n")
    system.write_text(f"h2 {ed25519(2)}\n@revoked * {ed25519(1)}\n")
    kh = KnownHosts.load([str(user), str(system)])
    assert kh.check("h2", ed25519(2)).status is HostKeyStatus.KNOWN
    verdict = kh.check("h1", ed25519(1))
    assert verdict.status is HostKeyStatus.REVOKED and verdict.entry is not None
    assert (verdict.entry.file, verdict.entry.line) == (str(system), 2)
    assert decide(HostKeyPolicy.NO, verdict).accept is False


def test_hash_name_matches_like_openssh() -> None:
    salt = bytes(range(20))
    field = hash_name("host.example", salt)
    assert field.startswith("|1|" + base64.b64encode(salt).decode() + "|")
    (entry,) = parse_known_hosts(f"{field} {ed25519(1)}\n", "mem")
    assert entry.matches("host.example") and not entry.matches("other.example")


# --- recording ------------------------------------------------------------------

def test_record_creates_private_file_and_dir(tmp_path: Path) -> None:
    path = tmp_path / "new" / ".ssh" / "known_hosts"
    assert record_host_key(str(path), "h", ed25519(1)) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert record_host_key(str(path), "h", ed25519(1)) is False  # no duplicate line
    assert record_host_key(str(path), "[h]:2222", ed25519(1)) is True
    assert path.read_text() == f"h {ed25519(1)}\n[h]:2222 {ed25519(1)}\n"


def test_record_after_line_without_newline_and_refuses_bad_names(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"old {ed25519(1)}")
    record_host_key(str(path), "new", ed25519(2))
    assert path.read_text().splitlines() == [f"old {ed25519(1)}", f"new {ed25519(2)}"]
    for bad in ("", "two words", "#x", "@revoked", "a,b", "x\ny"):
        with pytest.raises(ValueError, match="cannot be recorded"):
            record_host_key(str(path), bad, ed25519(3))


@needs_keygen
def test_record_hashed_is_found_by_ssh_keygen(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    record_host_key(str(path), "[secret.example]:2200", ed25519(5), hash_names=True)
    assert "secret" not in path.read_text()
    assert keygen_lines("[secret.example]:2200", path) == {1}
    assert record_host_key(str(path), "[secret.example]:2200", ed25519(5), hash_names=True) is False


def test_200_hosts_recorded_at_once(tmp_path: Path) -> None:
    path = tmp_path / "ssh" / "known_hosts"
    names = [f"host{i}.example" for i in range(200)]
    barrier = threading.Barrier(50)
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker(chunk: list[str]) -> None:
        barrier.wait()
        for n in chunk:
            try:
                # every host twice, as two callers accepting the same host at once would
                results.append(record_host_key(str(path), n, ed25519(int(n[4:].split(".")[0]))))
                results.append(record_host_key(str(path), n, ed25519(int(n[4:].split(".")[0]))))
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

    threads = [threading.Thread(target=worker, args=(names[i::50],)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results.count(True) == 200
    lines = path.read_text().splitlines()
    assert len(lines) == len(set(lines)) == 200
    kh = KnownHosts.load([str(path)])
    assert all(kh.check(n, ed25519(i)).status is HostKeyStatus.KNOWN for i, n in enumerate(names))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _record_all(path: str, names: list[str]) -> None:
    for i, n in enumerate(names):
        record_host_key(path, n, ed25519(i))


def test_two_processes_do_not_duplicate(tmp_path: Path) -> None:
    path = str(tmp_path / "known_hosts")
    names = [f"p{i}" for i in range(100)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_record_all, args=(path, names)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    lines = Path(path).read_text().splitlines()
    assert sorted(lines) == sorted(f"p{i} {ed25519(i)}" for i in range(100))
    assert os.stat(path).st_size == sum(len(x) + 1 for x in lines)


def test_revoked_host_keys_file(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"h {ed25519(1)}\nh {ed25519(2)}\n")
    revoked = tmp_path / "revoked"
    revoked.write_text(f"# revoked\n{ed25519(1)} old key\n")
    kh = KnownHosts.load([str(known)], revoked_file=str(revoked))
    assert kh.check("h", ed25519(1)).status is HostKeyStatus.REVOKED
    assert kh.check("h", ed25519(2)).status is HostKeyStatus.KNOWN
    with pytest.raises(FileNotFoundError):
        KnownHosts.load([str(known)], revoked_file=str(tmp_path / "missing"))
    krl = tmp_path / "krl"
    krl.write_bytes(b"SSHKRL\n\x00rest")
    with pytest.raises(ValueError, match="binary KRL is not supported"):
        load_revoked_keys(str(krl))


def test_ssh_layer_imports_no_ssh_library() -> None:
    code = ("import sys, parallax.ssh.config, parallax.ssh.hostkeys; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('paramiko', 'asyncssh')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


FUZZ_PATTERNS = ["web*", "!web2", "db?", "*.example.com", "[h]:2222", "[h*]:22*", "h", "H", "10.0.0.*", "!10.0.0.5",
                 "*", "x?y", "[x.y]:2200"]
FUZZ_NAMES = ["web1", "web2", "db1", "db12", "a.example.com", "[h]:2222", "h", "H", "[hh]:2201", "10.0.0.5",
              "10.0.0.6", "xzy", "[x.y]:2200", "x.y"]


@needs_keygen
@pytest.mark.parametrize("seed", range(8))
def test_random_known_hosts_like_ssh_keygen_F(tmp_path: Path, seed: int) -> None:
    r = random.Random(seed)
    lines = []
    for i in range(r.randint(2, 8)):
        marker = r.choice(["", "", "", "@revoked ", "@cert-authority "])
        lines.append(f"{marker}{','.join(r.sample(FUZZ_PATTERNS, r.randint(1, 3)))} {ed25519(i)}")
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    kh = KnownHosts.load([str(path)])
    for name in FUZZ_NAMES:
        assert {e.line for e in kh.find(name)} == keygen_lines(name, path), (name, lines)


def test_find_indexes_plain_names_and_still_scans_hashed_and_pattern_lines():
    import random

    from parallax.ssh.hostkeys import KnownHosts, hash_name, parse_known_hosts

    rng = random.Random(7)
    blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + bytes(range(32))
    key = "ssh-ed25519 " + base64.b64encode(blob).decode()
    names = [f"h{i}" for i in range(40)] + ["[h3]:2222", "H5"]
    lines = []
    for _ in range(300):
        kind = rng.randrange(4)
        n = rng.choice(names)
        if kind == 0:
            lines.append(f"{n} {key}")
        elif kind == 1:
            lines.append(f"{n},{rng.choice(names)} {key}")
        elif kind == 2:
            lines.append(f"{hash_name(n.lower())} {key}")
        else:
            lines.append(f"{n[:2]}*,!{rng.choice(names)} {key}")
    entries = parse_known_hosts("\n".join(lines), "kh")
    assert len(entries) == 300
    kh = KnownHosts(entries)
    hits = 0
    for n in [*names, "h3", "nothere", "[h3]:2222"]:
        linear = tuple(e for e in kh.entries if e.matches(n))
        assert kh.find(n) == linear, n
        hits += len(linear)
    assert hits > 100
