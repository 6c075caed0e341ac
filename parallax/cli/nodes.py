"""``parallax nodes -e|-f|-c NODESET...``: ClusterShell's ``cluset -e/-f/-c``, through :mod:`parallax.nodeset`.

Several node sets are joined (their union), as ``cluset`` does.
"""

from __future__ import annotations

import argparse

from .. import nodeset
from .arguments import UsageError

__all__ = ["nodes"]


def nodes(args: argparse.Namespace) -> int:
    """Print the expanded names, the folded node set, or the count."""
    names: list[str] = []
    try:
        for pattern in args.nodesets:
            names.extend(nodeset.expand(pattern, allow_empty=True))  # cluset prints nothing for h1!h1
        folded = nodeset.fold(names)
        if args.mode == "expand":
            print(" ".join(nodeset.expand(folded)))
        elif args.mode == "fold":
            print(folded)
        else:
            print(nodeset.count(folded))
    except ValueError as exc:
        raise UsageError(f"parallax nodes: {exc}") from None
    return 0
