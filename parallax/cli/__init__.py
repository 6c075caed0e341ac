"""The ``parallax`` command (console script; ``python -m parallax`` is the same program).

``parallax run`` (pssh), ``parallax copy`` (pscp), ``parallax slurp``
(pslurp), ``parallax nodes`` (cluset) and ``parallax demo``.  Every
subcommand is built on the library's public API, so whatever the command
does, a program can do with :func:`parallax.run` and friends.  See
``docs/cli.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from .arguments import UsageError, parse
from .exitcodes import INTERRUPTED, LOCAL_ERROR, USAGE

__all__ = ["UsageError", "main"]


def _subcommand(name: str) -> Callable[..., int]:
    if name == "nodes":
        from .nodes import nodes
        return nodes
    if name == "demo":
        from .demo import demo
        return demo
    from . import commands
    chosen: Callable[..., int] = {"run": commands.run, "copy": commands.copy, "slurp": commands.slurp,
                                  "check": commands.check}[name]
    return chosen


def _fail(message: str, status: int) -> int:
    sys.stdout.flush()
    print(message, file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line *argv* (default ``sys.argv[1:]``); return the exit status."""
    try:
        args = parse(argv)
        return _subcommand(args.subcommand)(args)
    except UsageError as exc:
        return _fail(str(exc), USAGE)
    except (ValueError, TypeError) as exc:  # the library refused an argument before anything ran
        return _fail(f"parallax: {exc}", USAGE)
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        return LOCAL_ERROR
    except OSError as exc:
        return _fail(f"parallax: {exc}", LOCAL_ERROR)
    except KeyboardInterrupt:
        return _fail("parallax: interrupted", INTERRUPTED)
