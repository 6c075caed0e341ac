"""Tests for parallax.hosts: host entry parsing, ranges, hosts files, validation."""

from __future__ import annotations

import os
import re

import pytest

from parallax.hosts import (
    MAX_EXPANSION,
    HostSpec,
    parse_entry,
    parse_host,
    parse_hosts,
    read_hosts_file,
)


def H(key: str, host: str | None = None, port: int | None = None, user: str | None = None) -> HostSpec:
    return HostSpec(key=key, host=key if host is None else host, port=port, user=user)


def write(tmp_path, name: str, text: str, *, newline: str | None = None) -> str:
    path = tmp_path / name
    with open(path, "w", encoding="utf-8", newline=newline) as handle:
        handle.write(text)
    return str(path)


# --- string forms -----------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "host", "port", "user"),
    [
        ("host", "host", None, None),
        ("node1.example.com", "node1.example.com", None, None),
        ("192.0.2.7", "192.0.2.7", None, None),
        ("root@host", "host", None, "root"),
        ("host:2222", "host", 2222, None),
        ("root@host:22", "host", 22, "root"),
        ("host:022", "host", 22, None),
        ("host:65535", "host", 65535, None),
        ("host:1", "host", 1, None),
        ("[::1]", "::1", None, None),
        ("[::1]:2222", "::1", 2222, None),
        ("[fe80::1%eth0]:22", "fe80::1%eth0", 22, None),
        ("admin@[2001:db8::5]:2200", "2001:db8::5", 2200, "admin"),
        ("admin@[2001:db8::5]", "2001:db8::5", None, "admin"),
        ("::1", "::1", None, None),
        ("fe80::1", "fe80::1", None, None),
        ("2001:db8::22", "2001:db8::22", None, None),
        ("root@fe80::1", "fe80::1", None, "root"),
        ("my.user-1@host", "host", None, "my.user-1"),
    ],
)
def test_parse_host_forms(entry, host, port, user):
    assert parse_host(entry) == HostSpec(key=entry, host=host, port=port, user=user)


def test_parse_host_custom_key():
    assert parse_host("root@h:22", key="K") == HostSpec("K", "h", 22, "root")


def test_parse_host_port_is_int():
    spec = parse_host("h:0080")
    assert spec.port == 80
    assert type(spec.port) is int


def test_parse_host_does_not_expand_ranges():
    with pytest.raises(ValueError, match=re.escape("'web[1-3]'")):
        parse_host("web[1-3]")


def test_parse_hosts_single_string_is_one_host():
    assert parse_hosts("root@node1:22") == [HostSpec("root@node1:22", "node1", 22, "root")]
    assert parse_hosts("abc") == [H("abc")]


def test_parse_hosts_list_of_strings_keeps_order():
    result = parse_hosts(["zeta", "alpha", "root@mid:2200", "[::1]:22"])
    assert [s.key for s in result] == ["zeta", "alpha", "root@mid:2200", "[::1]:22"]
    assert result[2] == HostSpec("root@mid:2200", "mid", 2200, "root")
    assert result[3] == HostSpec("[::1]:22", "::1", 22, None)


def test_parse_hosts_bare_ipv6_has_no_port():
    assert parse_hosts(["::1", "fe80::1"]) == [H("::1"), H("fe80::1")]


# --- tuple / list entries ---------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (("h",), HostSpec("h", "h", None, None)),
        (("h", 22), HostSpec("h", "h", 22, None)),
        (("h", "2222"), HostSpec("h", "h", 2222, None)),
        (("h", 22, "root"), HostSpec("h", "h", 22, "root")),
        (("h", None, "root"), HostSpec("h", "h", None, "root")),
        (("h", None, None), HostSpec("h", "h", None, None)),
        (["node1", None, "root"], HostSpec("node1", "node1", None, "root")),
        (["node1", "22"], HostSpec("node1", "node1", 22, None)),
        (["node1"], HostSpec("node1", "node1", None, None)),
        (("::1", 22), HostSpec("::1", "::1", 22, None)),
        (("fe80::1%eth0", 22, "u"), HostSpec("fe80::1%eth0", "fe80::1%eth0", 22, "u")),
    ],
)
def test_tuple_and_list_entries(entry, expected):
    assert parse_hosts([entry]) == [expected]


