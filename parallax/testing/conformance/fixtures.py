"""Fixtures and parametrisation for the backend conformance suite.

The suite (:mod:`parallax.testing.conformance.suite`) imports everything
public from here, so ``python -m pytest --pyargs parallax.testing.conformance.suite``
works without any conftest.  Which backends run, and against which SSH host:

``PARALLAX_CONFORMANCE_BACKENDS``  comma/space separated backend names (required)
``PARALLAX_CONFORMANCE_HOST``      ``sshd`` (default: a real private OpenSSH
                                   server, :class:`parallax.testing.SSHLab`) or
                                   ``embedded`` (the in-process asyncssh server)

Loaded as a plugin (``-p parallax.testing.conformance.fixtures``) this module
also adds the command-line options ``--parallax-backend NAME`` (repeatable)
and ``--parallax-host sshd|embedded``, which win over the environment.

Backends declare what they achieve beyond the required behaviour in the
``capabilities`` of their ``info`` (a :class:`~parallax.backends.base.BackendInfo`,
a set of the names in :data:`CAPABILITIES`); the
suite asserts a capability only for backends that claim it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import tempfile
import uuid
from typing import Any
from collections.abc import Iterator, Sequence

import pytest

from parallax.testing.conformance import ENV_BACKENDS, ENV_HOST
from parallax.testing.pytest_plugin import _check_available, _unavailable

HOST_KINDS = ("sshd", "embedded")
#: Number of lab hosts the suite needs (127.0.0.2 .. 127.0.0.5).
LAB_HOSTS = 4

#: Optional behaviours a backend may claim in ``info.capabilities``.
CAPABILITIES = {
    "remote-kill": "cancelling (or timing out) a running command also ends the remote command",
    "stream": "open_stream() keeps a remote command running with stdin open, so persistent_shell works",
    "check": "check() connects, verifies the host key and authenticates without opening a session",
}

__all__ = [
    "CAPABILITIES",
    "LabPool",
    "backend_capabilities",
    "conformance_host",
    "conformance_labs",
    "lab",
    "opts",
    "parametrize_backends",
    "pytest_generate_tests",
    "remote_dir",
    "selected_backends",
    "selected_host",
]

_DONE = "_parallax_conformance_parametrized"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Command-line selection of backends and host kind (only when loaded with ``-p``)."""
    group = parser.getgroup("parallax-conformance", "parallax backend conformance suite")
    group.addoption("--parallax-backend", action="append", default=[], dest="parallax_backends",
                    metavar="NAME", help=f"backend to run the suite for (repeatable; else ${ENV_BACKENDS})")
    group.addoption("--parallax-host", choices=HOST_KINDS, default=None, dest="parallax_host",
                    help=f"SSH server to run against (else ${ENV_HOST}, default sshd)")


def selected_backends(config: pytest.Config) -> list[str]:
    """Backend names from ``--parallax-backend`` or ``$PARALLAX_CONFORMANCE_BACKENDS``."""
    names = list(config.getoption("parallax_backends", default=None) or [])
    if not names:
        names = [n for n in re.split(r"[,\s]+", os.environ.get(ENV_BACKENDS, "")) if n]
    return list(dict.fromkeys(names))


def selected_host(config: pytest.Config) -> str:
    """Host kind from ``--parallax-host`` or ``$PARALLAX_CONFORMANCE_HOST`` (default ``sshd``)."""
    kind = config.getoption("parallax_host", default=None) or os.environ.get(ENV_HOST, "").strip() or "sshd"
    if kind not in HOST_KINDS:
        raise pytest.UsageError(f"{ENV_HOST}={kind!r}: expected one of {', '.join(HOST_KINDS)}")
    return kind


