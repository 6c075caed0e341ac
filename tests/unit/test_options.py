"""Tests for parallax.options: 1.0 attributes and defaults, and PARALLAX_* resolution."""

from __future__ import annotations

import pytest

import parallax
from parallax.options import (
    DEFAULT_PARALLELISM,
    DEFAULT_TIMEOUT,
    Options,
    parse_ssh_option,
    resolve,
)

V1_DEFAULTS = {
    "limit": 32,
    "timeout": 60,
    "askpass": False,
    "outdir": None,
    "errdir": None,
    "ssh_key": None,
    "ssh_options": [],
    "ssh_extra": [],
    "verbose": False,
    "quiet": False,
    "print_out": False,
    "inline": True,
    "inline_stdout": False,
    "input_stream": None,
    "default_user": None,
    "recursive": True,  # 1.0 copies directories whole by default
    "localdir": None,
    "warn_message": True,
}

EMPTY_ENV: dict[str, str] = {}


@pytest.mark.parametrize(("name", "default"), sorted(V1_DEFAULTS.items()))
def test_v1_attribute_default(name, default):
    opts = Options()
    assert getattr(opts, name) == default
    assert type(getattr(opts, name)) is type(default)


def test_exported_defaults_match_design():
    assert DEFAULT_PARALLELISM == parallax.DEFAULT_PARALLELISM == 32
    assert DEFAULT_TIMEOUT == parallax.DEFAULT_TIMEOUT == 60
    assert parallax.Options is Options


def test_fresh_settings_defaults():
    s = resolve(Options(), EMPTY_ENV)
    assert s.limit == 32
    assert s.timeout == 60.0
    assert s.backend == "openssh"
    assert s.ssh_options == ()
    assert s.ssh_extra == ()
    assert s.default_user is None
    assert s.outdir is None
    assert s.verbose is False
    assert s.inline is True
    assert s.retries == 0
    assert s.deadline is None


def test_set_attributes_after_construction_v1_style(tmp_path):
    opts = Options()
    opts.limit = 5
    opts.timeout = 7
    opts.askpass = True
    opts.outdir = str(tmp_path / "out")
    opts.errdir = str(tmp_path / "err")
    opts.ssh_key = "/keys/id"
    opts.ssh_options = ["StrictHostKeyChecking=no", "Port 2222"]
    opts.ssh_extra = ["-4"]
    opts.verbose = True
    opts.quiet = True
    opts.print_out = True
    opts.inline = False
    opts.inline_stdout = True
    opts.input_stream = b"data"
    opts.default_user = "admin"
    opts.recursive = True
    opts.localdir = str(tmp_path)
    opts.warn_message = False
    s = resolve(opts, EMPTY_ENV)
    assert s.limit == 5
    assert s.timeout == 7.0
    assert s.askpass is True
    assert s.outdir == str(tmp_path / "out")
    assert s.errdir == str(tmp_path / "err")
    assert s.ssh_key == "/keys/id"
    assert s.ssh_options == (("StrictHostKeyChecking", "no"), ("Port", "2222"))
    assert s.ssh_extra == ("-4",)
    assert s.verbose is True
    assert s.quiet is True
    assert s.print_out is True
    assert s.inline is False
    assert s.inline_stdout is True
    assert s.input_stream == b"data"
    assert s.default_user == "admin"
    assert s.recursive is True
    assert s.localdir == str(tmp_path)
    assert s.warn_message is False


def test_append_to_list_attribute_after_construction():
    opts = Options()
    opts.ssh_options.append("Compression=yes")
    opts.ssh_extra.append("-q")
    s = resolve(opts, EMPTY_ENV)
    assert s.ssh_options == (("Compression", "yes"),)
    assert s.ssh_extra == ("-q",)


def test_instance_lists_not_shared():
    a, b = Options(), Options()
    a.ssh_options.append("Compression=yes")
    a.ssh_extra.append("-q")
    assert b.ssh_options == []
    assert b.ssh_extra == []
    assert Options.ssh_options == []
    assert Options().ssh_options == []


def test_keyword_overrides():
    opts = Options(limit=3, timeout=0, default_user="bob", ssh_options=["Port=2200"], backend="mock")
    assert opts.limit == 3
    s = resolve(opts, EMPTY_ENV)
    assert (s.limit, s.timeout, s.default_user, s.backend) == (3, None, "bob", "mock")
    assert s.ssh_options == (("Port", "2200"),)
    # keyword arguments to resolve() beat the Options object, which is left unchanged
    s2 = resolve(opts, EMPTY_ENV, limit=9)
    assert s2.limit == 9
    assert opts.limit == 3