def test_tuple_numeric_string_port_becomes_int():
    (spec,) = parse_hosts([("h", "0022")])
    assert spec.port == 22 and type(spec.port) is int


def test_tuple_key_is_host_element():
    assert [s.key for s in parse_hosts([("a", 22, "root"), ["b", None, "x"]])] == ["a", "b"]


def test_tuple_host_is_not_parsed_but_validated():
    for host in ("root@h", "h:22", "[::1]", "web[1-2]"):
        with pytest.raises(ValueError, match=re.escape(repr((host, None)))):
            parse_hosts([(host, None)])


def test_mixed_entries_in_order():
    result = parse_hosts(["a", ("b", 2200), ["c", None, "root"], "u@d:23"])
    assert result == [
        H("a"),
        HostSpec("b", "b", 2200, None),
        HostSpec("c", "c", None, "root"),
        HostSpec("u@d:23", "d", 23, "u"),
    ]


def test_top_level_tuple_is_a_collection():
    assert parse_hosts(("a", "b")) == [H("a"), H("b")]
    assert parse_hosts((("a", 22), ("b", 23))) == [HostSpec("a", "a", 22), HostSpec("b", "b", 23)]


def test_top_level_tuple_host_is_rejected_with_hint():
    with pytest.raises(ValueError, match=r"invalid host entry 22: .*\[\(host, port, user\)\]"):
        parse_hosts(("a", 22))


def test_top_level_list_with_none_is_rejected():
    with pytest.raises(ValueError, match="invalid host entry None"):
        parse_hosts(["node1", None, "root"])


def test_generator_of_entries():
    gen = (name for name in ["a", "b", "c"])
    assert parse_hosts(gen) == [H("a"), H("b"), H("c")]


def test_set_and_other_iterables():
    assert parse_hosts(iter([("x", 1)])) == [HostSpec("x", "x", 1)]
    assert parse_hosts({"only"}) == [H("only")]


def test_hostspec_entries_pass_through():
    spec = HostSpec("k", "h", 22, "u")
    assert parse_hosts([spec, "other"]) == [spec, H("other")]
    assert parse_hosts(spec) == [spec]


def test_empty_collection_gives_empty_list():
    assert parse_hosts([]) == []
    assert parse_hosts(()) == []


# --- HostSpec ---------------------------------------------------------------


def test_hostspec_is_frozen_and_hashable():
    spec = HostSpec("k", "h", 22, "u")
    with pytest.raises(AttributeError):
        spec.host = "other"  # type: ignore[misc]
    assert {spec: 1}[HostSpec("k", "h", 22, "u")] == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key": "k", "host": "-oProxyCommand=x"},
        {"key": "k", "host": "a b"},
        {"key": "k", "host": "h", "port": 0},
        {"key": "k", "host": "h", "port": "22"},
        {"key": "k", "host": "h", "port": True},
        {"key": "k", "host": "h", "user": "-l"},
        {"key": "", "host": "h"},
    ],
)
def test_hostspec_validates_itself(kwargs):
    with pytest.raises(ValueError):
        HostSpec(**kwargs)


# --- node sets (ClusterShell syntax; tests/unit/test_nodeset.py compares with cluset) ---


def expand_ranges(entry: str) -> list[str]:
    """The keys *entry* expands to (the old hand-written expander's name, now through NodeSet)."""
    return [spec.key for spec in parse_entry(entry)]


def test_range_zero_padding():
    names = expand_ranges("web[01-20].example.com")
    assert len(names) == 20
    assert names[0] == "web01.example.com"
    assert names[8] == "web09.example.com"
    assert names[-1] == "web20.example.com"


def test_range_three_digit_padding():
    names = expand_ranges("n[001-100]")
    assert names[0] == "n001" and names[98] == "n099" and names[-1] == "n100"
    assert len(names) == 100


