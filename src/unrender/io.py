"""Crash-safe file writes (write to a temporary file beside the target, then rename atomically)
and folder locks.

A crash or a kill at any moment leaves either the old file or the new one, never a
half-written one. A :class:`FolderLock` (an OS file lock, released by the OS when its process
exits in any way) keeps two writers out of one folder. This module imports nothing else of
unrender, so every layer can use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "fsync_dir", "FolderLock", "FolderLockedError", "pid_alive"]


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename) to disk where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsynced and renamed to ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("hello")
        >>> target.read_text()
        'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID is running (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class FolderLockedError(RuntimeError):
    """Another process holds the folder's lock."""


class FolderLock:
    """An exclusive OS lock on ``folder/.lock`` (``fcntl.flock``), holding the owner's PID.

    The OS releases it when the process exits, however it exits (kill -9 included), so a
    stale lock file never blocks a later run. Where ``fcntl`` is missing (Windows) it does nothing.

    Example:
        >>> import tempfile
        >>> with FolderLock(tempfile.mkdtemp(), "training run") as lock:
        ...     lock.held
        True
    """

    def __init__(self, folder: str | Path, what: str = "folder"):
        self.path = Path(folder) / ".lock"
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> str:
        """``PID n`` of the process that wrote the lock file last (the holder while it is held)."""
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        return f"PID {pid}" if pid.isdigit() else "another process"

    def try_acquire(self, blocking: bool = False) -> bool:
        """Take the lock; False (without waiting) if another process holds it, unless ``blocking``."""
        if self._fd is not None:
            return True
        try:
            import fcntl
        except ImportError:  # no flock on this OS
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def acquire(self, blocking: bool = False) -> FolderLock:
        """Take the lock, waiting for it if ``blocking``; else raise :class:`FolderLockedError` naming the holder."""
        if not self.try_acquire(blocking):
            raise FolderLockedError(
                f"{self.path.parent} is in use by another {self.what} ({self.holder()}); "
                "wait for it to finish, stop it, or choose another folder"
            )
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock; the file stays (harmless)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
