"""A third-party backend found through the ``parallax`` entry-point group.

``tests/plugin_example`` is a separate distribution with its own entry point;
``.ci/run`` installs it. Registration and discovery here are the real ones.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import pytest

import parallax
from parallax import plugins
from parallax.backends.base import BackendSetup


def _installed() -> bool:
    return any(ep.name == "example" for ep in importlib.metadata.entry_points(group="parallax"))


@pytest.fixture(scope="module", autouse=True)
def example_installed():
    if not _installed():
        reason = "parallax-example-backend is not installed (pip install --no-deps ./tests/plugin_example)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def test_backend_is_discovered_through_its_entry_point():
    dists = {dist.project_name for _, dist in plugins.plugin_manager().list_plugin_distinfo()}
    assert "parallax-example-backend" in dists
    assert "example" in plugins.backends()
    import parallax_example_plugin
    from parallax_example_backend import ExampleBackend

    assert plugins.backend_factory("example") is parallax_example_plugin.example
    assert type(parallax_example_plugin.example(BackendSetup())) is ExampleBackend


def test_discovery_imports_neither_the_backend_module_nor_asyncssh():
    # pluggy imports every entry-point module whenever any backend is looked up: the hook
    # module must stay light, the backend (and asyncssh) being imported on first use only.
    code = ("import sys, parallax\n"
            "from parallax import plugins\n"
            "plugins.backend_factory('openssh'); assert 'example' in plugins.backends()\n"
            "print(sorted(m for m in ('asyncssh', 'parallax_example_backend', 'parallax_example_plugin')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['parallax_example_plugin']", out.stdout + out.stderr


def test_plugin_backend_runs_jobs_by_name(ssh_lab):
    from parallax_example_backend import ExampleBackend

    before = ExampleBackend.jobs_run
    res = parallax.run(ssh_lab.hosts[:2], "echo via-plugin", backend="example", ssh_key=ssh_lab.client_key,
                       known_hosts=ssh_lab.known_hosts, default_user=ssh_lab.user)
    assert [r.stdout for r in res.values()] == [b"via-plugin\n"] * 2
    assert ExampleBackend.jobs_run == before + 2


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown backend 'nosuch'.*example.*openssh"):
        parallax.run(["h"], "true", backend="nosuch")


def test_runtime_registration_of_an_event_plugin(ssh_lab):
    seen = []

    class Watcher:
        @parallax.hookimpl
        def parallax_job_finished(self, job, result):
            seen.append((job.key, type(result).__name__))

    w = Watcher()
    plugins.register(w)
    try:
        parallax.run(ssh_lab.hosts[:1], "true", ssh_key=ssh_lab.client_key, known_hosts=ssh_lab.known_hosts,
                     default_user=ssh_lab.user)
    finally:
        plugins.unregister(w)
    assert seen == [(ssh_lab.hosts[0], "CallResult")]
