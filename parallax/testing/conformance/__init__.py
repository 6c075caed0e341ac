"""The backend conformance suite every parallax backend, built-in or plugin, must pass.

Run it for a backend against a real private sshd::

    PARALLAX_CONFORMANCE_BACKENDS=mybackend python -m pytest --pyargs parallax.testing.conformance.suite

:mod:`.suite` holds the tests, :mod:`.fixtures` the fixtures and the
parametrisation; ``docs/conformance.md`` describes the options.  Importing
this package does not import pytest.
"""

import sys

ENV_BACKENDS = "PARALLAX_CONFORMANCE_BACKENDS"
ENV_HOST = "PARALLAX_CONFORMANCE_HOST"

if "pytest" in sys.modules:
    # Imported into another test module, the suite still gets pytest's assertion messages.
    sys.modules["pytest"].register_assert_rewrite("parallax.testing.conformance.suite")

__all__ = ["ENV_BACKENDS", "ENV_HOST"]