def test_range_padding_from_lower_bound():
    assert expand_ranges("n[8-10]") == ["n8", "n9", "n10"]
    assert expand_ranges("n[08-10]") == ["n08", "n09", "n10"]


def test_range_commas():
    assert expand_ranges("node[1-3,7]") == ["node1", "node2", "node3", "node7"]
    # ClusterShell's order is sorted (the old expander kept the written order: node7 first)
    assert expand_ranges("node[7,1-2]") == ["node1", "node2", "node7"]
    assert expand_ranges("n[01,05,10-11]") == ["n01", "n05", "n10", "n11"]


def test_range_product_in_order():
    assert expand_ranges("r[1-2]n[1-2]") == ["r1n1", "r1n2", "r2n1", "r2n2"]
    assert expand_ranges("r[1-2]-n[3,5]") == ["r1-n3", "r1-n5", "r2-n3", "r2-n5"]


def test_comma_outside_brackets_is_a_union_not_a_product():
    # the old expander gave the cross product of h[1-2],h[5-6] and sent "h1,h2,h3" to ssh as one host
    assert expand_ranges("h[1-2],h[5-6]") == ["h1", "h2", "h5", "h6"]
    assert [s.host for s in parse_hosts("h1,h2,h3")] == ["h1", "h2", "h3"]


@pytest.mark.parametrize(
    ("entry", "names"),
    [
        ("h[1-10/2]", ["h1", "h3", "h5", "h7", "h9"]),
        ("h[1-3]!h2", ["h1", "h3"]),
        ("h[1-3]&h[2-5]", ["h2", "h3"]),
        ("h[1-3]^h[2-5]", ["h1", "h4", "h5"]),
        ("r[1-2]n[1-3]", ["r1n1", "r1n2", "r1n3", "r2n1", "r2n2", "r2n3"]),
    ],
)
def test_nodeset_operators(entry, names):
    assert expand_ranges(entry) == names


def test_nodeset_with_user_and_port_applies_to_every_host():
    assert parse_hosts("u@h[1-3]!h2:2222") == [
        HostSpec("u@h1:2222", "h1", 2222, "u"),
        HostSpec("u@h3:2222", "h3", 2222, "u"),
    ]


def test_range_single_value():
    assert expand_ranges("node[5]") == ["node5"]
    assert expand_ranges("node[05]x") == ["node05x"]


def test_range_without_groups_is_unchanged():
    assert expand_ranges("plain.example.com") == ["plain.example.com"]


@pytest.mark.parametrize("entry", ["[::1]:22", "[::1]", "root@[fe80::1]:2222", "[2001:db8::1]"])
def test_ipv6_brackets_are_not_ranges(entry):
    assert expand_ranges(entry) == [entry]


def test_ranges_in_parse_hosts():
    result = parse_hosts(["root@web[1-2]:2222"])
    assert result == [
        HostSpec("root@web1:2222", "web1", 2222, "root"),
        HostSpec("root@web2:2222", "web2", 2222, "root"),
    ]


def test_ranges_keep_input_order_with_other_entries():
    result = parse_hosts(["first", "n[2-3]", ("last", 22)])
    assert [s.key for s in result] == ["first", "n2", "n3", "last"]


def test_reversed_range_rejected():
    with pytest.raises(ValueError, match=re.escape("'node[5-1]'")):
        parse_hosts("node[5-1]")
    with pytest.raises(ValueError, match="reversed"):
        expand_ranges("node[1,5-1]")


def test_too_large_expansion_rejected():
    entry = f"n[1-{MAX_EXPANSION + 1}]"
    with pytest.raises(ValueError, match=re.escape(repr(entry))):
        expand_ranges(entry)
    with pytest.raises(ValueError, match="more than"):
        expand_ranges("a[1-1000]b[1-1000]")
    with pytest.raises(ValueError, match="more than"):
        expand_ranges("a[1-99999999999999999999999999]")


