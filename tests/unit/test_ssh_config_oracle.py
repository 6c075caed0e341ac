"""Differential tests of parallax.ssh.config against OpenSSH itself: ``ssh -G`` is the oracle.

For each config of the corpus, the values parallax resolves must equal what
``ssh -G -F FILE [-l USER] [-p PORT] [-i KEY] [-o OPT]... HOST`` prints (no
server is contacted).  ``ssh -G`` prints IdentityFile and ProxyCommand
unexpanded; those are compared after expanding ssh's own text with the
values ssh printed, the other paths (UserKnownHostsFile, ControlPath,
IdentityAgent) are compared as ssh expanded them.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from parallax.ssh.config import ConfigError, ConfigResolver, HostConfig, LocalContext, UnsupportedConfig
from parallax.ssh.jump import parse_jump
from parallax.ssh.tokens import CLIENT_TOKENS, PROXY_TOKENS, Tokens, expand, expand_tilde

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs OpenSSH's ssh for ssh -G")

SHKC = {"yes": "true", "no": "false", "ask": "ask", "accept-new": "accept-new"}


def yn(b: bool) -> str:
    return "yes" if b else "no"


def run_ssh_g(config: Path, host: str, home: Path, *, user: str | None = None, port: int | None = None,
              identity: tuple[str, ...] = (), options: tuple[str, ...] = ()) -> dict[str, list[str]]:
    argv = ["ssh", "-G", "-F", str(config)]
    if user:
        argv += ["-l", user]
    if port:
        argv += ["-p", str(port)]
    for i in identity:
        argv += ["-i", i]
    for o in options:
        argv += ["-o", o]
    argv.append(host)
    env = {**os.environ, "HOME": str(home)}
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=30)
    assert proc.returncode == 0, f"ssh -G failed: {proc.stderr}"
    out: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return out


def ours(hc: HostConfig) -> dict[str, list[str]]:
    """HostConfig as ssh -G would print the fields it holds."""
    d: dict[str, list[str]] = {
        "hostname": [hc.hostname], "port": [str(hc.port)], "user": [hc.user],
        "identityfile": list(hc.identity_files), "certificatefile": list(hc.certificate_files),
        "userknownhostsfile": [" ".join(hc.user_known_hosts_files) or "none"],
        "globalknownhostsfile": [" ".join(hc.global_known_hosts_files) or "none"],
        "stricthostkeychecking": [SHKC[hc.strict_host_key_checking]],
        "serveraliveinterval": [str(hc.server_alive_interval)],
        "serveralivecountmax": [str(hc.server_alive_count_max)],
        "connecttimeout": [str(hc.connect_timeout) if hc.connect_timeout is not None else "none"],
        "connectionattempts": [str(hc.connection_attempts)],
        "sendenv": list(hc.send_env), "setenv": [f"{k}={v}" for k, v in hc.set_env],
        "identitiesonly": [yn(hc.identities_only)], "batchmode": [yn(hc.batch_mode)],
        "compression": [yn(hc.compression)], "hashknownhosts": [yn(hc.hash_known_hosts)],
        "tcpkeepalive": [yn(hc.tcp_keep_alive)],
        "pubkeyauthentication": ["true" if hc.pubkey_authentication else "false"],
        "passwordauthentication": [yn(hc.password_authentication)],
        "kbdinteractiveauthentication": [yn(hc.kbd_interactive_authentication)],
        "numberofpasswordprompts": [str(hc.number_of_password_prompts)],
        "loglevel": [hc.log_level], "addressfamily": [hc.address_family],
        "identityagent": [hc.identity_agent or "none"],
    }
    if hc.revoked_host_keys is not None:
        d["revokedhostkeys"] = [hc.revoked_host_keys]
    if hc.bind_address is not None:
        d["bindaddress"] = [hc.bind_address]
    if hc.host_key_alias is not None:
        d["hostkeyalias"] = [hc.host_key_alias]
    if hc.preferred_authentications is not None:
        d["preferredauthentications"] = [",".join(hc.preferred_authentications)]
    if hc.control_path is not None:
        d["controlpath"] = [hc.control_path]
    if hc.proxy_command is not None:
        d["proxycommand"] = [hc.proxy_command]
    for field, key in (("ciphers", "ciphers"), ("kex_algorithms", "kexalgorithms"), ("macs", "macs"),
                       ("host_key_algorithms", "hostkeyalgorithms")):
        value = getattr(hc, field)
        if value is not None and value[0] not in "+-^":
            d[key] = [value]
    return d


def theirs(g: dict[str, list[str]], ctx: LocalContext, host: str, mine: dict[str, list[str]],
           env: dict[str, str] | None = None) -> dict[str, list[str]]:
    """ssh -G's values for the keys we compare, raw ones expanded with ssh's own values."""
    port, user, hostname = int(g["port"][0]), g["user"][0], g["hostname"][0]
    alias = g.get("hostkeyalias", [host])[0]
    tokens = Tokens(ctx.hostname, hostname, port, user, host, ctx.user, ctx.home, ctx.uid, alias).mapping()
    out = {k: list(g.get(k, [])) for k in mine if k in g or k in ("sendenv", "setenv")}
    for key in ("identityfile", "certificatefile"):
        out[key] = [expand(expand_tilde(p, ctx.home), tokens, allowed=CLIENT_TOKENS,
                           env=dict(os.environ) if env is None else env) for p in g.get(key, [])]
    out["identityagent"] = g.get("identityagent", ["SSH_AUTH_SOCK"])
    if "proxycommand" in g:
        out["proxycommand"] = [expand(g["proxycommand"][0], {"h": hostname, "n": host, "p": str(port), "r": user},
                                      allowed=PROXY_TOKENS)]
    for key in mine:
        out.setdefault(key, [])
    return out


# name: (config text with {d} = the case's directory, host, ssh -G kwargs, extra files {relative path: text})
CORPUS: dict[str, tuple[str, str, dict[str, Any], dict[str, str]]] = {
    "alias": ("Host web\n  HostName web1.example.com\n  User deploy\n  Port 2201\n", "web", {}, {}),
    "wildcard-star": ("Host *.example.com\n  User star\nHost *\n  Port 2022\n", "a.b.example.com", {}, {}),
    "wildcard-question": ("Host db?\n  Port 5000\n", "db7", {}, {}),
    "wildcard-question-miss": ("Host db?\n  Port 5000\n", "db17", {}, {}),
    "negation-hit": ("Host * !bastion\n  ProxyJump bastion\nHost bastion\n  User jump\n", "bastion", {}, {}),
    "negation-other": ("Host * !bastion\n  ProxyJump bastion\n", "app1", {}, {}),
    "negation-only": ("Host !foo\n  Port 1234\n", "bar", {}, {}),
    "multi-pattern-line": ("Host alpha beta gamma\n  User greek\n", "beta", {}, {}),
    "first-wins": ("Host web*\n  Port 2201\n  User first\nHost *\n  Port 2202\n  User second\n"
                   "  ConnectTimeout 7\n", "web3", {}, {}),
    "host-case-sensitive": ("Host FOO\n  Port 1111\nHost foo\n  Port 2222\n", "FOO", {}, {}),
    "hostname-lowercased": ("Host *\n  User x\n", "MixedCase.Example", {}, {}),
    "keyword-case": ("HOST web\n  PORT 2203\n  hostNAME Web.Example\n  USER Bob\n", "web", {}, {}),
    "equals-separators": ("Host=web\nPort=2204\nUser = alice\nHostName= h.example\n"
                          "ServerAliveInterval =9\n", "web", {}, {}),
    "quoted-values": ('Host "web"\n  IdentityFile "{d}/a b/id key"\n  User "bob"\n'
                      '  UserKnownHostsFile "{d}/kh one" {d}/kh2\n', "web", {}, {}),
    "comments-blank": ("# top\n\nHost web # trailing\n   # indented\n  Port 2205 # why\n\n", "web", {}, {}),
    "identity-list": ("Host *\n  IdentityFile {d}/id_%h\n  IdentityFile {d}/id_%r\n  IdentityFile {d}/id_%h\n"
                      "  IdentityFile ~/.ssh/id_%u_%p\n", "box", {"user": "ops"}, {}),
    "identity-defaults": ("Host *\n  User nobody\n", "plain", {}, {}),
    "identity-cli-first": ("Host *\n  IdentityFile {d}/cfgkey\n", "h", {"identity": ("{d}/clikey",)},
                           {"clikey": "x"}),
    "tokens-knownhosts": ("Host *\n  UserKnownHostsFile ~/kh-%h-%p-%r-%u-%n-%d-%l-%L-%i-%C-%k-%%\n",
                          "Tok", {"user": "tu", "port": 2022}, {}),
    "tokens-controlpath": ("Host t\n  HostName real.example\n  HostKeyAlias kalias\n"
                           "  ControlPath {d}/cm-%C-%h-%n-%k\n", "t", {}, {}),
    "hostname-percent-h": ("Host *.short\n  HostName %h.internal.example\n", "node.short", {}, {}),
    "match-host-after-hostname": ("Host a\n  HostName real-a.example\nMatch host real-*\n  Port 3001\n",
                                  "a", {}, {}),
    "match-originalhost": ("Host a\n  HostName other\nMatch originalhost a\n  User orig\n", "a", {}, {}),
    "match-user-cli": ("Match user admin,root\n  Port 3002\n", "h", {"user": "admin"}, {}),
    "match-user-config": ("Host h\n  User svc\nMatch user svc\n  Port 3003\n", "h", {}, {}),
    "match-localuser": ("Match localuser *\n  Port 3004\nMatch localuser nobody-here\n  User never\n",
                        "h", {}, {}),
    "match-all": ("Host x\n  Port 3005\nMatch all\n  User everyone\n", "y", {}, {}),
    "match-negated": ("Match !host skip*\n  Port 3006\n", "keep", {}, {}),
    "match-negated-miss": ("Match !host skip*\n  Port 3006\n", "skipme", {}, {}),
    "match-multi-criteria": ("Match host web* user deploy\n  Port 3007\nMatch host web* user other\n"
                             "  User never\n", "web1", {"user": "deploy"}, {}),
    "match-case-insensitive": ("Match originalhost WEB*\n  Port 3008\n", "web2", {}, {}),
    "include-absolute-glob": ("Include {d}/conf.d/*.conf\nHost *\n  Port 9\n", "h",
                              {}, {"conf.d/20-b.conf": "Host h\n  User from-b\n  Port 3010\n",
                                   "conf.d/10-a.conf": "Host h\n  User from-a\n", "conf.d/skip.txt": "Port 1\n"}),
    "include-relative": ("Include rel.d/*\n", "h", {}, {"home/.ssh/rel.d/x": "Host h\n  Port 3011\n"}),
    "include-tilde": ("Include ~/.ssh/tilde.conf\n", "h", {}, {"home/.ssh/tilde.conf": "Port 3012\n"}),
    "include-in-host-block": ("Host h\n  Include {d}/inc.conf\nHost other\n  Include {d}/inc2.conf\n", "h",
                              {}, {"inc.conf": "User inc-user\nHost *\n  Port 3013\n",
                                   "inc2.conf": "User wrong\n"}),
    "include-match-state": ("Host h\n  Include {d}/m.conf\n  Port 3014\n", "h",
                            {}, {"m.conf": "Match host nothing\n  User no\n"}),
    "include-missing": ("Include {d}/nope/*.conf {d}/nope.conf\nPort 3015\n", "h", {}, {}),
    "proxyjump-chain": ("Host t\n  ProxyJump u1@j1:2200,j2,[fe80::1]:2222\n", "t", {}, {}),
    "proxyjump-uri": ("Host t\n  ProxyJump ssh://ju@jh:2300\n", "t", {}, {}),
    "proxyjump-first-wins": ("Host t\n  ProxyJump first\n  ProxyCommand nc %h %p\nHost *\n  ProxyJump second\n",
                             "t", {}, {}),
    "proxycommand-first": ("Host t\n  ProxyCommand nc -q0 %h %p # %r\n  ProxyJump never\n", "t",
                           {"user": "pu"}, {}),
    "proxyjump-none": ("Host t\n  ProxyJump none\nHost *\n  ProxyJump later\n  ProxyCommand later\n",
                       "t", {}, {}),
    "sendenv": ("Host *\n  SendEnv LANG LC_*\n  SendEnv FOO BAR\n  SendEnv -LC_* -BAR\n  SendEnv ZED\n",
                "h", {}, {}),
    "setenv": ('Host h\n  SetEnv A=1 B="two words" A=dup\nHost *\n  SetEnv C=3\n', "h", {}, {}),
    "shkc-accept-new": ("Host *\n  StrictHostKeyChecking accept-new\n", "h", {}, {}),
    "shkc-no": ("Host a\n  StrictHostKeyChecking no\nHost *\n  StrictHostKeyChecking yes\n", "a", {}, {}),
    "shkc-off": ("Host *\n  StrictHostKeyChecking off\n", "h", {}, {}),
    "cli-port-user": ("Host h\n  Port 4000\n  User cfg\n", "h", {"user": "cli", "port": 4001}, {}),
    "cli-options": ("Host h\n  Port 4000\n  User cfg\n  SendEnv CFG\n", "h",
                    {"options": ("Port=4002", "User opt", "SendEnv=OPT", "IdentityFile={d}/optkey")}, {}),
    "times": ("Host *\n  ServerAliveInterval 1m30s\n  ServerAliveCountMax 7\n  ConnectTimeout 2M\n", "h", {}, {}),
    "connecttimeout-none": ("Host h\n  ConnectTimeout none\nHost *\n  ConnectTimeout 11\n", "h", {}, {}),
    "algorithms": ("Host *\n  Ciphers aes128-ctr,aes256-gcm@openssh.com\n  KexAlgorithms curve25519-sha256\n"
                   "  MACs hmac-sha2-256\n  HostKeyAlgorithms ssh-ed25519,rsa-sha2-512\n", "h", {}, {}),
    "knownhosts-files": ("Host *\n  UserKnownHostsFile none\n  GlobalKnownHostsFile {d}/g1 {d}/g2\n", "h", {}, {}),
    # ServerAliveInterval is set: Debian's ssh makes it 300 under BatchMode yes, upstream OpenSSH does not
    "auth-flags": ("Host *\n  ServerAliveInterval 4\n  IdentitiesOnly yes\n  BatchMode yes\n  Compression yes\n"
                   "  LogLevel debug1\n"
                   "  AddressFamily inet\n  IdentityAgent ~/agent-%h\n  HostKeyAlias kal\n"
                   "  PreferredAuthentications publickey,password\n  PubkeyAuthentication no\n"
                   "  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  NumberOfPasswordPrompts 1\n"
                   "  HashKnownHosts yes\n  TCPKeepAlive no\n  ConnectionAttempts 4\n", "h", {}, {}),
    "revoked-bind": ("Host *\n  RevokedHostKeys ~/revoked-%h\n  BindAddress 127.0.0.1\n"
                     "  CanonicalizeHostname no\n  KnownHostsCommand none\n", "h", {}, {}),
    "tabs-crlf": ("Host\tweb\r\n\tPort\t2206\r\n\tUser=\ttabby\r\n", "web", {}, {}),
    "escapes-single-quotes": ("Host *\n  IdentityFile {d}/with\\ space\n  IdentityFile '{d}/single q'\n"
                              "  SetEnv X='a b' Y=c\\ d\n", "h", {}, {}),
    "env-var-expansion": ("Host *\n  IdentityFile ${HOME}/id_env\n  UserKnownHostsFile ${HOME}/kh_%h\n",
                          "h", {}, {}),
    "ip-hostname-case": ("Host v6\n  HostName FE80::AB\nHost v4\n  HostName 10.1.2.3\n", "v6", {}, {}),
    "include-several-args": ("Include {d}/one.conf {d}/two.conf\n", "h", {},
                             {"one.conf": "Host h\n  Port 3016\n", "two.conf": "User two\n"}),
    "match-user-before-user": ("Match user late\n  Port 3017\nHost h\n  User late\n", "h", {}, {}),
    "match-host-no-hostname": ("Match host H*\n  Port 3018\n", "Hx", {}, {}),
    "identity-cli-and-config-same": ("Host *\n  IdentityFile {d}/same\n", "h", {"identity": ("{d}/same",)},
                                     {"same": "x"}),
    "sendenv-remove-then-add": ("Host *\n  SendEnv -*\n  SendEnv A B\n  SendEnv -A\n", "h", {}, {}),
    "host-equals-multi": ("Host=a b c\n  Port=3019\n", "c", {}, {}),
    "many-blocks-wildcards": ("Host *.a\n  User ua\nHost x.*\n  Port 3020\nHost *\n  User uall\n"
                              "  Port 3021\n", "x.a", {}, {}),
    "quoted-keyword": ('"Host" web\n  "Port" 2207\n', "web", {}, {}),
    "certificate-files": ("Host *\n  CertificateFile ~/c_%h\n  CertificateFile /x/c2\n  CertificateFile /x/c2\n"
                          "  IdentityFile /x/id\n", "h", {}, {}),
    "agent-none": ("Host *\n  IdentityAgent none\n  ChallengeResponseAuthentication no\n", "h", {}, {}),
    "ignore-unknown": ("IgnoreUnknown Frob*,Other\nHost *\n  FrobnicateLevel 3\n  Port 4003\n", "h", {}, {}),
    "unused-known-keywords": ("Host *\n  ForwardAgent yes\n  ControlMaster auto\n  LocalForward 8080 x:80\n"
                              "  Port 4004\n", "h", {}, {}),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sshcfg")


def materialise(base: Path, name: str) -> tuple[Path, str, dict[str, Any], Path, LocalContext]:
    text, host, kwargs, files = CORPUS[name]
    d = base / name
    (d / "home" / ".ssh").mkdir(parents=True)
    for rel, body in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body.replace("{d}", str(d)))
    cfg = d / "config"
    cfg.write_text(text.replace("{d}", str(d)))
    kw = {k: (tuple(x.replace("{d}", str(d)) for x in v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
    ctx = LocalContext.current()
    ctx = LocalContext(ctx.user, ctx.home, ctx.uid, ctx.hostname, str(d / "home"))
    return cfg, host, kw, d / "home", ctx


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_resolves_like_ssh_G(workdir: Path, name: str) -> None:
    cfg, host, kw, home, ctx = materialise(workdir, name)
    g = run_ssh_g(cfg, host, home, **kw)
    env = {**os.environ, "HOME": str(home)}  # as ssh -G ran
    resolver = ConfigResolver(str(cfg), context=ctx, environ=env)
    hc = resolver.resolve(host, user=kw.get("user"), port=kw.get("port"),
                          identity_files=kw.get("identity", ()), ssh_options=kw.get("options", ()))
    mine = ours(hc)
    assert mine == theirs(g, ctx, host, mine, env)
    expected_jump = parse_jump(g["proxyjump"][0]) if "proxyjump" in g else ()
    assert hc.proxy_jump == expected_jump
    assert resolver.resolve(host, user=kw.get("user"), port=kw.get("port"),
                            identity_files=kw.get("identity", ()), ssh_options=kw.get("options", ())) is hc


def test_proxyjump_hops_are_parsed(tmp_path: Path) -> None:
    cfg, host, _, _, ctx = materialise(tmp_path, "proxyjump-chain")
    hc = ConfigResolver(str(cfg), context=ctx).resolve(host)
    assert [(h.user, h.host, h.port) for h in hc.proxy_jump] == [
        ("u1", "j1", 2200), (None, "j2", None), (None, "fe80::1", 2222)]


# name: (config text, host, fragment ssh's error must contain) -- both must refuse, ours naming file:line
BAD: dict[str, tuple[str, str]] = {
    "unknown-keyword": ("Host *\n  Port 22\n  Frobnicate yes\n", "config:3"),
    "bad-port": ("Host other\n  Port 99999\n", "config:2"),
    "bad-port-word": ("Port abc\n", "config:1"),
    "bad-quotes": ('Host *\n  User "unbalanced\n', "config:2"),
    "no-argument": ("Host *\n  User\n", "config:2"),
    "extra-arguments": ("Host *\n  Port 22 23\n", "config:2"),
    "bad-flag": ("Host *\n  BatchMode maybe\n", "config:2"),
    "bad-time": ("Host *\n  ConnectTimeout soon\n", "config:2"),
    "bad-shkc": ("StrictHostKeyChecking sometimes\n", "config:1"),
    "bad-proxyjump": ("Host *\n  ProxyJump user@:22\n", "config:2"),
    "match-bad-attribute": ("Match colour blue\n  Port 1\n", "config:1"),
    "match-missing-arg": ("Match host\n", "config:1"),
    "setenv-no-equals": ("SetEnv NOVALUE\n", "config:1"),
    "hostname-bad-token": ("Host *\n  HostName %p.example\n", "config:2"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_lines_refused_like_ssh(tmp_path: Path, name: str) -> None:
    text, where = BAD[name]
    cfg = tmp_path / "config"
    cfg.write_text(text)
    proc = subprocess.run(["ssh", "-G", "-F", str(cfg), "h"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)
    assert proc.returncode != 0, "OpenSSH accepted it, so should we"
    with pytest.raises(ConfigError) as err:
        ConfigResolver(str(cfg)).resolve("h")
    assert isinstance(err.value, ValueError)
    assert str(tmp_path / where) in str(err.value)


@pytest.mark.parametrize("criterion", ['exec "touch {canary}"', 'host h exec "touch {canary}"',
                                       '!exec "touch {canary}"'])
def test_match_exec_runs_nothing(tmp_path: Path, criterion: str) -> None:
    canary = tmp_path / "canary"
    cfg = tmp_path / "config"
    cfg.write_text("Host *\n  User u\n\nMatch " + criterion.format(canary=canary) + "\n  Port 1\n")
    with pytest.raises(UnsupportedConfig, match=rf"{cfg}:4: Match !?exec cannot be evaluated"):
        ConfigResolver(str(cfg)).resolve("h")
    assert not canary.exists()


def test_match_exec_after_failed_criterion_is_skipped_not_run(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    cfg = tmp_path / "config"
    cfg.write_text(f'Match host other exec "touch {canary}"\n  Port 1\n')
    hc = ConfigResolver(str(cfg)).resolve("h")  # OpenSSH also skips exec after a failed predicate
    assert hc.port == 22
    assert not canary.exists()


@pytest.mark.parametrize("criterion", ["canonical", "final", "localnetwork 10.0.0.0/8", "tagged x"])
def test_unevaluable_match_criteria_are_errors(tmp_path: Path, criterion: str) -> None:
    cfg = tmp_path / "config"
    cfg.write_text(f"Port 2\nMatch {criterion}\n  Port 1\n")
    with pytest.raises(UnsupportedConfig, match=rf"{cfg}:2: "):
        ConfigResolver(str(cfg)).resolve("h")


def test_bad_ssh_option_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"ssh option 'Port abc'"):
        ConfigResolver(None, system_config=None).resolve("h", ssh_options=[("Port", "abc")])
    with pytest.raises(ConfigError, match=r"not allowed as an ssh option"):
        ConfigResolver(None, system_config=None).resolve("h", ssh_options=["Host=x"])


def test_system_config_comes_after_user_config(tmp_path: Path) -> None:
    """Our system_config parameter against ssh -G reading both files in that order via Include."""
    user = tmp_path / "user"
    system = tmp_path / "system"
    user.write_text("Host web\n  Port 2201\nHost *\n  SendEnv USERVAR\n")
    system.write_text("Host *\n  Port 2299\n  User sysuser\n  SendEnv SYSVAR\n  ConnectTimeout 9\n")
    both = tmp_path / "both"
    both.write_text(f"Include {user}\nInclude {system}\n")
    ctx = LocalContext.current()
    for host in ("web", "other"):
        g = run_ssh_g(both, host, tmp_path)
        hc = ConfigResolver(str(user), system_config=str(system), context=ctx).resolve(host)
        mine = ours(hc)
        assert mine == theirs(g, ctx, host, mine)
    hc = ConfigResolver(str(user), system_config=str(system), context=ctx).resolve("web")
    assert (hc.port, hc.user, hc.send_env) == (2201, "sysuser", ("USERVAR", "SYSVAR"))
    # like ssh -F, an explicit config file alone does not read /etc/ssh/ssh_config
    assert ConfigResolver(str(user), context=ctx).system_config is None


def test_caller_settings_order(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("Host *\n  Port 2000\n  User cfg\n  StrictHostKeyChecking no\n  IdentityFile /k/cfg\n")
    r = ConfigResolver(str(cfg), system_config=None)
    hc = r.resolve("h", user="u", port=2001, identity_files=["/k/cli"],
                   ssh_options=[("Port", "2002"), ("User", "o"), "IdentityFile=/k/opt"])
    assert (hc.port, hc.user, hc.identity_files) == (2001, "u", ("/k/cli", "/k/opt", "/k/cfg"))
    assert not hc.default_identities
    assert r.resolve("h").host_key_policy == "no"  # OpenSSH's "no": accept new, record them
    assert r.resolve("h", host_key_policy="off").host_key_policy == "off"  # parallax's off, ahead of the file
    assert r.resolve("h", host_key_policy="off",
                     ssh_options=["StrictHostKeyChecking=yes"]).host_key_policy == "strict"
    with pytest.raises(ConfigError, match="host_key_policy 'lax'"):
        r.resolve("h", host_key_policy="lax")
    with pytest.raises(ConfigError, match="port 0"):
        r.resolve("h", port=0)


def test_defaults_when_nothing_is_set() -> None:
    ctx = LocalContext.current()
    hc = ConfigResolver(None, system_config=None, context=ctx).resolve("Plain")
    assert (hc.hostname, hc.port, hc.user) == ("plain", 22, ctx.user)
    assert hc.default_identities and hc.identity_files[0] == os.path.join(ctx.home, ".ssh", "id_rsa")
    assert hc.host_key_policy == "strict" and hc.strict_host_key_checking == "ask"
    assert hc.user_known_hosts_files == (f"{ctx.home}/.ssh/known_hosts", f"{ctx.home}/.ssh/known_hosts2")
    assert hc.host_key_name == "plain"
    assert ConfigResolver(None, system_config=None).resolve("h", port=2222).host_key_name == "[h]:2222"


def test_writable_include_refused_like_ssh(tmp_path: Path) -> None:
    inc = tmp_path / "inc.conf"
    inc.write_text("Port 7\n")
    inc.chmod(0o666)
    cfg = tmp_path / "config"
    cfg.write_text(f"Include {inc}\n")
    proc = subprocess.run(["ssh", "-G", "-F", str(cfg), "h"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)
    assert proc.returncode != 0 and "permissions" in proc.stderr
    with pytest.raises(ConfigError, match="bad owner or permissions"):
        ConfigResolver(str(cfg)).resolve("h")


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text(f"Include {cfg}\n")
    with pytest.raises(ConfigError, match="nested more than 16"):
        ConfigResolver(str(cfg)).resolve("h")


@pytest.mark.parametrize(("line", "what"), [("KnownHostsCommand /bin/touch {canary}", "KnownHostsCommand"),
                                            ("CanonicalizeHostname always", "CanonicalizeHostname always"),
                                            ("CanonicalizeHostname yes", "CanonicalizeHostname yes")])
def test_settings_that_cannot_be_honoured_are_errors(tmp_path: Path, line: str, what: str) -> None:
    canary = tmp_path / "canary"
    cfg = tmp_path / "config"
    cfg.write_text("Host other\n  Port 1\nHost h\n  " + line.format(canary=canary) + "\n")
    r = ConfigResolver(str(cfg))
    assert r.resolve("other").port == 1  # only the hosts it applies to are refused
    with pytest.raises(UnsupportedConfig, match=rf"{cfg}:4: {what} cannot be evaluated"):
        r.resolve("h")
    assert not canary.exists()


def test_environment_to_send(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("Host *\n  SendEnv LC_* KEEP\n  SetEnv KEEP=set NEW=1\n")
    hc = ConfigResolver(str(cfg)).resolve("h")
    env = {"LC_ALL": "C", "LANG": "x", "KEEP": "local", "OTHER": "y"}
    assert hc.environment(env) == {"LC_ALL": "C", "KEEP": "set", "NEW": "1"}


def test_default_files_like_plain_ssh_G() -> None:
    """No -F: ssh reads ~/.ssh/config (if any) then /etc/ssh/ssh_config; so does the default resolver."""
    ctx = LocalContext.current()
    for host in ("plain", "Other.Example", "10.0.0.1"):
        proc = subprocess.run(["ssh", "-G", host], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=30)
        assert proc.returncode == 0, proc.stderr
        g: dict[str, list[str]] = {}
        for line in proc.stdout.splitlines():
            key, _, value = line.partition(" ")
            g.setdefault(key, []).append(value)
        hc = ConfigResolver(context=ctx).resolve(host)
        mine = ours(hc)
        assert mine == theirs(g, ctx, host, mine)


def test_host_config_is_immutable_and_from_fields_equals_init() -> None:
    import dataclasses

    hc = ConfigResolver(None, system_config=None).resolve("h")
    fields = {f.name: getattr(hc, f.name) for f in dataclasses.fields(hc)}
    assert HostConfig(**fields) == hc == HostConfig.from_fields(fields)
    assert hash(HostConfig(**fields)) == hash(hc)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hc.port = 1  # type: ignore[misc]
    del fields["port"]
    with pytest.raises(ValueError, match=r"missing \['port'\]"):
        HostConfig.from_fields(fields)


def test_jump_chain_like_ssh_J(tmp_path: Path) -> None:
    """Each hop resolves as ``ssh -G -l U -p P -J <earlier hops> -F FILE HOP`` prints."""
    cfg = tmp_path / "config"
    cfg.write_text("Host target\n  ProxyJump ju@first:2201,second,third:2203\n"
                   "Host first\n  HostName first.example\n  User firstuser\n  Port 1111\n"
                   "Host second\n  IdentityFile /k/second\n  ProxyJump never-used\n"
                   "Host third\n  User thirduser\nHost *\n  ServerAliveInterval 3\n")
    ctx = LocalContext.current()
    r = ConfigResolver(str(cfg), context=ctx)
    chain = r.jump_chain(r.resolve("target"))
    assert [(h.hostname, h.port, h.user) for h in chain] == [
        ("first.example", 2201, "ju"), ("second", 22, ctx.user), ("third", 2203, "thirduser")]
    specs = [("first", "ju", 2201, ()), ("second", None, None, ("-oProxyJump=ju@first:2201",)),
             ("third", None, 2203, ("-oProxyJump=ju@first:2201,second",))]
    for hc, (host, user, port, jump) in zip(chain, specs, strict=True):
        g = run_ssh_g(cfg, host, tmp_path, user=user, port=port, options=tuple(o[2:] for o in jump))
        mine = ours(hc)
        assert mine == theirs(g, ctx, host, mine)
    assert chain[1].proxy_jump == parse_jump("ju@first:2201")  # the hop's own ProxyJump is not used


def test_jump_loop_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("Host *\n  ProxyJump bastion\n")
    r = ConfigResolver(str(cfg))
    with pytest.raises(ConfigError, match="loops back to bastion"):
        r.jump_chain(r.resolve("target"))


# --- random configs (seeded): Host/Match blocks of random settings, compared with ssh -G ----------------

FUZZ_HOSTS = ["web1", "web2", "db1", "Bastion", "x.example.com", "a.b", "10.0.0.5"]
FUZZ_PATTERNS = ["*", "web*", "!web2", "db?", "*.example.com", "bastion", "Bastion", "a.*", "!*.com", "10.0.0.*"]
FUZZ_MATCH = ["web*", "db?", "*", "u1", "u2", "root", "*.internal", "real-*", "!web1", "bastion"]
FUZZ_SETTINGS = [
    ["Port 2201", "Port 40000"], ["User u1", "User u2"],
    ["HostName %h.internal", "HostName real-%h", "HostName 10.9.8.7", "HostName UPPER.%h"],
    ["IdentityFile ~/.ssh/id_a", "IdentityFile ~/.ssh/id_%h", "IdentityFile ~/.ssh/id_%r_%p"],
    ["SendEnv LANG", "SendEnv LC_*", "SendEnv -LC_*", "SendEnv FOO BAR", "SendEnv -FOO"],
    ["SetEnv A=1", "SetEnv B=2 C=3", "SetEnv A=9"],
    ["ProxyJump j1", "ProxyJump u@j2:2222,j3", "ProxyJump none", "ProxyCommand nc %h %p", "ProxyCommand none"],
    ["ConnectTimeout 5", "ConnectTimeout none", "ConnectTimeout 1m", "ConnectTimeout 0"],
    ["StrictHostKeyChecking yes", "StrictHostKeyChecking no", "StrictHostKeyChecking accept-new",
     "StrictHostKeyChecking off"],
    ["UserKnownHostsFile ~/kh_%h", "UserKnownHostsFile none", "UserKnownHostsFile /tmp/k1 /tmp/k2",
     "UserKnownHostsFile ~/kh_%C_%k"],
    ["ServerAliveInterval 5", "ServerAliveInterval 1h"], ["HostKeyAlias al1", "HostKeyAlias al2"],
    ["IdentitiesOnly yes", "Compression yes", "BatchMode no"], ["ControlPath ~/.ssh/cm-%C", "ControlPath ~/cm-%r@%h"],
]


def random_config(r: random.Random) -> str:
    def setting() -> str:
        return r.choice(r.choice(FUZZ_SETTINGS))

    lines = [setting() for _ in range(r.randint(0, 2))]
    for _ in range(r.randint(1, 6)):
        if r.random() < 0.6:
            lines.append("Host " + " ".join(r.sample(FUZZ_PATTERNS, r.randint(1, 3))))
        elif r.random() < 0.1:
            lines.append("Match all")
        else:
            crit = [f"{'!' if r.random() < 0.2 else ''}{r.choice(['host', 'originalhost', 'user', 'localuser'])} "
                    + ",".join(r.sample(FUZZ_MATCH, r.randint(1, 2))) for _ in range(r.randint(1, 2))]
            lines.append("Match " + " ".join(crit))
        lines += ["  " + setting() for _ in range(r.randint(1, 4))]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(0, 200, 10))
def test_random_configs_like_ssh_G(tmp_path: Path, seed: int) -> None:
    ctx = LocalContext.current()
    ctx = LocalContext(ctx.user, ctx.home, ctx.uid, ctx.hostname, str(tmp_path))
    env = {**os.environ, "HOME": str(tmp_path)}
    for i in range(seed, seed + 10):
        r = random.Random(i)
        cfg = tmp_path / f"config{i}"
        cfg.write_text(random_config(r))
        host = r.choice(FUZZ_HOSTS)
        user = r.choice(["u1", "cli"]) if r.random() < 0.3 else None
        port = 2200 if r.random() < 0.2 else None
        g = run_ssh_g(cfg, host, tmp_path, user=user, port=port)
        hc = ConfigResolver(str(cfg), context=ctx, environ=env).resolve(host, user=user, port=port)
        mine = ours(hc)
        assert mine == theirs(g, ctx, host, mine, env), cfg.read_text()
        assert hc.proxy_jump == (parse_jump(g["proxyjump"][0]) if "proxyjump" in g else ()), cfg.read_text()
