"""``sudo=True``: run call/run commands through ``sudo`` on every host.

The command becomes a small POSIX ``sh`` script (the user's command and the
target user are its arguments, quoted, never spliced into it).  The sudo
password travels only on the command's stdin, ahead of any ``input_stream``:
never in argv, the environment, a file, a log line or a ``repr()``.

On the host the script

1. asks ``sudo -n -k`` whether a password is needed at all (a ``NOPASSWD``
   rule): if not, it drops the password lines and runs the command with
   ``sudo -n``, so a password is never left on the command's stdin;
2. otherwise reads one password line into a shell variable (``read`` and
   ``printf`` are shell builtins: no process sees it in its argv) and checks
   it with ``sudo -S -k ... sh -c :``; a refused password ends the job with
   exit status 1 and :data:`REFUSED` as the last stderr line, which parallax
   turns into a :class:`~parallax.errors.CommandFailed` saying so;
3. runs the command with ``sudo -S -k``, which reads the second copy of the
   password (one byte at a time, so the caller's input that follows stays
   intact for the command).

``-k`` keeps sudo from using or leaving cached credentials.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from .errors import CommandFailed

#: Last stderr line of a job whose sudo password the host refused.
REFUSED = "parallax: sudo refused the password"
#: Last stderr line of a job whose host wants a sudo password none was given for.
NEEDS_PASSWORD = "parallax: sudo needs a password on this host (sudo_password= or sudo_askpass=True)"

_USER = re.compile(r"^(?:#[0-9]+|[A-Za-z0-9_][A-Za-z0-9_.-]*\$?)$")

_SCRIPT = f"""\
u=$1 c=$2 given=$3
if sudo -n -k -u "$u" -- sh -c : 2>/dev/null; then
  if [ "$given" = 1 ]; then IFS= read -r p; IFS= read -r p; p=; fi
  exec sudo -n -u "$u" -- sh -c "$c"
fi
if [ "$given" != 1 ]; then echo {shlex.quote(NEEDS_PASSWORD)} >&2; exit 1; fi
IFS= read -r p
if printf '%s\\n' "$p" | sudo -S -p '' -k -u "$u" -- sh -c : 2>/dev/null; then :; else
  p=; echo {shlex.quote(REFUSED)} >&2; exit 1
fi
p=
exec sudo -S -p '' -k -u "$u" -- sh -c "$c"
"""


def check_user(user: Any) -> str | None:
    """``sudo_user`` checked: a user name or ``#uid`` (``ValueError``/``TypeError`` naming it)."""
    if user is None:
        return None
    if not isinstance(user, str):
        raise TypeError(f"option sudo_user: expected a user name, not {type(user).__name__}")
    if not _USER.match(user):
        raise ValueError(f"option sudo_user={user!r}: not a valid user name")
    return user


def wrap(command: str, stdin: bytes | None, user: str | None, password: str | None) -> tuple[str, bytes | None]:
    """The remote command and stdin that run *command* as *user* (default root) through sudo."""
    if password is not None and ("\n" in password or "\r" in password):
        raise ValueError("option sudo_password contains a line break")
    argv = ["sh", "-c", _SCRIPT, "parallax-sudo", user or "root", command, "1" if password is not None else "0"]
    wrapped = " ".join(shlex.quote(a) for a in argv)
    if password is None:
        return wrapped, stdin
    line = password.encode() + b"\n"
    return wrapped, line + line + (stdin or b"")


def refused(result: Any) -> bool:
    """Whether *result* (a result or an Error) is sudo refusing the password, or asking for one."""
    rc = getattr(result, "rc", None)
    stderr = getattr(result, "stderr", b"") or b""
    if rc != 1 or not isinstance(stderr, bytes):
        return False
    last = stderr.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
    return last in (REFUSED, NEEDS_PASSWORD)


def mark_refusals(results: dict[str, Any]) -> dict[str, Any]:
    """Replace (in place) every sudo refusal in *results* (call or run) by a
    :class:`CommandFailed` saying so; returns *results*."""
    for host, result in list(results.items()):
        if not refused(result):
            continue
        last = result.stderr.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode()
        why = "sudo refused the password" if last == REFUSED else "sudo needs a password and none was given"
        results[host] = CommandFailed(f"{why} on {host}", getattr(result, "task", None), host=host,
                                      stdout=result.stdout, stderr=b"", rc=1,
                                      duration=getattr(result, "duration", 0.0))
    return results


__all__ = ["NEEDS_PASSWORD", "REFUSED", "check_user", "mark_refusals", "refused", "wrap"]
