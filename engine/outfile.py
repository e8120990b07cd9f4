"""Where ``--out`` writes: a regular file, replaced atomically, or standard output.

- :func:`out_path` reads the option: none or ``-`` is standard output.
- :func:`check_target` refuses (:class:`UsageError`, exit 2) before anything is written when
  the target exists and is not a regular file (a directory, device, FIFO or socket) or is a
  symbolic link (to anything: replacing the link would surprise, following it lets whoever
  planted it choose what is overwritten), when its folder does not exist, or when it is one of
  the ``protect``\\ ed files (the database an export reads).
- :func:`write_atomically` writes a temporary file (mode 0600) in the target's folder, syncs it
  to disk (as it is written, then once at the end), checks the target again and renames the
  file over it, then syncs the folder: readers see the old file or the whole new one, never a
  half-written one; a failure leaves no file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from engine.errors import UsageError

STDOUT = "-"
SYNC_EVERY = 0.5
"""Seconds between the syncs of a file being written (:func:`write_atomically`)."""
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def out_path(value: Path | str | None) -> Path | None:
    """The file ``--out`` names; None for standard output (no option, or ``-``)."""
    if value is None or str(value) == STDOUT:
        return None
    return Path(value)


def check_target(out: Path, *, protect: Iterable[Path] = ()) -> None:
    """Refuse (UsageError) a target that is not a regular file or a new file in a folder."""
    problem = _problem(out)
    if problem is None and not out.parent.is_dir():
        problem = f"its folder {out.parent} does not exist"
    if problem is None and any(_same(out, path) for path in protect):
        problem = "it is the database being read"
    if problem is not None:
        raise UsageError(f"refusing to write {out}: {problem}")


def write_atomically(
    out: Path, write: Callable[[IO[str]], Any], *, protect: Iterable[Path] = ()
) -> None:
    """Run ``write`` on a temporary file next to ``out``, sync it, then rename it to ``out``
    (see the module's docstring). UsageError when ``out`` is refused or cannot be written."""
    protect = tuple(protect)
    check_target(out, protect=protect)
    try:
        fd, temp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name[:100]}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream, _syncing(fd):
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        check_target(out, protect=protect)  # it may have changed while we wrote
        os.replace(temp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _sync_folder(out.parent)


@contextlib.contextmanager
def _syncing(fd: int) -> Iterator[None]:
    """While a long file is written, a thread hands what is written so far to the disk every
    :data:`SYNC_EVERY` seconds, so that the closing fsync waits for the last stretch only, not
    for a whole export (hundreds of megabytes) written at the end."""
    done, every = threading.Event(), SYNC_EVERY

    def sync() -> None:
        while not done.wait(every):
            try:
                os.fdatasync(fd)
            except OSError:
                return  # the closing fsync reports it

    worker = threading.Thread(target=sync, name="relink-sync", daemon=True)
    worker.start()
    try:
        yield
    finally:
        done.set()
        worker.join()


def _problem(out: Path) -> str | None:
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return str(exc.strerror or exc)
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        try:
            target = os.stat(out).st_mode
        except OSError:
            return "it is a symbolic link (to nothing); give the file itself"
        return f"it is a symbolic link (to {_kind(target)}); give the file itself"
    return f"it is {_kind(mode)}, not a regular file (use - for standard output)"


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "an unknown kind of file")


def _same(out: Path, other: Path) -> bool:
    try:
        return out.resolve() == other.resolve() or os.path.samefile(out, other)
    except OSError:
        return False


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; some file systems cannot sync a folder, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
