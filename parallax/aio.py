"""Async twins of the four operations, for use inside a running event loop."""

from __future__ import annotations

from .api import acall as call
from .api import acheck as check
from .api import acopy as copy
from .api import arun as run
from .api import aslurp as slurp
from .session import AsyncSession as Session

__all__ = ["Session", "call", "check", "copy", "run", "slurp"]
