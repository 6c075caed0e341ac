"""The shared ssh option set and OpenSSH's algorithm lists, as both in-process backends apply them."""

from __future__ import annotations

import pytest

from parallax.ssh.algorithms import AlgorithmError, assemble
from parallax.ssh.config import ConfigResolver
from parallax.ssh.keywords import IN_PROCESS_OPTIONS, KEYWORDS

DEFAULT = ("aes128-gcm@openssh.com", "aes128-ctr", "aes256-ctr")
SUPPORTED = ("aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-cbc", "aes128-gcm@openssh.com")


def ciphers(spec: str | None) -> tuple[str, ...] | None:
    return assemble("Ciphers", spec, DEFAULT, SUPPORTED, "testlib")


@pytest.mark.parametrize(("spec", "expected"), [
    (None, None),
    ("", None),
    ("aes256-ctr,aes128-ctr", ("aes256-ctr", "aes128-ctr")),  # the caller's order
    ("chacha20-poly1305@openssh.com,aes128-ctr", ("aes128-ctr",)),  # what the library lacks is dropped
    ("+aes128-cbc", (*DEFAULT, "aes128-cbc")),
    ("-aes128-gcm@openssh.com", ("aes128-ctr", "aes256-ctr")),
    ("-*-ctr", ("aes128-gcm@openssh.com",)),
    ("^aes256-ctr", ("aes256-ctr", "aes128-gcm@openssh.com", "aes128-ctr")),
    ("aes*-ctr", ("aes128-ctr", "aes192-ctr", "aes256-ctr")),  # a pattern expands in the library's order
    ("aes128-ctr,aes*-ctr", ("aes128-ctr", "aes192-ctr", "aes256-ctr")),  # each name once
])
def test_algorithm_lists_are_assembled_as_openssh_does(spec, expected):
    assert ciphers(spec) == expected


@pytest.mark.parametrize("spec", ["no-such-cipher", "chacha20-poly1305@openssh.com", "-aes*", "!aes128-ctr"])
def test_a_list_that_leaves_nothing_names_the_option(spec):
    with pytest.raises(AlgorithmError, match=r"^Ciphers=.*testlib backend") as info:
        ciphers(spec)
    assert isinstance(info.value, ValueError)
    assert spec in str(info.value)


def test_the_shared_option_set_is_known_to_openssh_and_used_by_both_backends():
    from parallax.backends.asyncssh import SUPPORTED_OPTIONS as asyncssh_options
    from parallax.backends.sshconfig import SUPPORTED_OPTIONS as paramiko_options

    assert all(name in KEYWORDS for name in IN_PROCESS_OPTIONS)
    assert paramiko_options is IN_PROCESS_OPTIONS and asyncssh_options is IN_PROCESS_OPTIONS
    assert {"ciphers", "kexalgorithms", "macs", "hostkeyalgorithms", "preferredauthentications",
            "addressfamily", "numberofpasswordprompts"} <= IN_PROCESS_OPTIONS


def _resolve(tmp_path, *options: str):
    config = tmp_path / "ssh_config"
    config.write_text("")
    return ConfigResolver(str(config)).resolve(
        "h", user="u", port=22, identity_files=[],
        ssh_options=[tuple(o.split("=", 1)) for o in options], host_key_policy=None)


@pytest.mark.parametrize(("options", "methods"), [
    ((), ("publickey", "password", "keyboard-interactive")),
    (("PreferredAuthentications=password,publickey",), ("password", "publickey")),
    (("PreferredAuthentications=gssapi-with-mic,keyboard-interactive",), ("keyboard-interactive",)),
    (("PasswordAuthentication=no",), ("publickey", "keyboard-interactive")),
    (("NumberOfPasswordPrompts=0",), ("publickey",)),
    (("PubkeyAuthentication=no", "PreferredAuthentications=publickey,password"), ("password",)),
])
def test_paramiko_tries_the_methods_openssh_would(tmp_path, options, methods):
    pytest.importorskip("paramiko")
    from parallax.backends.sshconfig import auth_methods

    assert auth_methods(_resolve(tmp_path, *options)) == methods


def test_both_backends_refuse_an_algorithm_list_naming_nothing_they_have(tmp_path):
    pytest.importorskip("paramiko")
    pytest.importorskip("asyncssh")
    from parallax.backends.asyncssh_options import connect_kwargs
    from parallax.backends.sshconfig import algorithms

    hc = _resolve(tmp_path, "KexAlgorithms=no-such-kex")
    for apply, library in ((algorithms, "paramiko"), (connect_kwargs, "asyncssh")):
        with pytest.raises(AlgorithmError, match=f"^KexAlgorithms=no-such-kex: names no algorithm the {library} "):
            apply(hc)
    hc = _resolve(tmp_path, "Ciphers=aes128-ctr", "MACs=hmac-sha2-256", "HostKeyAlgorithms=ssh-ed25519")
    assert dict(algorithms(hc)) == {"ciphers": ("aes128-ctr",), "digests": ("hmac-sha2-256",),
                                    "key_types": ("ssh-ed25519",)}
    kwargs = connect_kwargs(hc)
    assert (kwargs["encryption_algs"], kwargs["mac_algs"], kwargs["server_host_key_algs"]) == (
        ["aes128-ctr"], ["hmac-sha2-256"], ["ssh-ed25519"])
