"""Property tests for the input parsers (issue 9, fault lab): hosts, node sets, hosts files, env, options.

Whatever the input, a parser gives a valid result or a clean ``ValueError`` /
``TypeError`` whose message names the input — never another exception, never
a hang.  Examples are few and the deadline short, so the file runs in seconds.
"""

from __future__ import annotations

import os
import string

import pytest
from ClusterShell.NodeSet import set_std_group_resolver, set_std_group_resolver_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parallax import nodeset
from parallax.hosts import (
    SHELL_CHARS,
    HostSpec,
    name_problem,
    parse_hosts,
    read_hosts_file,
    safe_repr,
)
from parallax.options import Options, parse_ssh_option, resolve

FAST = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Characters that matter to the host and node-set parsers, so that generated text hits their branches.
SYNTAX = "ab01:9-_.%[],!&^@*/ \t\n\x00;$`'\"|<>(){}\\#=~?\u00a0é"
syntax_text = st.text(alphabet=SYNTAX, max_size=24)
any_text = st.one_of(syntax_text, st.text(max_size=40))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text, st.binary(max_size=8))


@pytest.fixture(autouse=True, scope="module")
def no_group_sources(tmp_path_factory):
    """A ClusterShell config with no group source: ``@x`` is an error, and no upcall shell runs."""
    conf = tmp_path_factory.mktemp("cs") / "groups.conf"
    conf.write_text("[Main]\ndefault: none\n")
    set_std_group_resolver_config(str(conf))
    yield
    set_std_group_resolver(None)


def names_input(error: BaseException, value: object) -> bool:
    """Whether *error*'s message names *value* (as the parsers print it, shortened if long)."""
    shown = safe_repr(value)
    return shown in str(error) or shown[:100] in str(error)


def assert_valid(spec: HostSpec) -> None:
    """A spec the parser returns is safe to hand to ssh."""
    assert spec.host and not spec.host.startswith("-")
    assert name_problem(spec.host) is None
    assert not any(c in spec.host for c in SHELL_CHARS + "/,!^@[]*")
    assert spec.port is None or 1 <= spec.port <= 65535
    assert spec.user is None or name_problem(spec.user, "user") is None


@FAST
@given(entry=any_text)
def test_string_entry(entry):
    try:
        specs = parse_hosts([entry])
    except (ValueError, TypeError) as e:
        assert names_input(e, entry), (entry, str(e))
    else:
        assert specs
        for spec in specs:
            assert_valid(spec)


@FAST
@given(entry=st.tuples(scalars) | st.tuples(scalars, scalars) | st.tuples(scalars, scalars, scalars)
       | st.lists(scalars, max_size=5))
def test_tuple_entry(entry):
    try:
        specs = parse_hosts([entry])
    except (ValueError, TypeError) as e:
        assert names_input(e, entry), (entry, str(e))
    else:
        (spec,) = specs
        assert_valid(spec)


@FAST
@given(hosts=scalars | st.lists(scalars, max_size=4) | st.dictionaries(any_text, scalars, max_size=2))
def test_hosts_argument_of_any_type(hosts):
    try:
        for spec in parse_hosts(hosts, environ={}):
            assert_valid(spec)
    except (ValueError, TypeError) as e:
        assert str(e)


@FAST
@given(pattern=any_text)
def test_nodeset_expand(pattern):
    try:
        names = nodeset.expand(pattern)
    except ValueError as e:
        assert names_input(e, pattern), (pattern, str(e))
    else:
        assert (names or not pattern.strip()) and len(names) <= nodeset.MAX_NODES
        assert nodeset.count(pattern) == len(names)
        assert nodeset.expand(pattern, allow_empty=True) == names


@FAST
@given(low=st.integers(0, 10**30), high=st.integers(0, 10**30), step=st.integers(0, 10**6),
       width=st.integers(0, 25))
def test_nodeset_ranges_never_hang(low, high, step, width):
    pattern = f"h[{str(low).zfill(width)}-{str(high).zfill(width)}/{step}]"
    try:
        names = nodeset.expand(pattern)
    except ValueError as e:
        assert names_input(e, pattern)
    else:
        assert len(names) <= nodeset.MAX_NODES


@FAST
@given(data=st.binary(max_size=200) | st.text(alphabet=SYNTAX + "\r", max_size=200).map(str.encode))
def test_hosts_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("hf") / "hosts"
    path.write_bytes(data)
    try:
        specs = read_hosts_file(path)
    except ValueError as e:
        assert str(path) in str(e)
    else:
        for spec in specs:
            assert_valid(spec)


@FAST
@given(value=any_text)
def test_parallax_hosts_variable(value):
    try:
        specs = parse_hosts(None, environ={"PARALLAX_HOSTS": value})
    except ValueError as e:
        assert "PARALLAX_HOSTS" in str(e) or "hosts file" in str(e) or os.sep in str(e), str(e)
    else:
        for spec in specs:
            assert_valid(spec)


OPTION_VALUES = {
    "env": scalars | st.dictionaries(any_text, scalars, max_size=3) | st.lists(any_text, max_size=2),
    "ssh_options": scalars | st.lists(scalars, max_size=3),
    "ssh_extra": scalars | st.lists(scalars, max_size=3),
    "port": scalars,
    "default_user": scalars,
    "limit": scalars,
    "timeout": scalars,
    "deadline": scalars,
    "connect_timeout": scalars,
    "retries": scalars,
    "max_output": scalars,
    "host_key_policy": scalars,
    "outdir": scalars,
    "ssh_key": scalars,
}


@FAST
@given(data=st.data(), name=st.sampled_from(sorted(OPTION_VALUES)))
def test_option_values(data, name):
    value = data.draw(OPTION_VALUES[name])
    try:
        resolve(Options(**{name: value}), {})
    except (ValueError, TypeError) as e:
        assert name in str(e), (name, value, str(e))


ENV_VARS = ["PARALLAX_USER", "PARALLAX_PAR", "PARALLAX_OUTDIR", "PARALLAX_VERBOSE", "PARALLAX_OPTIONS",
            "PARALLAX_BACKEND"]


@FAST
@given(var=st.sampled_from(ENV_VARS), value=st.text(alphabet=SYNTAX + string.ascii_letters, max_size=24))
def test_environment_values(var, value):
    try:
        resolve(Options(), {var: value})
    except ValueError as e:
        assert var in str(e), (var, value, str(e))


@FAST
@given(text=scalars)
def test_parse_ssh_option(text):
    try:
        key, value = parse_ssh_option(text)
    except ValueError as e:
        assert "ssh_options" in str(e)
    else:
        assert key and value and not any(ord(c) < 32 for c in key + value)


def _name_problem_by_each_character(text: str, allow: str = "") -> bool:
    """The rule as ``name_problem``'s docstring states it, one character at a time."""
    return (text.startswith("-") or any(ord(c) < 32 or 127 <= ord(c) < 160 or c.isspace() for c in text)
            or any(c in SHELL_CHARS and c not in allow for c in text))


@FAST
@given(text=any_text, allow=st.sampled_from(["", "&"]))
def test_name_problem_refuses_exactly_what_its_rule_says(text, allow):
    """Its quick path for plain names must agree with the character-by-character rule."""
    assert (name_problem(text, allow=allow) is not None) == _name_problem_by_each_character(text, allow)