def test_unknown_keyword_is_type_error():
    with pytest.raises(TypeError, match="bogus"):
        Options(bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        resolve(Options(), EMPTY_ENV, bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        Options().updated(bogus=1)


def test_timeout_zero_or_none_means_no_limit():
    assert resolve(Options(timeout=0), EMPTY_ENV).timeout is None
    assert resolve(Options(timeout=None), EMPTY_ENV).timeout is None


def test_duck_typed_option_holder():
    class Legacy:
        limit = 4
        default_user = "legacy"

    s = resolve(Legacy(), EMPTY_ENV)  # type: ignore[arg-type]
    assert (s.limit, s.default_user) == (4, "legacy")


# --- PARALLAX_* environment ----------------------------------------------------


def test_parallax_user_precedence():
    env = {"PARALLAX_USER": "envuser"}
    assert resolve(Options(), EMPTY_ENV).default_user is None
    assert resolve(Options(), env).default_user == "envuser"
    assert resolve(Options(default_user="explicit"), env).default_user == "explicit"
    opts = Options()
    opts.default_user = "attr"
    assert resolve(opts, env).default_user == "attr"


def test_parallax_par_precedence():
    env = {"PARALLAX_PAR": "7"}
    assert resolve(Options(), env).limit == 7
    assert resolve(Options(limit=3), env).limit == 3
    assert resolve(Options(), EMPTY_ENV).limit == 32


def test_parallax_par_explicit_equal_to_default_still_wins():
    # limit=32 is the default value, but it was set explicitly, so it beats the env
    assert resolve(Options(limit=32), {"PARALLAX_PAR": "7"}).limit == 32


def test_parallax_outdir_precedence(tmp_path):
    env = {"PARALLAX_OUTDIR": str(tmp_path / "env")}
    assert resolve(Options(), env).outdir == str(tmp_path / "env")
    assert resolve(Options(outdir=str(tmp_path / "mine")), env).outdir == str(tmp_path / "mine")
    assert resolve(Options(), EMPTY_ENV).outdir is None


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("TRUE", True), ("on", True),
                                            ("0", False), ("no", False), ("off", False), ("", False)])
def test_parallax_verbose_values(raw, value):
    assert resolve(Options(), {"PARALLAX_VERBOSE": raw}).verbose is value


def test_parallax_verbose_precedence():
    assert resolve(Options(verbose=False), {"PARALLAX_VERBOSE": "1"}).verbose is False
    assert resolve(Options(verbose=True), {"PARALLAX_VERBOSE": "0"}).verbose is True


def test_parallax_options_appended_after_callers():
    env = {"PARALLAX_OPTIONS": "Port=2200  Compression=yes"}
    s = resolve(Options(ssh_options=["Port=2222"]), env)
    assert s.ssh_options == (("Port", "2222"), ("Port", "2200"), ("Compression", "yes"))
    assert resolve(Options(), env).ssh_options == (("Port", "2200"), ("Compression", "yes"))


def test_parallax_backend_precedence():
    env = {"PARALLAX_BACKEND": "paramiko"}
    assert resolve(Options(), env).backend == "paramiko"
    assert resolve(Options(backend="asyncssh"), env).backend == "asyncssh"
    assert resolve(Options(), EMPTY_ENV).backend == "openssh"
    assert resolve(Options(), {"PARALLAX_BACKEND": "  "}).backend == "openssh"


def test_process_environment_is_used_by_default(monkeypatch):
    monkeypatch.setenv("PARALLAX_USER", "fromenv")
    monkeypatch.setenv("PARALLAX_PAR", "3")
    s = resolve(Options())
    assert (s.default_user, s.limit) == ("fromenv", 3)


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("PARALLAX_PAR", "abc"),
        ("PARALLAX_PAR", "0"),
        ("PARALLAX_PAR", "-2"),
        ("PARALLAX_VERBOSE", "maybe"),
        ("PARALLAX_OPTIONS", "novalue"),
        ("PARALLAX_OPTIONS", "Port=22 -oProxyCommand"),
        ("PARALLAX_USER", "-oProxyCommand=x"),
        ("PARALLAX_USER", "two words"),
    ],
)
def test_malformed_environment_names_the_variable(var, raw):
    with pytest.raises(ValueError, match=var):
        resolve(Options(), {var: raw})


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": "8"}, "limit"),
        ({"limit": True}, "limit"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "60"}, "timeout"),
        ({"deadline": -5}, "deadline"),
        ({"connect_timeout": "x"}, "connect_timeout"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"port": 70000}, "port"),
        ({"port": "ssh"}, "port"),
        ({"host_key_policy": "yolo"}, "host_key_policy"),
        ({"default_user": "-oFoo"}, "default_user"),
        ({"default_user": "a b"}, "default_user"),
        ({"ssh_options": ["novalue"]}, "ssh_options"),
        ({"ssh_options": ["-oProxyCommand=x"]}, "ssh_options"),
        ({"ssh_extra": "-q"}, "ssh_extra"),
        ({"ssh_extra": ["-q\n"]}, "ssh_extra"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"env": {"OK": 1}}, "env"),
        ({"max_output": -1}, "max_output"),
        ({"ssh_key": 5}, "ssh_key"),
        ({"outdir": "a\x00b"}, "outdir"),
    ],
)
def test_bad_option_value_names_the_option(kwargs, name):
    with pytest.raises(ValueError, match=name):
        resolve(Options(**kwargs), EMPTY_ENV)