def test_expansion_at_limit_allowed():
    assert len(expand_ranges(f"n[1-{MAX_EXPANSION}]")) == MAX_EXPANSION


def test_range_overlapping_entry_is_duplicate():
    with pytest.raises(ValueError, match="duplicate host key 'n2'"):
        parse_hosts(["n[1-3]", "n2"])
    # within one node set a name is there once (a set, as ClusterShell has it): not a duplicate
    assert expand_ranges("n[1,1]") == ["n1"]


def test_range_expanded_names_are_validated():
    with pytest.raises(ValueError, match="must not start with '-'"):
        parse_hosts("-o[1-2]")
    with pytest.raises(ValueError, match=re.escape("invalid host entry 'h1,-o[1-2]'")):
        parse_hosts("h1,-o[1-2]")


# --- hosts files ------------------------------------------------------------


def test_hosts_file_basic(tmp_path):
    path = write(
        tmp_path,
        "hosts",
        "# cluster A\n"
        "\n"
        "alpha\n"
        "   \n"
        "root@beta:2222\n"
        "gamma admin   # trailing comment\n"
        "\tdelta:23\tops\n"
        "[::1]:2200 me\n"
        "fe80::1\n"
        "  # indented comment\n",
    )
    assert read_hosts_file(path) == [
        H("alpha"),
        HostSpec("root@beta:2222", "beta", 2222, "root"),
        HostSpec("gamma", "gamma", None, "admin"),
        HostSpec("delta:23", "delta", 23, "ops"),
        HostSpec("[::1]:2200", "::1", 2200, "me"),
        H("fe80::1"),
    ]


def test_hosts_file_accepts_pathlike_and_crlf(tmp_path):
    path = tmp_path / "hosts"
    path.write_bytes(b"a\r\nb root\r\n")
    assert read_hosts_file(path) == [H("a"), HostSpec("b", "b", None, "root")]


def test_hosts_file_hash_inside_word_is_not_comment(tmp_path):
    path = write(tmp_path, "hosts", "a#b\n")
    assert read_hosts_file(path) == [H("a#b")]


def test_hosts_file_ranges(tmp_path):
    path = write(tmp_path, "hosts", "web[01-03] deploy\nu@db[1,3]:5432\n")
    assert read_hosts_file(path) == [
        HostSpec("web01", "web01", None, "deploy"),
        HostSpec("web02", "web02", None, "deploy"),
        HostSpec("web03", "web03", None, "deploy"),
        HostSpec("u@db1:5432", "db1", 5432, "u"),
        HostSpec("u@db3:5432", "db3", 5432, "u"),
    ]


def test_hosts_file_empty(tmp_path):
    assert read_hosts_file(write(tmp_path, "hosts", "# nothing\n\n")) == []


def test_hosts_file_missing_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_hosts_file(tmp_path / "nope")


@pytest.mark.parametrize(
    ("text", "lineno", "line", "reason"),
    [
        ("ok\nhost user extra\n", 2, "host user extra", "too many fields"),
        ("ok\n\n# c\nroot@host admin\n", 4, "root@host admin", "user given twice"),
        ("-oProxyCommand=x\n", 1, "-oProxyCommand=x", "must not start with '-'"),
        ("a\nb -l\n", 2, "b -l", "user must not start with '-'"),
        ("a\nb:0\n", 2, "b:0", "outside 1..65535"),
        ("a\nb:x\n", 2, "b:x", "not an integer"),
        ("a/b\n", 1, "a/b", "'/'"),
        ("a\x00b\n", 1, "a\x00b", "control"),
        ("a\x0bb\n", 1, "a\x0bb", "control"),
        ("a\rb\n", 1, "a\rb", "control"),
        ("web[1\n", 1, "web[1", "unbalanced"),
        ("n[3-1]\n", 1, "n[3-1]", "reversed"),
    ],
)
def test_hosts_file_bad_lines(tmp_path, text, lineno, line, reason):
    path = write(tmp_path, "hosts", text, newline="")
    with pytest.raises(ValueError) as info:
        read_hosts_file(path)
    message = str(info.value)
    assert path in message
    assert f"line {lineno}" in message
    assert repr(line) in message
    assert reason in message


