"""Project-wide pytest setup.

The real-sshd lab fixtures (``ssh_lab``, ``make_ssh_lab``, ``embedded_ssh_host``) load through
parallax's ``pytest11`` entry point (``parallax.testing.pytest_plugin``), as for any user of the package.
"""
