"""``python -m parallax``: the same program as the ``parallax`` command (:mod:`parallax.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
