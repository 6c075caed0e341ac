"""SSH semantics written once for every in-process backend.

Each module owns one concern: ``config`` resolves OpenSSH client
configuration into an immutable :class:`~parallax.ssh.config.HostConfig`,
``policy`` is the host-key policy table, ``hostkeys`` known_hosts lookup and
the accept-new recorder.  Nothing here imports paramiko or asyncssh.
"""
