"""Transports. Each module holds one backend; :mod:`.builtin` registers them."""