def test_hosts_file_duplicates(tmp_path):
    path = write(tmp_path, "hosts", "a\nb\na\n")
    with pytest.raises(ValueError, match=r"duplicate host key 'a' .*line 1.*line 3"):
        read_hosts_file(path)


def test_hosts_file_invalid_utf8(tmp_path):
    path = tmp_path / "hosts"
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        read_hosts_file(path)


def test_hosts_file_bom_is_ignored(tmp_path):
    path = tmp_path / "hosts"
    path.write_bytes("\ufeffalpha\n".encode())
    assert read_hosts_file(path) == [H("alpha")]


# --- PARALLAX_HOSTS ---------------------------------------------------------


def test_env_one_file(tmp_path):
    path = write(tmp_path, "h1", "a\nroot@b:22\n")
    assert parse_hosts(None, environ={"PARALLAX_HOSTS": path}) == [H("a"), HostSpec("root@b:22", "b", 22, "root")]


@pytest.mark.parametrize("sep", [os.pathsep, " ", "\n", " \t", os.pathsep + " "])
def test_env_two_files(tmp_path, sep):
    p1 = write(tmp_path, "h1", "a\nb\n")
    p2 = write(tmp_path, "h2", "c user\n")
    result = parse_hosts(None, environ={"PARALLAX_HOSTS": f" {p1}{sep}{p2} "})
    assert result == [H("a"), H("b"), HostSpec("c", "c", None, "user")]


def test_env_duplicates_across_files(tmp_path):
    p1 = write(tmp_path, "h1", "a\n")
    p2 = write(tmp_path, "h2", "a\n")
    with pytest.raises(ValueError, match=r"duplicate host key 'a'.*h1.*h2"):
        parse_hosts(None, environ={"PARALLAX_HOSTS": f"{p1}{os.pathsep}{p2}"})


@pytest.mark.parametrize("environ", [{}, {"PARALLAX_HOSTS": ""}, {"PARALLAX_HOSTS": f"  {os.pathsep} "}])
def test_env_unset_or_empty(environ):
    with pytest.raises(ValueError, match="^no hosts given and PARALLAX_HOSTS is not set$"):
        parse_hosts(None, environ=environ)


def test_env_missing_file(tmp_path):
    good = write(tmp_path, "h1", "a\n")
    missing = str(tmp_path / "missing")
    with pytest.raises(ValueError) as info:
        parse_hosts(None, environ={"PARALLAX_HOSTS": f"{good}{os.pathsep}{missing}"})
    assert "PARALLAX_HOSTS" in str(info.value)
    assert missing in str(info.value)


def test_env_directory_is_unreadable(tmp_path):
    with pytest.raises(ValueError, match="PARALLAX_HOSTS"):
        parse_hosts(None, environ={"PARALLAX_HOSTS": str(tmp_path)})


def test_env_bad_line_names_file_and_line(tmp_path):
    path = write(tmp_path, "h1", "a\nb c d\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 2")):
        parse_hosts(None, environ={"PARALLAX_HOSTS": path})


def test_env_defaults_to_os_environ(tmp_path, monkeypatch):
    path = write(tmp_path, "h1", "from-env\n")
    monkeypatch.setenv("PARALLAX_HOSTS", path)
    assert parse_hosts(None) == [H("from-env")]
    monkeypatch.delenv("PARALLAX_HOSTS")
    with pytest.raises(ValueError, match="PARALLAX_HOSTS is not set"):
        parse_hosts(None)


def test_environ_ignored_when_hosts_given(tmp_path):
    assert parse_hosts(["x"], environ={"PARALLAX_HOSTS": str(tmp_path / "missing")}) == [H("x")]