def parametrize_backends(metafunc: pytest.Metafunc, backends: Sequence[str | tuple[str, str]]) -> None:
    """Parametrise a suite test over *backends*: names, or ``(name, host kind)`` pairs; once per test."""
    if "backend_name" not in metafunc.fixturenames or getattr(metafunc, _DONE, False):
        return
    setattr(metafunc, _DONE, True)
    from parallax.plugins import backends as known_backends

    pairs = [(b, None) if isinstance(b, str) else (b[0], b[1]) for b in backends]
    known = known_backends()
    unknown = [b for b, _ in pairs if b not in known]
    if unknown:
        raise pytest.UsageError(
            f"conformance: unknown backend(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    bad_hosts = [h for _, h in pairs if h is not None and h not in HOST_KINDS]
    if bad_hosts:
        raise pytest.UsageError(f"conformance: unknown host kind(s) {bad_hosts}; expected {HOST_KINDS}")
    if all(h is None for _, h in pairs) or "conformance_host" not in metafunc.fixturenames:
        names = list(dict.fromkeys(b for b, _ in pairs))
        metafunc.parametrize("backend_name", names, ids=names)
        return
    default = selected_host(metafunc.config)
    combos = list(dict.fromkeys((b, h or default) for b, h in pairs))
    metafunc.parametrize(("backend_name", "conformance_host"), combos, ids=[f"{b}-{h}" for b, h in combos])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``backend_name`` from the command line or the environment."""
    if "backend_name" not in metafunc.fixturenames or getattr(metafunc, _DONE, False):
        return
    names = selected_backends(metafunc.config)
    if not names:
        raise pytest.UsageError(
            f"parallax conformance suite: no backend selected; set {ENV_BACKENDS}=name[,name...] "
            f"(or load -p parallax.testing.conformance.fixtures and pass --parallax-backend NAME)")
    parametrize_backends(metafunc, names)


class LabPool:
    """Starts each kind of test host once per session, on first use, and stops them all at the end."""

    def __init__(self) -> None:
        self._labs: dict[str, Any] = {}
        self._unavailable: dict[str, str] = {}

    def get(self, kind: str) -> Any:
        """The running lab of *kind* (``sshd`` or ``embedded``); skips/fails if sshd cannot run."""
        if kind not in HOST_KINDS:
            raise ValueError(f"conformance host {kind!r}: expected one of {', '.join(HOST_KINDS)}")
        if kind in self._unavailable:
            _unavailable(self._unavailable[kind])
        if kind not in self._labs:
            self._labs[kind] = self._sshd() if kind == "sshd" else self._embedded()
        return self._labs[kind]

    def _sshd(self) -> Any:
        from parallax.testing.sshd import SSHLab

        _check_available()
        lab = SSHLab(hosts=LAB_HOSTS)
        try:
            lab.start()
        except (RuntimeError, OSError) as exc:
            lab.stop()
            self._unavailable["sshd"] = f"sshd failed to start: {exc}"
            _unavailable(self._unavailable["sshd"])
        return lab

    def _embedded(self) -> Any:
        from parallax.testing.embedded import EmbeddedSSHHost  # written separately; optional

        host = EmbeddedSSHHost(hosts=LAB_HOSTS)
        start = getattr(host, "start", None)
        return (start() if start is not None else host.__enter__()) or host

    def close(self) -> None:
        """Stop every lab this pool started."""
        labs, self._labs = list(self._labs.values()), {}
        for lab in labs:
            stop = getattr(lab, "stop", None)
            if stop is not None:
                stop()
            else:
                lab.__exit__(None, None, None)


@pytest.fixture(scope="session")
def conformance_labs() -> Iterator[LabPool]:
    """The session's test hosts, started lazily per kind."""
    pool = LabPool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def conformance_host(request: pytest.FixtureRequest) -> str:
    """``sshd`` or ``embedded``: the kind of SSH server this test runs against."""
    return selected_host(request.config)


@pytest.fixture
def lab(conformance_labs: LabPool, conformance_host: str) -> Any:
    """A running lab with SSHLab's attributes (hosts, addresses, port, user, keys, ...)."""
    return conformance_labs.get(conformance_host)


@pytest.fixture
def opts(lab: Any, backend_name: str) -> dict[str, Any]:
    """Base keyword arguments reaching the lab with the backend under test, strict host keys."""
    return dict(
        ssh_key=lab.client_key,
        known_hosts=lab.known_hosts,
        default_user=lab.user,
        backend=backend_name,
        host_key_policy="strict",
        timeout=30,  # a hung backend fails the test instead of stalling the run
    )


@pytest.fixture
def backend_capabilities(backend_name: str) -> frozenset[str]:
    """The optional behaviours (:data:`CAPABILITIES`) the backend claims in its ``info``."""
    from parallax.backends.base import BackendSetup, build
    from parallax.plugins import backend_factory

    backend = build(backend_factory(backend_name), BackendSetup())
    try:
        caps = backend.info.capabilities
    finally:
        asyncio.run(backend.close())
    unknown = caps - CAPABILITIES.keys()
    assert not unknown, f"backend {backend_name!r} claims unknown capabilities {sorted(unknown)}"
    return caps


def _lab_owner(lab: Any) -> tuple[int, int] | None:
    """(uid, gid) to give files the lab's login user must read or write, if not ours."""
    try:
        pw = pwd.getpwnam(lab.user)
    except KeyError:
        return None
    if pw.pw_uid == os.geteuid() or os.geteuid() != 0:
        return None
    return pw.pw_uid, pw.pw_gid


def give_to_lab_user(lab: Any, path: str) -> None:
    """Make *path* (recursively) owned by the lab's login user so remote commands can use it."""
    owner = _lab_owner(lab)
    if owner is None:
        return
    os.chown(path, *owner)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), *owner, follow_symlinks=False)


@pytest.fixture
def remote_dir(lab: Any) -> Iterator[str]:
    """A fresh directory on the lab hosts (they share this machine's filesystem), writable remotely."""
    base = getattr(lab, "scratch_dir", "") or tempfile.gettempdir()
    path = os.path.join(base, f"conf-{uuid.uuid4().hex[:12]}")
    os.mkdir(path, 0o755)
    give_to_lab_user(lab, path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
