"""Where a slurp may write: the local side of ``scp -r -p``, confined to ``<localdir>``.

A slurp from host H lands in ``<localdir>/<H>/<dst>``.  Nothing may be
created or written outside ``<localdir>``, even when a symlink at
``<localdir>/<H>`` or below it points elsewhere (one that stays inside is
followed, as scp follows it).  :class:`LocalRoot` resolves and checks every
path; the functions below serve a scheduler (:func:`prepare_slurp`) and a
backend that hands the copy to another program (:func:`check_local_destination`,
:func:`strip_special_bits` for openssh's ``scp``).
"""

from __future__ import annotations

import os
import posixpath
import stat

from ..errors import TransferFailed
from ..jobs import GetJob

#: The permission bits that cross a transfer.
MODE_MASK = 0o777


class Refused(Exception):
    """A transfer step refused, already phrased as ``<path>: <reason>``; the walk turns it
    into :class:`~parallax.errors.TransferFailed` for its target."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def reason_of(e: BaseException) -> str:
    """The text an error message gives for *e* (``strerror`` of an ``OSError``)."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


class LocalRoot:
    """The local directory a slurp may write in; resolves and checks every path it is given."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def resolve(self, path: str, shown: str | None = None) -> str:
        """*path* with every symlink resolved, or :class:`Refused` (naming *shown*, default
        *path*) if that leads outside the root."""
        real = os.path.realpath(path)
        base = self.root.rstrip(os.sep) + os.sep
        if real != self.root and not real.startswith(base):
            raise Refused(shown or path, f"refusing to write outside {self.root} (it leads to {real})")
        return real

    def child(self, real_parent: str, name: str, shown: str) -> str:
        """The real path of *name* inside *real_parent* (a resolved, checked directory): one
        ``lstat`` unless it is a symlink, which is resolved and checked."""
        path = os.path.join(real_parent, name)
        return self.resolve(path, shown) if os.path.islink(path) else path

    def check_tree(self, top: str) -> None:
        """Refuse if a symlink at or below *top* (an existing local tree) leads outside the root."""
        self.resolve(top)
        if not os.path.isdir(top):
            return
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    self.resolve(path)


def landing_path(src: str, dst: str) -> str:
    """Where remote *src* lands when copied to local *dst*: inside *dst* if that is a directory."""
    if os.path.isdir(dst):
        return os.path.join(dst, posixpath.basename(posixpath.normpath(src)))
    return dst


def slurp_root(job: GetJob) -> str:
    """The directory a slurp must not write outside: the job's ``<localdir>``.

    A :class:`GetJob` carries ``dst = <localdir>/<host>/<path>``; this is the
    part before the host's directory (``job.root`` when the job carries it),
    else the directory holding ``dst``.
    """
    explicit = getattr(job, "root", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    dst, key = job.dst, job.target.key
    if key and os.sep not in key:
        marker = os.sep + key + os.sep
        at = dst.find(marker)
        if at >= 0:
            return dst[:at] or os.sep
        if dst.startswith(key + os.sep):
            return os.curdir
    return os.path.dirname(dst) or os.curdir


def prepare_slurp(job: GetJob) -> None:
    """Create the directories above ``job.dst`` (``<localdir>/<host>/...``) for a slurp, each
    checked as it is made: never through a symlink leading outside ``<localdir>``.

    What a scheduler calls before :meth:`~parallax.backends.base.Backend.get`
    (``os.makedirs`` would follow such a symlink and create directories outside).
    """
    root = slurp_root(job)
    try:
        _make_parents(job.dst, root)
    except Refused as e:
        raise TransferFailed.at(job.target, str(e)) from None
    except OSError as e:
        raise TransferFailed.at(job.target, f"{e.filename or job.dst}: {reason_of(e)}") from None


def _make_parents(dst: str, root: str) -> None:
    os.makedirs(root, exist_ok=True)  # <localdir> itself, as the caller named it
    base = os.path.abspath(root)
    rel = os.path.relpath(os.path.dirname(os.path.abspath(dst)), base)
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return  # nothing between the root and dst
    local = LocalRoot(root)
    real, shown = local.root, root
    for part in rel.split(os.sep):
        shown = os.path.join(shown, part)
        real = local.child(real, part, shown)
        try:
            os.mkdir(real)
        except FileExistsError:
            if not os.path.isdir(real):
                raise Refused(shown, "Not a directory") from None


def check_local_destination(landed: str, root: str, *, recursive: bool) -> str | None:
    """Why a program copying to local *landed* (see :func:`landing_path`) could write outside
    *root* through a symlink, or ``None``: *landed* itself, and when *recursive* every symlink
    in the existing tree below it (scp follows them all)."""
    local = LocalRoot(root)
    try:
        if recursive:
            local.check_tree(landed)
        else:
            local.resolve(landed)
    except Refused as e:
        return str(e)
    return None


def strip_special_bits(top: str, root: str) -> None:
    """Clear setuid, setgid and sticky bits at and below local *top* (symlinks not followed),
    for copies made by a program that may keep them (legacy-protocol scp)."""
    local = LocalRoot(root)
    paths = [top]
    if os.path.isdir(top) and not os.path.islink(top):
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    for path in paths:
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or not st.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
                continue
            local.resolve(path)
            os.chmod(path, stat.S_IMODE(st.st_mode) & MODE_MASK)
        except (OSError, Refused):
            continue


__all__ = [
    "MODE_MASK",
    "LocalRoot",
    "Refused",
    "check_local_destination",
    "landing_path",
    "prepare_slurp",
    "slurp_root",
    "strip_special_bits",
]
