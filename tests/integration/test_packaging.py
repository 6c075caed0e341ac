"""The wheel and sdist carry what users and packagers need (issue #11, "Docs and packaging")."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("dist"))
    proc = subprocess.run([sys.executable, "-m", "build", "-o", out, ROOT], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "SetuptoolsDeprecationWarning" not in proc.stdout + proc.stderr
    return out


def test_wheel_has_license_typing_marker_and_entry_points(dist: str) -> None:
    wheel = zipfile.ZipFile(glob.glob(os.path.join(dist, "*.whl"))[0])
    names = wheel.namelist()
    assert "parallax/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: BSD-3-Clause" in meta
    assert "Classifier: Programming Language :: Python :: 3.11" in meta
    assert "Project-URL: " in meta
    entry_points = wheel.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "parallax = parallax.cli:main" in entry_points  # the console script
    assert "[pytest11]" in entry_points and "parallax.testing.pytest_plugin" in entry_points


def test_sdist_carries_docs_tests_and_changelog(dist: str) -> None:
    names = tarfile.open(glob.glob(os.path.join(dist, "*.tar.gz"))[0]).getnames()
    top = names[0].split("/")[0]
    for rel in ("LICENSE", "CHANGELOG.md", "mkdocs.yml", "docs/usage.md", "docs/migration.md",
                "tests/conftest.py", "tests/compat/test_crmsh_wrapper.py"):
        assert f"{top}/{rel}" in names, rel
