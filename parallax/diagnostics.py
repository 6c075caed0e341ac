"""``verbose``: parallax's diagnostics on stderr for the duration of a call.

parallax logs to ``logging.getLogger("parallax")``, which has only a
NullHandler unless the application configures logging.  A verbose call adds
a stderr handler and lowers the level while it runs, then puts both back, so
one verbose call does not make every later call verbose.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator

log = logging.getLogger("parallax")
_lock = threading.Lock()
_active = 0
_handler: logging.Handler | None = None
_saved_level = logging.NOTSET


@contextlib.contextmanager
def verbose_logging() -> Iterator[None]:
    """Send ``parallax`` log records to stderr while the block runs (re-entrant)."""
    global _active, _handler, _saved_level
    with _lock:
        if _active == 0:
            _handler = logging.StreamHandler(sys.stderr)
            _handler.setFormatter(logging.Formatter("parallax: %(message)s"))
            _saved_level = log.level
            log.addHandler(_handler)
            log.setLevel(logging.DEBUG)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _handler is not None:
                log.removeHandler(_handler)
                log.setLevel(_saved_level)
                _handler = None


__all__ = ["verbose_logging"]
