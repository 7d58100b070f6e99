"""The bottom layer every package may use: error kinds, safe outputs (atomic files and directories), run locks."""

from prunex.artifacts.errors import InputError, NotEquivalentError, PrunexError
from prunex.artifacts.layout import RunDirectory
from prunex.artifacts.outputs import (
    atomic_directory,
    atomic_file,
    atomic_write_bytes,
    atomic_write_text,
    check_replaceable,
    check_writable_parent,
    claim_output,
    first_free,
)
from prunex.artifacts.run_lock import RunLock, RunLockedError

__all__ = [
    "InputError",
    "NotEquivalentError",
    "PrunexError",
    "RunDirectory",
    "RunLock",
    "RunLockedError",
    "atomic_directory",
    "atomic_file",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_replaceable",
    "check_writable_parent",
    "claim_output",
    "first_free",
]
