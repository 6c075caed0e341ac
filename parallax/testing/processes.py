"""Looking at local processes through Linux's /proc, for tests that check cleanup.

Used by the SSH lab (to stop every sshd it started) and by tests asserting
that nothing was left behind: no child process, no remote command.
"""

from __future__ import annotations

import os


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every process visible in /proc."""
    table: dict[int, tuple[int, str]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2 :].split()
        if len(rest) >= 2:
            table[int(name)] = (int(rest[1]), rest[0].decode())
    return table


def children_of(pid: int | None = None) -> set[int]:
    """PIDs whose parent is *pid* (default: this process), zombies included."""
    parent = os.getpid() if pid is None else pid
    return {p for p, (ppid, _) in process_table().items() if ppid == parent}


def command_line(pid: int) -> str:
    """The process's argv joined with spaces ("" if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def processes_with(text: str) -> dict[int, str]:
    """Live (non-zombie) processes other than this one whose command line contains *text*."""
    me = os.getpid()
    found = {}
    for pid, (_, state) in process_table().items():
        if pid == me or state == "Z":
            continue
        cmd = command_line(pid)
        if text in cmd:
            found[pid] = cmd
    return found


def shells_running(command: str) -> set[int]:
    """Shells running *command* as sshd starts one (``<shell> -c <command>``): the remote
    command itself, not a local ``ssh`` carrying it in its arguments."""
    return {pid for pid, cmd in processes_with(command).items() if cmd.endswith(f"-c {command}")}


def survives_one_term(token: str) -> str:
    """A remote command that outlives its first TERM and ends on the second, as a command does
    whose TERM sshd lost (see :mod:`parallax.backends.terminate`); :func:`shells_running`
    finds it.  The login shell runs it itself (a kill may look for the command line), and its
    output goes nowhere: a shell that reports its child's death on a closed pipe dies of
    SIGPIPE instead.  *token* (no quotes) makes it unique."""
    return f'trap "trap - TERM" TERM; exec >/dev/null 2>&1; while :; do sleep 1; done; : {token}'


__all__ = ["children_of", "command_line", "process_table", "processes_with", "shells_running", "survives_one_term"]
