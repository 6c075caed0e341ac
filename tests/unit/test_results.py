"""Tests for the result tuples and the error hierarchy (1.0 shapes plus names)."""

from __future__ import annotations

import copy
import pickle
import re

import pytest

import parallax
from parallax.errors import (
    AuthenticationFailed,
    BadInput,
    Cancelled,
    CommandFailed,
    ConnectionFailed,
    Error,
    HostKeyChanged,
    HostKeyError,
    HostKeyUnknown,
    NameResolutionFailed,
    Timeout,
    TransferFailed,
    TransportError,
    UnsupportedOption,
)
from parallax.results import CallResult, CopyResult, SlurpResult


def test_call_result_unpacks_like_v1():
    r = CallResult(0, b"out", b"err", host="web1", duration=0.5)
    rc, out, err = r
    assert (rc, out, err) == (0, b"out", b"err")
    assert r == (0, b"out", b"err")
    assert len(r) == 3
    assert (r.rc, r.stdout, r.stderr, r.host, r.duration, r.truncated) == (0, b"out", b"err", "web1", 0.5, 0)
    assert r.ok
    assert not CallResult(2, b"", b"", host="h").ok


def test_copy_result_unpacks_like_v1():
    r = CopyResult(0, b"", b"", host="h", src="/a", dst="/b")
    rc, out, err = r
    assert (rc, out, err) == (0, b"", b"")
    assert (r.host, r.src, r.dst) == ("h", "/a", "/b")


def test_slurp_result_unpacks_like_v1():
    r = SlurpResult(0, b"", b"", "/local/h/f", host="h", src="/f")
    rc, out, err, path = r
    assert (rc, out, err, path) == (0, b"", b"", "/local/h/f")
    assert r.path == "/local/h/f"
    assert (r.host, r.src) == ("h", "/f")
    with pytest.raises(ValueError):
        rc, out, err = r  # four fields, as in 1.0


def test_results_are_immutable_tuples():
    r = CallResult(0, b"", b"", host="h")
    assert isinstance(r, tuple)
    with pytest.raises(TypeError):
        r[0] = 1  # type: ignore[index]


@pytest.mark.parametrize("result", [
    CallResult(1, b"o", b"e", host="h", duration=2.0, truncated=5),
    CopyResult(0, b"", b"", host="h", src="/a", dst="/b"),
    SlurpResult(0, b"", b"", "/p", host="h", src="/f"),
])
def test_results_pickle_and_copy_keep_fields(result):
    for clone in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result)):
        assert type(clone) is type(result)
        assert tuple(clone) == tuple(result)
        assert clone.__dict__ == result.__dict__


def test_result_repr_names_host_and_fields():
    text = repr(SlurpResult(0, b"", b"x", "/p", host="web1", src="/f"))
    assert text.startswith("SlurpResult(host='web1'")
    assert "path='/p'" in text and "stderr=b'x'" in text


# --- errors -----------------------------------------------------------------------


def test_error_keeps_v1_attributes():
    job = object()
    e = Error("boom", job, host="h")
    assert isinstance(e, Exception)
    assert e.msg == "boom"
    assert e.task is job
    assert e.host == "h"
    assert str(e) == "Exited with error code 255, Error output: boom"  # a host's result reads like 1.0's
    assert str(Error("boom")) == "boom"  # raised before anything ran: just the message


def test_host_result_text_has_the_1_0_shape_crmsh_parses():
    job = object()
    failed = CommandFailed("Exited with error code 3", job, host="h", stderr=b"no such file\n", rc=3)
    assert str(failed) == "Exited with error code 3, Error output: no such file"
    quiet = CommandFailed("Exited with error code 4", job, host="h", rc=4)
    assert str(quiet) == "Exited with error code 4, Error output: "
    lost = ConnectionFailed("Connection to h failed: Connection refused", job, host="h", stderr=b"partial\n")
    assert str(lost) == "Exited with error code 255, Error output: Connection to h failed: Connection refused\npartial"
    m = re.search("Exited with error code ([0-9]+), Error output: (.*)", str(lost))  # crmsh's run_cmd_on_remote
    assert m is not None and m.groups() == ("255", "Connection to h failed: Connection refused")


def test_error_str_includes_stderr():
    e = CommandFailed("Exited with error code 3", host="h", stderr=b"no such file\n", rc=3)
    assert str(e) == "Exited with error code 3, Error output: no such file"
    assert e.rc == 3
    assert str(Error("x", stderr="text stderr")) == "x, Error output: text stderr"


def test_error_str_survives_undecodable_stderr():
    assert "\ufffd" in str(Error("x", stderr=b"\xff\xfe"))


@pytest.mark.parametrize(("cls", "bases"), [
    (TransportError, (Error,)),
    (ConnectionFailed, (TransportError, Error)),
    (NameResolutionFailed, (ConnectionFailed, TransportError)),
    (AuthenticationFailed, (TransportError,)),
    (HostKeyUnknown, (HostKeyError, TransportError)),
    (HostKeyChanged, (HostKeyError, TransportError)),
    (Timeout, (Error,)),
    (Cancelled, (Error,)),
    (CommandFailed, (Error,)),
    (TransferFailed, (Error,)),
    (BadInput, (Error, ValueError)),
    (UnsupportedOption, (BadInput, ValueError)),
])
def test_error_hierarchy(cls, bases):
    assert issubclass(cls, bases)
    assert getattr(parallax, cls.__name__) is cls


def test_command_failure_is_not_a_transport_error():
    assert not issubclass(CommandFailed, TransportError)
    assert not issubclass(Timeout, TransportError)


def test_error_pickles_with_attributes():
    e = CommandFailed("Exited with error code 1", None, host="h", stderr=b"x", rc=1)
    clone = pickle.loads(pickle.dumps(e))
    assert type(clone) is CommandFailed
    assert (clone.msg, clone.host, clone.stderr, clone.rc) == (e.msg, "h", b"x", 1)
    assert str(clone) == str(e)


def test_error_for_job_is_a_copy_the_raised_error_stays_as_raised():
    shared = ConnectionFailed("Connection to h failed: refused", host="h")

    class Job:
        def __init__(self, key):
            self.key = key

    first, second = shared.for_job(Job("x")), shared.for_job(Job("y"))
    assert (first.host, second.host, shared.host) == ("x", "y", "h")
    assert type(first) is ConnectionFailed and first.msg == shared.msg
    assert shared.task is None and first is not shared
