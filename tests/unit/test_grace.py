"""The cancellation and close grace periods have one owner, parallax.backends.grace."""

from __future__ import annotations

import ast
import pathlib
import re

import parallax.backends
from parallax.backends import grace

OWNER = pathlib.Path(grace.__file__).resolve()
PACKAGE = pathlib.Path(parallax.backends.__file__).resolve().parent.parent
# A name that says it is a grace period, or a bound on cancellation cleanup.
GRACE_NAME = re.compile(r"GRACE|KILL_\w*TIMEOUT|CLEANUP_\w*")


def _assigned_names(path: pathlib.Path) -> list[tuple[str, int]]:
    """Names bound at module or class level in *path* (constants, class attributes)."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    bodies = [tree.body] + [node.body for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    for body in bodies:
        for stmt in body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] \
                if isinstance(stmt, ast.AnnAssign) else []
            found += [(t.id, stmt.lineno) for t in targets if isinstance(t, ast.Name)]
    return found


def test_no_module_but_the_owner_defines_a_grace_period():
    offenders = []
    for path in sorted(PACKAGE.joinpath("backends").glob("*.py")) + sorted(PACKAGE.joinpath("ssh").glob("*.py")):
        if path.resolve() == OWNER:
            continue
        offenders += [f"{path.relative_to(PACKAGE.parent)}:{line} {name}"
                      for name, line in _assigned_names(path) if GRACE_NAME.search(name)]
    assert not offenders, f"grace periods belong in parallax/backends/grace.py: {offenders}"


def test_the_owner_defines_what_it_exports_and_each_is_documented():
    names = {name for name, _ in _assigned_names(OWNER) if not name.startswith("__")}
    assert set(grace.__all__) == names
    source = OWNER.read_text()
    for name in grace.__all__:
        assert re.search(rf"#: [^\n]+\n(#: [^\n]*\n)*{name} = ", source), f"{name} has no #: comment saying why"
        assert isinstance(getattr(grace, name), (int, float)) and getattr(grace, name) > 0


def test_the_waits_inside_a_cancellation_fit_the_half_second_a_timeout_may_overshoot():
    # asyncssh/paramiko/persistent shells: CANCEL_GRACE; openssh: a one-call close's CLEANUP_WAIT,
    # after which the kill connection's ssh gets CANCEL_GRACE to exit on TERM.
    assert grace.CANCEL_GRACE < 0.5
    assert grace.CLEANUP_WAIT + grace.CANCEL_GRACE < 0.5
    assert isinstance(grace.CLEANUP_CONNECT_TIMEOUT, int)  # ssh's ConnectTimeout takes whole seconds
    assert grace.CLEANUP_CONNECT_TIMEOUT < grace.CLEANUP_TIMEOUT


def test_the_backends_use_the_owners_values():
    from parallax.backends import asyncssh, openssh, paramiko, persistent_shell, process

    for module in (asyncssh, paramiko, persistent_shell, process):
        assert module.CANCEL_GRACE is grace.CANCEL_GRACE, module.__name__
    assert openssh.CLEANUP_WAIT is grace.CLEANUP_WAIT and openssh.CLOSE_GRACE is grace.CLOSE_GRACE
