"""Command-line flags -> the library's keyword options.

Only flags the user gave become options, so every ``PARALLAX_*`` variable
the library reads (``PARALLAX_USER``, ``PARALLAX_PAR``, ``PARALLAX_OUTDIR``,
``PARALLAX_VERBOSE``, ``PARALLAX_OPTIONS``, ``PARALLAX_BACKEND``) still
applies, and a flag wins over it, exactly as for a program.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["keeps_output", "library_options", "shows_progress"]

#: flag attribute -> library option, copied when the flag was given.
_DIRECT = {
    "user": "default_user",
    "par": "limit",
    "timeout": "timeout",
    "outdir": "outdir",
    "errdir": "errdir",
    "verbose": "verbose",
    "askpass": "askpass",
    "backend": "backend",
    "connect_timeout": "connect_timeout",
    "retries": "retries",
    "deadline": "deadline",
}


def keeps_output(args: argparse.Namespace) -> bool:
    """Whether the command prints hosts' output after the fact (so it must be kept in memory)."""
    return bool(getattr(args, "inline", False) or getattr(args, "gather", False) or args.json)


def shows_progress(args: argparse.Namespace) -> bool:
    """``--progress`` unless ``--no-progress`` or ``--json`` (the display itself also wants a terminal)."""
    return bool(args.progress) and not args.json


def library_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword options for :func:`parallax.run`/``copy``/``slurp`` that *args* asks for."""
    opts: dict[str, Any] = {}
    for flag, option in _DIRECT.items():
        value = getattr(args, flag, None)
        if value is not None:
            opts[option] = value
    if args.options:
        opts["ssh_options"] = list(args.options)
    if args.extra:
        opts["ssh_extra"] = list(args.extra)
    # pssh keeps output only to print it (-i, --inline-stdout); so does the command.
    opts["inline"] = keeps_output(args)
    opts["inline_stdout"] = bool(getattr(args, "inline_stdout", False))
    opts["print_out"] = bool(getattr(args, "print_out", False))
    opts["progress"] = shows_progress(args)
    # The command reports failures itself, on the status lines; -v adds the library's log.
    opts["quiet"] = not args.verbose
    if getattr(args, "send_input", False):
        opts["input_stream"] = sys.stdin.buffer
    if getattr(args, "sudo", None) or getattr(args, "sudo_user", None):
        # The password is asked for once, on the terminal, at the first host that needs it.
        opts.update(sudo=True, sudo_askpass=True)
        if args.sudo_user:
            opts["sudo_user"] = args.sudo_user
    if hasattr(args, "recursive"):
        opts["recursive"] = bool(args.recursive)
    if getattr(args, "localdir", None) is not None:
        opts["localdir"] = args.localdir
    return opts
