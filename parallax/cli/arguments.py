"""The ``parallax`` command's argument parser: pssh's flags with pssh's meaning, plus clush's ``-w``.

``-h`` is pssh's hosts file, so help is ``--help`` only.  A usage error is
one line on stderr and exit status 2 (:class:`UsageError`), never argparse's
usage block or a traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

__all__ = ["UsageError", "build_parser", "parse"]

PROG = "parallax"


class UsageError(Exception):
    """Bad input on the command line: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UsageError` instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _positive_int(name: str) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} {text!r}: expected an integer") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} {text!r}: must be at least 1")
        return value
    return convert


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must not be negative")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds") from None
    if not value >= 0:  # negative, or NaN
        raise argparse.ArgumentTypeError(f"{text!r}: must not be negative")
    return value


class _ShlexAppend(argparse.Action):
    """pssh's ``-x ARGS``: split like a shell would and add to the extra ssh arguments."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        try:
            words = shlex.split(values)
        except ValueError as exc:
            raise argparse.ArgumentError(self, f"{values!r}: {exc}") from None
        items = list(getattr(namespace, self.dest) or [])
        items.extend(words)
        setattr(namespace, self.dest, items)


def _help(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--help", action="help", help="show this help and exit")


def _add_hosts(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("hosts")
    g.add_argument("-h", "--hosts", dest="host_files", action="append", default=[], metavar="HOST_FILE",
                   help='hosts file, one "[user@]host[:port] [user]" per line (repeatable)')
    g.add_argument("-H", "--host", dest="host_strings", action="append", default=[], metavar="HOST_STRING",
                   help='host entries "[user@]host[:port] ..." separated by spaces (repeatable)')
    g.add_argument("-w", dest="nodesets", action="append", default=[], metavar="NODESET",
                   help="hosts as a ClusterShell node set, e.g. web[01-20],db1 (repeatable)")
    g.add_argument("--exclude", action="append", default=[], metavar="NODESET",
                   help="leave out the hosts of this node set (repeatable)")


def _add_connection(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("connection")
    g.add_argument("-l", "--user", dest="user", help="user name unless the host entry names one")
    g.add_argument("-p", "--par", dest="par", type=_positive_int("-p"), metavar="PAR",
                   help="at most this many hosts at once (default 32)")
    g.add_argument("-t", "--timeout", dest="timeout", type=_seconds, metavar="TIMEOUT",
                   help="seconds per host to connect and finish; 0 = no limit (default 60)")
    g.add_argument("-O", "--option", dest="options", action="append", default=[], metavar="OPTION",
                   help="ssh option Key=Value (repeatable)")
    g.add_argument("-x", "--extra-args", dest="extra", action=_ShlexAppend, metavar="ARGS",
                   help="extra ssh arguments, split as a shell would (openssh backend)")
    g.add_argument("-X", "--extra-arg", dest="extra", action="append", metavar="ARG",
                   help="one extra ssh argument (openssh backend)")
    g.add_argument("-A", "--askpass", action="store_true", default=None,
                   help="prompt once for a password and use it for every host")
    g.add_argument("--backend", help="openssh (default), paramiko, asyncssh, or a plugin's name")
    g.add_argument("--connect-timeout", type=_seconds, metavar="SECONDS", help="seconds for the SSH handshake alone")
    g.add_argument("--retries", type=_count, metavar="N", help="extra attempts after a connection failure")
    g.add_argument("--deadline", type=_seconds, metavar="SECONDS", help="overall seconds for the whole run")


def _add_output(parser: argparse.ArgumentParser, *, command: bool) -> None:
    g = parser.add_argument_group("output")
    g.add_argument("-o", "--outdir", help="write each host's stdout to OUTDIR/<host>")
    g.add_argument("-e", "--errdir", help="write each host's stderr to ERRDIR/<host>")
    g.add_argument("-v", "--verbose", action="store_true", default=None, help="diagnostics on stderr")
    if command:
        g.add_argument("-i", "--inline", action="store_true", help="print each host's output after its status line")
        g.add_argument("--inline-stdout", action="store_true", help="print each host's stdout after its status line")
        g.add_argument("-P", "--print", dest="print_out", action="store_true",
                       help="print output lines as they arrive, prefixed with the host")
        g.add_argument("-b", "--gather", action="store_true",
                       help="fold hosts with identical output and print each group once (clubak -b)")
    g.add_argument("--json", action="store_true",
                   help="one JSON object per host (JSON Lines) instead of status lines")
    g.add_argument("--progress", dest="progress", action="store_true", default=True,
                   help="a live status line on a terminal (the default)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no live status line")


def _common(sub: Any, name: str, help_text: str, usage: str, *, command: bool) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text, usage=usage,
                                                add_help=False)
    _help(p)
    _add_hosts(p)
    _add_connection(p)
    _add_output(p, command=command)
    # A clean place for later flags that every operation shares (e.g. --sudo on run).
    return p


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: ``run``, ``copy``, ``slurp``, ``check``, ``nodes``, ``demo``."""
    parser = _Parser(prog=PROG, add_help=False,
                     description="Run commands and copy files over SSH on many hosts at once (pssh-compatible).")
    _help(parser)
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"parallax {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", parser_class=_Parser)
    sub.required = True

    run = _common(sub, "run", "run a command on every host (pssh)", "parallax run [OPTIONS] COMMAND...", command=True)
    run.add_argument("-I", "--send-input", dest="send_input", action="store_true",
                     help="read standard input and send it to every host's command")
    run.add_argument("--sudo", action="store_true", default=None,
                     help="run the command through sudo; prompts once for the sudo password (never on argv)")
    run.add_argument("--sudo-user", metavar="USER", help="with --sudo: run as USER instead of root")
    run.add_argument("command", nargs=argparse.REMAINDER, help="the remote command (its words are joined by spaces)")

    copy = _common(sub, "copy", "copy local files to every host (pscp)",
                   "parallax copy [OPTIONS] LOCAL... REMOTE", command=False)
    copy.add_argument("-r", "--recursive", action="store_true", help="copy directories recursively")
    copy.add_argument("paths", nargs="*", metavar="LOCAL... REMOTE")

    slurp = _common(sub, "slurp", "copy a remote file from every host to LOCALDIR/<host>/LOCAL (pslurp)",
                    "parallax slurp [OPTIONS] -L LOCALDIR REMOTE LOCAL", command=False)
    slurp.add_argument("-r", "--recursive", action="store_true", help="copy directories recursively")
    slurp.add_argument("-L", "--localdir", help="where the per-host directories go (default: the current directory)")
    slurp.add_argument("paths", nargs="*", metavar="REMOTE LOCAL")

    check = _common(sub, "check", "connect and authenticate to every host, running nothing (pre-flight)",
                    "parallax check [OPTIONS]", command=False)
    check.set_defaults(paths=[])

    nodes = sub.add_parser("nodes", help="expand, fold or count node sets (cluset -e/-f/-c)",
                           description="Node sets as ClusterShell's cluset prints them.",
                           usage="parallax nodes [-e|-f|-c] NODESET...", add_help=False)
    _help(nodes)
    mode = nodes.add_mutually_exclusive_group(required=True)
    mode.add_argument("-e", "--expand", dest="mode", action="store_const", const="expand", help="the names, one by one")
    mode.add_argument("-f", "--fold", dest="mode", action="store_const", const="fold", help="the folded node set")
    mode.add_argument("-c", "--count", dest="mode", action="store_const", const="count", help="how many names")
    nodes.add_argument("nodesets", nargs="+", metavar="NODESET")

    demo = sub.add_parser("demo", help="run call/run/copy/slurp on throwaway local SSH hosts",
                          description="A tour of parallax on throwaway local SSH hosts.")
    demo.add_argument("--hosts", type=_positive_int("--hosts"), default=3, help="number of throwaway hosts (default 3)")
    demo.add_argument("--backend", default=None, help="openssh (default), paramiko, asyncssh")
    demo.add_argument("--host-kind", choices=("auto", "sshd", "embedded"), default="auto",
                      help="real OpenSSH sshd (needs root) or the embedded asyncssh host")
    return parser


#: Flags that take a value.  pssh (optparse) takes the next word as the value even when it
#: starts with "-" (``-x "-o Foo=bar"``); argparse would not, so such pairs are glued first.
VALUE_FLAGS = frozenset({
    "-h", "--hosts", "-H", "--host", "-w", "--exclude", "-l", "--user", "-p", "--par", "-t", "--timeout",
    "-O", "--option", "-x", "--extra-args", "-X", "--extra-arg", "--backend", "--connect-timeout",
    "--retries", "--deadline", "-o", "--outdir", "-e", "--errdir", "-L", "--localdir",
})


def _glue_values(argv: list[str]) -> list[str]:
    """``-x VALUE`` -> ``-xVALUE`` / ``--flag VALUE`` -> ``--flag=VALUE`` up to the first operand."""
    if not argv or argv[0] not in ("run", "copy", "slurp", "check"):
        return argv
    out, i = [argv[0]], 1
    while i < len(argv):
        word = argv[i]
        if word == "--" or not word.startswith("-"):
            out.extend(argv[i:])  # the operands (run: the command, kept as written)
            break
        if word in VALUE_FLAGS and i + 1 < len(argv):
            out.append(f"{word}={argv[i + 1]}" if word.startswith("--") else word + argv[i + 1])
            i += 2
            continue
        out.append(word)
        i += 1
    return out


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse *argv* (default ``sys.argv[1:]``); a :class:`UsageError` for anything wrong with it."""
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(_glue_values(words))
    if args.subcommand == "run":
        if args.command and args.command[0] == "--":
            args.command = args.command[1:]
        if not args.command:
            raise UsageError("parallax run: no command given (see parallax run --help)")
    elif args.subcommand == "copy" and len(args.paths) < 2:
        raise UsageError("parallax copy: give at least one LOCAL path and the REMOTE path (see parallax copy --help)")
    elif args.subcommand == "slurp" and len(args.paths) != 2:
        raise UsageError("parallax slurp: give exactly REMOTE and LOCAL (see parallax slurp --help)")
    return args