# --- rejections -------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("-oProxyCommand=touch /tmp/pwned", "host must not start with '-'"),
        ("-oProxyCommand=x", "host must not start with '-'"),
        ("root@-oProxyCommand=x", "host must not start with '-'"),
        ("-l@host", "user must not start with '-'"),
        ("host\n-oFoo", "control characters"),
        ("host\x00", "control characters"),
        ("host\x7f", "control characters"),
        ("host\t", "control characters"),
        ("a b", "whitespace"),
        (" a", "whitespace"),
        ("a\u00a0b", "whitespace"),
        ("a/b", "'/'"),
        ("../etc", "'/'"),
        ("", "empty"),
        ("root@", "host must not be empty"),
        ("@host", "names no node"),  # a ClusterShell group now (was: an empty user)
        ("a b@host", "user must not contain whitespace"),
        ("a@b@host", "user must not contain '@'"),
        ("a:b@host", "user must not contain"),
        ("host:0", "outside 1..65535"),
        ("host:65536", "outside 1..65535"),
        ("host:abc", "not an integer"),
        ("host:", "not an integer"),
        ("host:-1", "not an integer"),
        ("host:+22", "not an integer"),
        ("host:2\u00b2", "not an integer"),
        ("[::1]:0", "outside 1..65535"),
        ("[::1]:x", "not an integer"),
        ("[::1", "unbalanced brackets"),
        ("::1]", "unbalanced brackets"),
        ("web[1", "unbalanced brackets"),
        ("web]1", "unbalanced brackets"),
        ("web[a-b]", "brackets"),
        ("[::1]x", "after ']'"),
        ("[]", "host must not be empty"),
        (":22", "host must not be empty"),
    ],
)
def test_string_rejections(entry, reason):
    with pytest.raises(ValueError) as info:
        parse_hosts([entry])
    message = str(info.value)
    assert message.startswith(f"invalid host entry {entry!r}: "), message
    assert reason in message


def test_injection_message_exact():
    with pytest.raises(ValueError) as info:
        parse_hosts("-oProxyCommand=touch /tmp/pwned")
    assert str(info.value) == "invalid host entry '-oProxyCommand=touch /tmp/pwned': host must not start with '-'"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (("-oProxyCommand=x", 22), "host must not start with '-'"),
        (("-oProxyCommand=x",), "host must not start with '-'"),
        (("", 22), "host must not be empty"),
        (("a b", 22), "whitespace"),
        (("a/b", 22), "'/'"),
        (("a\nb",), "control characters"),
        (("h", 0), "outside 1..65535"),
        (("h", 65536), "outside 1..65535"),
        (("h", -22), "outside 1..65535"),
        (("h", "abc"), "not an integer"),
        (("h", ""), "not an integer"),
        (("h", "22 "), "not an integer"),
        (("h", 22.0), "not an integer"),
        (("h", True), "not an integer"),
        (("h", 22, ""), "user must not be empty"),
        (("h", 22, "-oFoo"), "user must not start with '-'"),
        (("h", 22, "a b"), "whitespace"),
        (("h", 22, "a@b"), "'@'"),
        (("h", 22, "a:b"), "':'"),
        (("h", 22, "a\x01"), "control characters"),
        (("h", 22, 5), "user must be a string"),
        ((None, 22), "host must be a string"),
        ((5,), "host must be a string"),
        ((), "got 0 elements"),
        (("h", 22, "u", "x"), "got 4 elements"),
        (["h", 22, "u", None], "got 4 elements"),
        (["-x", None, "root"], "host must not start with '-'"),
    ],
)
def test_tuple_rejections(entry, reason):
    with pytest.raises(ValueError) as info:
        parse_hosts([entry])
    message = str(info.value)
    assert message.startswith(f"invalid host entry {entry!r}: "), message
    assert reason in message


@pytest.mark.parametrize("entry", [5, 2.5, None, b"host", {"h": 1}, object()])
def test_wrong_entry_type(entry):
    with pytest.raises(ValueError, match=re.escape(f"invalid host entry {entry!r}")):
        parse_hosts([entry])


@pytest.mark.parametrize("hosts", [5, b"host", bytearray(b"h"), 2.5])
def test_wrong_top_level_type(hosts):
    with pytest.raises(ValueError, match="invalid hosts argument"):
        parse_hosts(hosts)


