"""parallax.check (the pre-flight: connect and authenticate, run nothing) through the scheduler, without SSH."""

from __future__ import annotations

import pickle

import parallax
from parallax.backends.mock import MockBackend, MockResponse


def test_check_results_and_errors_per_host():
    backend = MockBackend(responses={"b": MockResponse(fail="auth"), "c": MockResponse(fail="refused")})
    results = parallax.check(["a", "b", "c"], backend=backend)
    assert list(results) == ["a", "b", "c"]
    assert isinstance(results["a"], parallax.CheckResult)
    assert results["a"].auth == "publickey" and results["a"].ok and tuple(results["a"]) == (0, b"", b"")
    assert isinstance(results["b"], parallax.AuthenticationFailed)
    assert isinstance(results["c"], parallax.ConnectionFailed)
    assert [kind for _, kind, _ in backend.hosts.calls] == ["check"] * 3  # nothing else was asked of the backend


def test_check_respects_timeout_and_pickles():
    results = parallax.check(["slow", "fast"], backend=MockBackend(responses={"slow": MockResponse(delay=5)}),
                             timeout=0.2)
    assert isinstance(results["slow"], parallax.Timeout)
    back = pickle.loads(pickle.dumps(results["fast"]))
    assert back == results["fast"] and back.auth == "publickey" and back.host == "fast"


def test_session_check_on_a_subset():
    with parallax.Session(["a", "b"], backend=MockBackend()) as s:
        assert list(s.check(hosts=["b"])) == ["b"]
