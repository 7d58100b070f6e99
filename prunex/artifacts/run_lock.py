"""One writer per run directory: an OS file lock held while a command writes into it, released on any exit."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from prunex.artifacts.errors import InputError

LOCK_NAME = ".prunex.lock"


class RunLockedError(InputError):
    """Another process is writing into the run directory."""


class RunLock:
    """``with RunLock(run_dir):`` — exclusive, non-blocking; the file holds the owner's pid for the message.

    The kernel drops the lock when the process ends, however it ends (a SIGKILL included), so a stale lock file
    never blocks a later run.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def holder(self) -> str | None:
        """The pid of the process holding the lock now, or None (no lock file, or nobody holds it); creates
        nothing."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.read(fd, 32).decode(errors="replace").strip() or "another process"
        finally:
            os.close(fd)  # closing drops a lock taken here
        return None

    def refuse_if_held(self) -> None:
        """Raise :class:`RunLockedError` if another process is writing into the directory."""
        owner = self.holder()
        if owner is not None:
            raise RunLockedError(self._busy(owner))

    def _busy(self, owner: str) -> str:
        return (
            f"{self.path.parent} is being written by prunex process {owner}; wait for it to finish or use another "
            "directory"
        )

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLockedError(self._busy(owner)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
