"""parallax.nodeset and the host parser against ClusterShell's own ``cluset`` command, the oracle.

Every input is given to ``cluset -e`` / ``-c`` / ``-f`` and to the library; the
names, counts and folds must be the same, and an input cluset refuses must be
a ``ValueError`` naming it.  Group sources come from a ClusterShell config
written here (``CLUSTERSHELL_CFGDIR`` for cluset, ClusterShell's public
``set_std_group_resolver_config`` in this process).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import textwrap

import pytest
from ClusterShell.NodeSet import set_std_group_resolver, set_std_group_resolver_config

from parallax import nodeset
from parallax.hosts import parse_hosts

CLUSET = shutil.which("cluset")
pytestmark = pytest.mark.skipif(CLUSET is None, reason="ClusterShell's cluset command is not installed")

VALID = [
    "web[01-20]",
    "h[1-2],h[5-6]",
    "h[1-10/2]",
    "h[1-3]!h2",
    "h[1-3]&h[2-5]",
    "h[1-3]^h[2-5]",
    "r[1-2]n[1-3]",
    "h1,h2,h3",
    "n[8-10]",
    "n[08-10]",
    "n[001-100]",
    "node[7,1-2]",
    "n[1,1]",
    "h[1-2],h[2-3]",
    "b,a",
    "h10,h9,g1",
    "a1b,a2b,a1c",
    "h[1-2].x,h[1-2].y",
    "web-[1-2].example.com",
    "192.0.2.[1-3]",
    "h[1-3]!h[2]",
    "x[1-2]y,x1y3",
    "h[1-3]!h[5-6]",
    "rack[1-2]-node[01-02]",
    "h[0-4/2],h[1-5/2]",
    "plain",
    "a.b.c",
    "H1,h1",
    "h[1-1000]!h[2-999]",
    "h[1-5]&h[3-9]!h4",
]

INVALID = ["h[3-1]", "h[a-b]", "web[1", "web]1", "h[]", "h,,x", "h[1-3]!", ",h", "h[01-3]", "h[1-2]-[a]"]

GROUPS = {
    "@web": "web01 web02 web03",
    "@db,@web!web02": "db1 db2 web01 web03",
    "@lab:db": "db1 db2",
    "@other:x&x[2-9]": "x2",
    "@all!@web": "db1 db2",
}


def cluset(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _cluset(args, tuple(sorted((env or {}).items())))


@functools.cache
def _cluset(args: tuple[str, ...], env: tuple[tuple[str, str], ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLUSET, *args], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **dict(env)})


@pytest.fixture(scope="module")
def groups_dir(tmp_path_factory):
    """A ClusterShell config with two static (YAML) group sources, ``lab`` (default) and ``other``."""
    base = tmp_path_factory.mktemp("clustershell")
    (base / "groups.d").mkdir()
    (base / "groups.conf").write_text("[Main]\ndefault: lab\nautodir: $CFGDIR/groups.d\n")
    (base / "groups.d" / "lab.yaml").write_text(textwrap.dedent("""\
        lab:
            web: 'web[01-03]'
            db: 'db[1-2]'
            all: 'web[01-03],db[1-2]'
        other:
            x: 'x[1-2]'
        """))
    return base


@pytest.fixture
def groups(groups_dir):
    set_std_group_resolver_config(str(groups_dir / "groups.conf"))
    try:
        yield groups_dir
    finally:
        set_std_group_resolver(None)


@pytest.mark.parametrize("pattern", VALID)
def test_expand_and_count_match_cluset(pattern):
    expanded = cluset("-e", "--", pattern)
    assert expanded.returncode == 0, expanded.stderr
    names = expanded.stdout.split()
    assert nodeset.expand(pattern) == names
    assert nodeset.count(pattern) == int(cluset("-c", "--", pattern).stdout) == len(names)
    assert nodeset.fold(names) == cluset("-f", "--", *names).stdout.strip()


@pytest.mark.parametrize("pattern", VALID)
def test_host_parser_gives_cluset_hosts(pattern):
    names = cluset("-e", "--", pattern).stdout.split()
    specs = parse_hosts(pattern)
    assert [s.host for s in specs] == names
    assert [s.key for s in parse_hosts(f"u@{pattern}:2222")] == [f"u@{n}:2222" for n in names]
    assert {s.port for s in parse_hosts(f"u@{pattern}:2222")} == {2222}


@pytest.mark.parametrize("pattern", INVALID)
def test_what_cluset_refuses_is_a_value_error_naming_the_input(pattern):
    assert "error" in cluset("-e", "--", pattern).stderr.lower()
    with pytest.raises(ValueError) as info:
        nodeset.expand(pattern)
    assert repr(pattern) in str(info.value)
    with pytest.raises(ValueError) as info:
        parse_hosts(pattern)
    assert str(info.value).startswith(f"invalid host entry {pattern!r}: ")


@pytest.mark.parametrize(("pattern", "expected"), sorted(GROUPS.items()))
def test_groups_match_cluset(groups, pattern, expected):
    result = cluset("-e", "--", pattern, env={"CLUSTERSHELL_CFGDIR": str(groups)})
    assert result.stdout.split() == expected.split(), result.stderr
    assert nodeset.expand(pattern) == expected.split()
    assert [s.host for s in parse_hosts(f"admin@{pattern}")] == expected.split()
    assert {s.user for s in parse_hosts(f"admin@{pattern}")} == {"admin"}


def test_group_with_user_and_port(groups):
    assert [s.key for s in parse_hosts("root@@lab:web:2200")] == ["root@web01:2200", "root@web02:2200",
                                                                  "root@web03:2200"]
    assert [s.port for s in parse_hosts("@other:x:2200")] == [2200, 2200]
    # one colon in a group operand is @source:group (ClusterShell's meaning), never a port
    assert [s.host for s in parse_hosts("@other:x")] == ["x1", "x2"]
    with pytest.raises(ValueError, match="unknown group source 'web'"):
        parse_hosts("@web:2200")


def test_unknown_group_and_unknown_source_are_clear_errors(groups):
    assert cluset("-e", "@nope", env={"CLUSTERSHELL_CFGDIR": str(groups)}).stdout.strip() == ""  # cluset: nothing
    with pytest.raises(ValueError, match=r"group '@nope' names no node \(unknown group"):
        nodeset.expand("@nope")
    with pytest.raises(ValueError, match=r"group '@nope' names no node"):
        parse_hosts(["web9", "@web,@nope"])
    with pytest.raises(ValueError, match="unknown group source 'bad'"):
        parse_hosts("@bad:web")


def test_a_group_without_group_sources_is_a_clear_error(tmp_path):
    (tmp_path / "groups.conf").write_text("[Main]\ndefault: none\n")
    set_std_group_resolver_config(str(tmp_path / "groups.conf"))
    try:
        with pytest.raises(ValueError, match=r"'@web'"):
            parse_hosts("@web")
    finally:
        set_std_group_resolver(None)


def test_group_names_with_shell_characters_never_reach_clustershell(groups):
    # ClusterShell substitutes $GROUP into its group source's shell commands: such names are refused first
    for pattern in ["@x;touch${IFS}PWNED", "@`id`", "@$(id)", "@a|b"]:
        with pytest.raises(ValueError, match="OpenSSH refuses it"):
            parse_hosts(pattern)


def test_size_is_bounded_before_clustershell_builds_names():
    # ClusterShell builds every name in memory (ten million take it ~40 s): refused from the text, at once
    for pattern in ["h[1-10000000]", "a[1-1000]b[1-1000]", "h[1-60000],g[1-60000]", "h[0-99999999999/1]",
                    "h[1-3-100000000]"]:
        with pytest.raises(ValueError, match="more than"):
            nodeset.expand(pattern)
    assert nodeset.count(f"h[1-{nodeset.MAX_NODES}]") == nodeset.MAX_NODES


def test_an_empty_result_is_an_error_unless_allowed():
    assert cluset("-e", "h1!h1").stdout.strip() == ""
    with pytest.raises(ValueError, match=r"'h1!h1': names no node"):
        nodeset.expand("h1!h1")
    assert nodeset.expand("h1!h1", allow_empty=True) == []
    assert nodeset.count("h1!h1") == 0
    assert nodeset.expand("") == []
    with pytest.raises(ValueError, match="host must not be empty"):
        parse_hosts("")


def test_fold_and_count():
    assert nodeset.fold(["web01", "web02", "web03", "web07"]) == "web[01-03,07]"
    assert nodeset.fold([]) == ""
    assert nodeset.count("h[1-3],g1") == 4
    with pytest.raises(TypeError):
        nodeset.fold([1, 2])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        nodeset.expand(5)  # type: ignore[arg-type]


def test_plain_names_skip_clustershell_and_agree_with_it():
    for name in ["a", "host-1", "h.example.com", "10.0.0.1", "h_1", "h%1", "007"]:
        assert nodeset.is_plain(name)
        assert nodeset.expand(name) == cluset("-e", "--", name).stdout.split()
    assert not nodeset.is_plain("h[1-2]") and not nodeset.is_plain("a,b") and not nodeset.is_plain("@g")


def test_operands():
    assert nodeset.operands("h[1-2,5],h5!@db&x^y") == ["h[1-2,5]", "h5", "@db", "x", "y"]
