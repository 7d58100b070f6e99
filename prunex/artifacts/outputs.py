"""Outputs that never destroy earlier results: everything is written next to its destination and moved into
place only when it is complete, so a failed or interrupted command leaves the previous files as they were."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prunex.artifacts.errors import InputError


def check_writable_parent(path: Path) -> None:
    """Fail now, before any work, if ``path`` cannot be created or replaced (its nearest existing ancestor is
    read-only, or ``path`` is not what it should be)."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: {parent} is not writable")


def _fsync_dir(path: Path) -> None:
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


class PendingFile:
    """A file being written: ``path`` is a temporary sibling of ``destination``, which it replaces when complete
    (``destination`` may be changed before then, to any path in the same directory)."""

    def __init__(self, path: Path, destination: Path) -> None:
        self.path, self.destination = path, destination


@contextmanager
def atomic_file(destination: Path) -> Iterator[PendingFile]:
    """Write a file whole or not at all: yields a :class:`PendingFile` whose temporary ``path`` (same directory and
    suffix as ``destination``) is flushed to disk and renamed over ``destination`` when the block ends; an error or
    an interruption removes it and leaves ``destination`` as it was."""
    destination = Path(destination)
    check_writable_parent(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{destination.stem}.", suffix=f".tmp{destination.suffix}", dir=destination.parent
    )
    os.close(fd)
    pending = PendingFile(Path(tmp), destination)
    try:
        yield pending
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, pending.destination)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(pending.destination.parent)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling renamed over it (never a half-written file)."""
    with atomic_file(path) as pending:
        pending.path.write_bytes(data)
    return Path(path)


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def first_free(base: Path) -> Path:
    """``base`` if nothing is there, else the first free ``base-2``, ``base-3``, … (a default output never
    replaces an earlier one)."""
    path, i = base, 1
    while path.exists() or path.is_symlink():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def check_replaceable(out: Path, ours: Callable[[str], bool], command: str) -> None:
    """``out`` may be replaced by ``command``'s output: it does not exist, or holds only files ``ours`` accepts
    (an earlier run's), and its parent can be written."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a directory")
    if out.exists():
        others = sorted(f.name for f in out.iterdir() if not ours(f.name))
        if others:
            raise InputError(
                f"{out} holds files {command} did not write ({', '.join(others[:5])}); choose another --out"
            )
    check_writable_parent(out)


def claim_output(out: Path | None, default: Path, ours: Callable[[str], bool], command: str, force: bool) -> Path:
    """Where ``command`` writes: ``out`` if given — refused if it holds files ``command`` did not write, or an earlier
    result of it without ``force`` — else the first free ``default``, ``default-2``, … (never an earlier one)."""
    path = first_free(default) if out is None else Path(out)
    check_replaceable(path, ours, command)
    if path.is_dir() and any(path.iterdir()) and not force:
        raise InputError(
            f"{path} holds an earlier {command} output; pass --force to replace it, or choose another --out"
        )
    return path


@contextmanager
def atomic_directory(path: Path, *, replace: bool) -> Iterator[Path]:
    """A fresh temporary sibling of ``path`` to write into; on success it becomes ``path`` (an existing ``path`` is
    replaced only when ``replace`` is set, and only then). On any failure, Ctrl-C included, the temporary directory
    is removed and ``path`` is untouched.

    Raises :class:`InputError` before yielding if ``path`` exists and ``replace`` is not set, or if its parent is
    not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a directory")
    if path.exists() and any(path.iterdir()) and not replace:
        raise InputError(f"{path} already exists and is not empty")
    check_writable_parent(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.rmdir(old)
        os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(path.parent)