def test_parse_ssh_option_forms():
    assert parse_ssh_option("Port=22") == ("Port", "22")
    assert parse_ssh_option("Port 22") == ("Port", "22")
    assert parse_ssh_option(" ProxyJump = bastion ") == ("ProxyJump", "bastion")
    with pytest.raises(ValueError, match="control"):
        parse_ssh_option("Port=22\nProxyCommand=x")
    with pytest.raises(ValueError, match="Key=Value"):
        parse_ssh_option("Port=")


def test_repr_hides_password():
    assert "hunter2" not in repr(Options(password="hunter2", limit=2))
    assert "limit=2" in repr(Options(password="hunter2", limit=2))


def test_persistent_shell_is_off_unless_asked_for():
    assert resolve(Options(), EMPTY_ENV).persistent_shell is False
    assert resolve(Options(persistent_shell=True), EMPTY_ENV).persistent_shell is True


# --- bad input escapes as a clean ValueError naming the culprit (issue 9, R10) -----------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"env": "A=1"}, "option env="),
        ({"env": ["A=1"]}, "option env="),
        ({"ssh_options": True}, "option ssh_options=True"),
        ({"ssh_options": 5}, "option ssh_options=5"),
        ({"ssh_options": [5]}, "ssh_options"),
        ({"ssh_extra": True}, "option ssh_extra=True"),
        ({"port": float("-inf")}, "option port=-inf"),
        ({"port": float("nan")}, "option port=nan"),
        ({"port": 22.5}, "option port=22.5"),
        ({"port": True}, "option port=True"),
        ({"port": "1" * 5000}, "option port='1111"),
        ({"port": 10**5000}, "option port="),
        ({"port": []}, "option port=[]"),
        ({"timeout": float("nan")}, "option timeout=nan"),
        ({"deadline": float("inf")}, "option deadline=inf"),
        ({"default_user": "x;touch${IFS}PWNED;"}, "option default_user="),
        ({"default_user": "a@b"}, "option default_user="),
        ({"default_user": 5}, "option default_user=5"),
    ],
)
def test_bad_values_are_value_errors_naming_the_option(kwargs, name):
    with pytest.raises(ValueError) as info:
        resolve(Options(**kwargs), EMPTY_ENV)
    assert name in str(info.value)
    assert "Exceeds the limit" not in str(info.value)
    assert len(str(info.value)) < 400  # a 5,000-digit value is shortened, not printed whole


@pytest.mark.parametrize("port", [22, "22", "022", " 2222 "])
def test_port_accepts_int_and_decimal_string(port):
    assert resolve(Options(port=port), EMPTY_ENV).default_port == int(port)


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("PARALLAX_OUTDIR", "out\x00dir"),
        ("PARALLAX_USER", "a@b"),
        ("PARALLAX_USER", "a:b"),
        ("PARALLAX_USER", "x;touch${IFS}PWNED;"),
        ("PARALLAX_USER", "a$(id)"),
    ],
)
def test_environment_errors_name_the_variable_not_the_option(var, raw):
    with pytest.raises(ValueError) as info:
        resolve(Options(), {var: raw})
    assert str(info.value).startswith(f"{var}=")
    assert "option " not in str(info.value)


def test_explicit_outdir_error_still_names_the_option():
    with pytest.raises(ValueError, match=r"^option outdir="):
        resolve(Options(outdir="a\x00b"), {"PARALLAX_OUTDIR": "fine"})


def test_env_mapping_still_accepted():
    assert resolve(Options(env={"A": "1"}), EMPTY_ENV).env == (("A", "1"),)