def test_parse_host_requires_string():
    with pytest.raises(ValueError, match="expected a string"):
        parse_host(("h", 22))  # type: ignore[arg-type]


# --- duplicates -------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "key"),
    [
        (["a", ("a",)], "a"),  # a tuple that says nothing more than the string: the same key
        (["a", "b", "a"], "a"),
        ([("a", 22), ["a", 22]], "a:22"),  # tuples keep the bare key unless it collides; then a:22 twice
        (["n[1-3]", "n3"], "n3"),
        (["n[1-2]", "n[2-3]"], "n2"),
        (["::1", ("::1",)], "::1"),
    ],
)
def test_duplicate_keys(hosts, key):
    with pytest.raises(ValueError, match=re.escape(f"duplicate host key {key!r}")):
        parse_hosts(hosts)


def test_duplicate_detected_before_returning_anything():
    consumed = []

    def gen():
        for name in ["a", "b", "a", "c"]:
            consumed.append(name)
            yield name

    with pytest.raises(ValueError, match="duplicate host key 'a'"):
        parse_hosts(gen())
    assert consumed == ["a", "b", "a", "c"]  # every entry is read (to give tuples distinct keys) first


def test_same_host_different_keys_is_allowed():
    result = parse_hosts(["a", "a:2222", "root@a"])
    assert [(s.key, s.host, s.port, s.user) for s in result] == [
        ("a", "a", None, None),
        ("a:2222", "a", 2222, None),
        ("root@a", "a", None, "root"),
    ]


@pytest.mark.parametrize("entry", ["..", ".", "...", ("..", 22), "../x@host", ("host", None, "a/b")])
def test_entries_that_could_escape_outdir_or_localdir_are_refused(entry):
    # result keys name per-host files and slurp directories: they must stay one path component
    with pytest.raises(ValueError, match="invalid host entry"):
        parse_hosts([entry])


# --- OpenSSH's host-name characters, in every input form (issue 9, S1) --------------------------

EVIL = "x;touch${IFS}PWNED;"


@pytest.mark.parametrize("char", list("'`\"$\\;&<>|(){}"))
def test_every_character_openssh_refuses_is_refused_in_host_and_user(char):
    host = f"a{char}b"
    forms = [[(host, 22)], [("h", 22, host)], [f"{host}@h"]]
    if char != "&":  # in a string, '&' is node-set intersection: a&b names no node (a separate error)
        forms.append([host])
    for entry in forms:
        with pytest.raises(ValueError) as info:
            parse_hosts(entry)
        assert repr(char) in str(info.value)
        assert "OpenSSH" in str(info.value)


def test_shell_injection_entry_is_refused_in_every_form(tmp_path):
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text(f"fine\n{EVIL} admin\n")
    forms = [EVIL, [EVIL], [(EVIL,)], [("h", None, EVIL)], f"root@{EVIL}", f"web[1-2]{EVIL}", f"h1,{EVIL}",
             hosts_file, [hosts_file]]
    for form in forms:
        with pytest.raises(ValueError, match=re.escape(EVIL)):
            parse_hosts(form)
    with pytest.raises(ValueError, match=re.escape(EVIL)):
        parse_hosts(None, environ={"PARALLAX_HOSTS": str(hosts_file)})
    with pytest.raises(ValueError, match=re.escape(EVIL)):
        HostSpec(key="k", host=EVIL)


@pytest.mark.parametrize("host", ["a,b", "a!b", "a^b", "a*b", "a?b"])
def test_node_set_syntax_is_never_part_of_one_host_name(host):
    with pytest.raises(ValueError, match="node-set syntax"):
        parse_hosts([(host, 22)])
    with pytest.raises(ValueError):
        HostSpec(key="k", host=host)


# --- errors name the entry and the expanded host (issue 9, R10) ------------------------------


