"""The calls crmsh 4.4 makes into Parallax 1.0, restated (not copied) for the compat tests.

Each function makes exactly the parallax calls, with the options, that the
named crmsh function makes (ClusterLabs/crmsh, branch ``crmsh-4.4``), and
post-processes the results the way crmsh does, so a test can check what a
crmsh user would see.
"""

from __future__ import annotations

import os
import re
from typing import Any

import parallax

#: crmsh/parallax.py ``Parallax.prepare``: the ssh options crmsh passes when the caller gives none.
CRMSH_SSH_OPTIONS = ["StrictHostKeyChecking=no", "ConnectTimeout=10", "LogLevel=error"]


def _opts(localdir: str | None = None) -> parallax.Options:
    """crmsh/parallax.py ``Parallax.prepare``."""
    opts = parallax.Options()
    opts.ssh_options = list(CRMSH_SSH_OPTIONS)
    opts.askpass = False
    if hasattr(opts, "warn_message"):
        opts.warn_message = False
    opts.localdir = localdir
    return opts


def _handle(results: dict[str, Any], strict: bool = True) -> list[tuple[str, Any]]:
    """crmsh/parallax.py ``Parallax.handle``: a failed host raises ``ValueError("Failed on HOST: ...")``."""
    items = list(results.items())
    for host, result in items:
        if isinstance(result, parallax.Error) and strict:
            raise ValueError(f"Failed on {host}: {result}")
    return items


def parallax_call(nodes: list[str], cmd: str, strict: bool = True) -> list[tuple[str, Any]]:
    """crmsh/parallax.py ``parallax_call``."""
    return _handle(parallax.call(nodes, cmd, _opts()), strict)


def parallax_copy(nodes: list[str], src: str, dst: str, strict: bool = True) -> list[tuple[str, Any]]:
    """crmsh/parallax.py ``parallax_copy`` (qdevice copies its certificate directory with it)."""
    return _handle(parallax.copy(nodes, src, dst, _opts()), strict)


def parallax_slurp(nodes: list[str], localdir: str, filename: str, strict: bool = True) -> list[tuple[str, Any]]:
    """crmsh/parallax.py ``parallax_slurp``: ``dst`` is the basename of the remote file."""
    return _handle(parallax.slurp(nodes, filename, os.path.basename(filename), _opts(localdir)), strict)


def run_cmd_on_remote(cmd: str, remote_addr: str) -> tuple[int, Any, Any]:
    """crmsh/utils.py ``run_cmd_on_remote``: rc and stderr parsed from the error text."""
    rc, out_data, err_data = 1, None, None
    try:
        result = parallax_call([remote_addr], cmd)
        rc, out_data, _ = result[0][1]
    except ValueError as err:
        match = re.search("Exited with error code ([0-9]+), Error output: (.*)", str(err))
        if match:
            rc, err_data = match.groups()
    return int(rc), out_data, err_data


def cluster_copy_file(local_path: str, nodes: list[str]) -> tuple[bool, list[str]]:
    """crmsh/utils.py ``cluster_copy_file``: ``(ok, the "Failed to push" messages crmsh logs)``."""
    opts = parallax.Options()
    opts.timeout = 60
    opts.ssh_options += ["ControlPersist=no"]
    ok, failures = True, []
    for host, result in parallax.copy(nodes, local_path, local_path, opts).items():
        if isinstance(result, parallax.Error):
            failures.append(f"Failed to push {local_path} to {host}: {result}")
            ok = False
    return ok, failures


def remote_diff_slurp(nodes: list[str], filename: str, tmpdir: str) -> list[tuple[str, Any]]:
    """crmsh/utils.py ``remote_diff_slurp`` (default Options with ``localdir``)."""
    opts = parallax.Options()
    opts.localdir = tmpdir
    return list(parallax.slurp(nodes, filename, os.path.basename(filename), opts).items())


def do_pssh(host_cmdlines: list[tuple[str, str]], outdir: str, errdir: str, timeout: int = 60,
            options: list[str] = ()) -> Any:
    """crmsh/crm_pssh.py ``parse_args`` + ``do_pssh``: an ssh argv per host, run by 1.0's Manager/Task.

    ``options`` stands for ``opts.options`` (crmsh appends them as ``-o``);
    returns the Manager's list of exit statuses, or ``False`` on ``FatalError``.
    """
    from parallax.manager import FatalError, Manager
    from parallax.task import Task

    opts = parallax.Options()
    opts.timeout = int(timeout)
    opts.quiet = True
    opts.inline = False
    opts.outdir = outdir
    opts.errdir = errdir
    for d in (outdir, errdir):
        if d and not os.path.exists(d):
            os.makedirs(d)
    manager = Manager(opts)
    for host, cmdline in host_cmdlines:
        cmd = ["ssh", host, "-o", "PasswordAuthentication=no", "-o", "SendEnv=PARALLAX_NODENUM",
               "-o", "StrictHostKeyChecking=no"]
        for opt in options:
            cmd += ["-o", opt]
        if cmdline:
            cmd.append(cmdline)
        task = Task(host, "", "", cmd, stdin=opts.input_stream, verbose=opts.verbose, quiet=opts.quiet,
                    print_out=opts.print_out, inline=opts.inline, inline_stdout=opts.inline_stdout,
                    default_user=opts.default_user)
        manager.add_task(task)
    try:
        return manager.run()
    except FatalError:
        return False


def examine_outcome(statuses: list[int]) -> str:
    """crmsh/crm_pssh.py ``examine_outcome``, reduced to which message crmsh would log."""
    if min(statuses) < 0:
        return "ssh process was killed"
    if any(s == 255 for s in statuses):
        return "ssh processes failed"
    if any(s not in (0, 120) for s in statuses):
        return "some ssh processes failed"
    return "ok"
