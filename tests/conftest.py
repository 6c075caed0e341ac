"""Project-wide pytest setup: the real-sshd lab fixtures from parallax.testing."""

pytest_plugins = ["parallax.testing.pytest_plugin"]