def test_error_for_a_host_of_a_node_set_names_entry_and_expanded_host():
    with pytest.raises(ValueError) as info:
        parse_hosts("h[1-2],-oProxyCommand=x")
    assert "'h[1-2],-oProxyCommand=x'" in str(info.value)
    with pytest.raises(ValueError) as info:
        parse_hosts("h1:22,h2")
    assert str(info.value).startswith("invalid host entry 'h1:22,h2' (expanded host 'h1:22'): ")


def test_nul_in_parallax_hosts_names_the_variable():
    with pytest.raises(ValueError) as info:
        parse_hosts(None, environ={"PARALLAX_HOSTS": "/tmp/a\x00b"})
    assert "PARALLAX_HOSTS" in str(info.value) and "NUL" in str(info.value)
    assert "embedded null byte" not in str(info.value)


@pytest.mark.parametrize("entry", ["h:" + "1" * 5000, "[::1]:" + "9" * 5000])
def test_huge_port_is_a_short_error_naming_the_entry(entry):
    with pytest.raises(ValueError) as info:
        parse_hosts(entry)
    message = str(info.value)
    assert message.startswith(("invalid host entry 'h:1111", "invalid host entry '[::1]:999"))
    assert "outside 1..65535" in message and "Exceeds the limit" not in message
    assert len(message) < 600


def test_huge_int_port_in_a_tuple():
    with pytest.raises(ValueError, match="outside 1..65535"):
        parse_hosts([("h", 10**5000)])


def test_port_with_leading_zeros_within_limit():
    assert parse_hosts("h:0000000022") == [HostSpec("h:0000000022", "h", 22)]


# --- hosts files as pathlib.Path (issue 11) --------------------------------------------------


def test_path_is_read_as_a_hosts_file(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("a\nroot@b:2222\nweb[1-2] deploy\n")
    expected = [H("a"), HostSpec("root@b:2222", "b", 2222, "root"),
                HostSpec("web1", "web1", None, "deploy"), HostSpec("web2", "web2", None, "deploy")]
    assert parse_hosts(path) == expected
    assert parse_hosts([path]) == expected
    assert [s.key for s in parse_hosts(["first", path, ("last", 22)])] == ["first", "a", "root@b:2222",
                                                                           "web1", "web2", "last"]


def test_path_duplicates_with_other_entries(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("a\n")
    with pytest.raises(ValueError, match=r"duplicate host key 'a' .*hosts, line 1"):
        parse_hosts(["a", path])


def test_unreadable_path_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "nope"))):
        parse_hosts(tmp_path / "nope")
    with pytest.raises(ValueError, match="cannot be read"):
        parse_hosts([tmp_path])


def test_string_with_slash_is_still_refused_and_hints_at_path(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("a\n")
    with pytest.raises(ValueError, match=r"'/'.*pathlib\.Path"):
        parse_hosts(str(path))


# --- more string forms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("[::1]", [HostSpec("[::1]", "::1")]),
        ("[fe80::1]:22", [HostSpec("[fe80::1]:22", "fe80::1", 22)]),
        ("user@[::1]:2222", [HostSpec("user@[::1]:2222", "::1", 2222, "user")]),
        ("::1", [HostSpec("::1", "::1")]),
        ("u@h[1-2]", [HostSpec("u@h1", "h1", None, "u"), HostSpec("u@h2", "h2", None, "u")]),
        ("h[1-2]:2200", [HostSpec("h1:2200", "h1", 2200), HostSpec("h2:2200", "h2", 2200)]),
        ("a.example.com,b.example.com", [H("a.example.com"), H("b.example.com")]),
    ],
)
def test_more_string_forms(entry, expected):
    assert parse_hosts(entry) == expected


def test_ipv6_in_a_node_set_is_refused_clearly():
    with pytest.raises(ValueError, match="IPv6 address cannot be part of a node set"):
        parse_hosts("::1,::2")


def test_unknown_group_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'@no-such-group-x' names no node"):
        parse_hosts("@no-such-group-x")
    with pytest.raises(ValueError, match=r"'@no-such-group-x' names no node"):
        parse_hosts("h[1-2],@no-such-group-x")
