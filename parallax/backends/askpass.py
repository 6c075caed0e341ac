"""Answers ``ssh``'s SSH_ASKPASS prompts from memory, over a Unix socket.

``ssh`` asks a helper program (``$SSH_ASKPASS``, the prompt as its only
argument) for a password or a key passphrase and reads the answer from the
helper's stdout.  The helper written here holds no secret: it connects to a
Unix socket in the backend's private 0700 directory and prints what the
parent answers.  So no file ever holds a secret (a ``kill -9`` leaves
nothing behind to read), and the secret is in no argv and no environment;
the environment only carries the socket path and a random token naming
which credentials this ``ssh`` may ask for.  (An inherited pipe would not
do: ``ssh`` closes every descriptor above stderr when it starts.)

The answer depends on the prompt: a login password only for a password
prompt, a key passphrase only for ``Enter passphrase for key ...``, and
nothing for anything else (a host key confirmation, a PIN), so a passphrase
is never sent to a server as a password, and no secret answers a yes/no
question.  Only processes of this user may connect (``SO_PEERCRED``).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shlex
import socket
import struct
import sys

_PASSPHRASE = re.compile(r"^Enter passphrase for ", re.IGNORECASE)
# "user@host's password: ", keyboard-interactive "Password: ", "Password for user@host: "
_PASSWORD = re.compile(r"password(?: for [^:]*)?:\s*$", re.IGNORECASE)
MAX_REQUEST = 64 * 1024
REQUEST_TIMEOUT = 30.0  # seconds a helper may take to send its prompt

ENV_SOCKET = "PARALLAX_ASKPASS_SOCKET"
ENV_TOKEN = "PARALLAX_ASKPASS_TOKEN"

_CLIENT = f'''\
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout({REQUEST_TIMEOUT})
try:
    s.connect(os.environ["{ENV_SOCKET}"])
    prompt = sys.argv[1] if len(sys.argv) > 1 else ""
    s.sendall(os.environ["{ENV_TOKEN}"].encode() + b"\\n" + prompt.encode("utf-8", "surrogateescape"))
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
except (OSError, KeyError):
    sys.exit(1)
if not answer:
    sys.exit(1)
sys.stdout.buffer.write(answer)
'''


def answer_for(prompt: str, password: str | None, passphrase: str | None) -> str | None:
    """The secret that answers *prompt*, or ``None`` (the helper then fails, and ssh
    takes that as no answer)."""
    if _PASSPHRASE.search(prompt):
        return passphrase
    if _PASSWORD.search(prompt) and "passphrase" not in prompt.lower():
        return password
    return None


class AskpassServer:
    """Serves the credentials of several targets to the askpass helpers of their ``ssh``.

    Runs in whatever event loop calls :meth:`environment` (a loop must be
    running while ``ssh`` waits for its helper, which is always the case
    since the backend awaits it).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.socket_path = os.path.join(directory, "askpass.sock")
        self.helper = os.path.join(directory, "askpass")
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tokens: dict[tuple[str | None, str | None], str] = {}
        self._credentials: dict[str, tuple[str | None, str | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def environment(self, password: str | None, passphrase: str | None) -> dict[str, str]:
        """Variables that let an ``ssh`` started now ask for *password* and *passphrase*."""
        self._listen()
        token = self._tokens.get((password, passphrase))
        if token is None:
            token = self._tokens[(password, passphrase)] = secrets.token_hex(16)
            self._credentials[token] = (password, passphrase)
        return {"SSH_ASKPASS": self.helper, "SSH_ASKPASS_REQUIRE": "force", ENV_SOCKET: self.socket_path,
                ENV_TOKEN: token}

    def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sock is None:
            self._write_helper()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(self.socket_path)
                os.chmod(self.socket_path, 0o600)
                sock.listen(128)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            self._sock = sock
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._loop.remove_reader, self._sock.fileno())
            loop.add_reader(self._sock.fileno(), self._accept)
            self._loop = loop

    def _write_helper(self) -> None:
        """The helper program: a shell wrapper running this Python on the client code (no secret)."""
        client = self.helper + ".py"
        with open(client, "w") as f:
            f.write(_CLIENT)
        fd = os.open(self.helper, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
        with os.fdopen(fd, "w") as f:
            f.write(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -I -S {shlex.quote(client)} \"$@\"\n")

    def _accept(self) -> None:
        assert self._sock is not None and self._loop is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not _same_user(conn):
                conn.close()
                continue
            conn.setblocking(False)
            task = self._loop.create_task(self._serve(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            data = b""
            while len(data) <= MAX_REQUEST:
                chunk = await asyncio.wait_for(loop.sock_recv(conn, 4096), REQUEST_TIMEOUT)
                if not chunk:
                    break
                data += chunk
            token, _, prompt = data.partition(b"\n")
            credentials = self._credentials.get(token.decode("ascii", "replace"))
            if credentials is None:
                return
            secret = answer_for(prompt.decode("utf-8", "replace"), *credentials)
            if secret is not None:
                await loop.sock_sendall(conn, secret.encode() + b"\n")
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        """Stop serving (idempotent); the directory itself belongs to the backend."""
        for task in list(self._tasks):
            task.cancel()
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                try:
                    self._loop.remove_reader(self._sock.fileno())
                except RuntimeError:  # called from another thread than the loop's
                    self._loop.call_soon_threadsafe(self._loop.remove_reader, self._sock.fileno())
            self._sock.close()
            self._sock = None
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
        self._loop = None
        self._tokens.clear()
        self._credentials.clear()


def _same_user(conn: socket.socket) -> bool:
    """Whether the peer of *conn* runs as this process's user (or root)."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):  # no SO_PEERCRED: the 0700 directory still guards the socket
        return True
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (os.getuid(), 0)


__all__ = ["AskpassServer", "answer_for"]
