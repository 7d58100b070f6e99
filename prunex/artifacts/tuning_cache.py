"""The tuning cache: measured latencies of candidate realisations, one JSON file shared by every compile.

Format (version 2)::

    {"format": "prunex.tuning-cache", "version": 2,
     "entries": {"<device fingerprint> || <target> || <layer signature>": {"<realisation>": milliseconds, ...}}}

at ``~/.cache/prunex/tuning.json`` or ``$PRUNEX_CACHE_DIR/tuning.json`` (or ``--tuning-cache``). Version 1 (prunex
0.2) was the bare ``entries`` table; it is read as is and written back as version 2.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from prunex.artifacts.errors import InputError
from prunex.artifacts.outputs import atomic_write_text

FORMAT = "prunex.tuning-cache"
VERSION = 2
KEY_SEPARATOR = " || "
_MAX_BYTES = 256 << 20
_HEADER = f'{{"format": "{FORMAT}"'  # how every file this version writes begins (the test for a truncated one)


class TuningCacheError(InputError):
    """The path given as the tuning cache is not one (a directory, another program's file, a newer format)."""


class _Damaged(ValueError):
    """A file prunex recognises as its tuning cache whose contents cannot be used."""


def default_cache_path() -> Path:
    root = os.environ.get("PRUNEX_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "prunex")
    return Path(root) / "tuning.json"


def _checked_entries(entries: Any) -> dict[str, dict[str, float]]:
    if not isinstance(entries, dict):
        raise _Damaged(f"its entries are a {type(entries).__name__}, not a table")
    for key, timings in entries.items():
        if not isinstance(timings, dict) or not timings:
            raise _Damaged(f"entry {key[:60]!r} is not a table of timings")
        for name, ms in timings.items():
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
                raise _Damaged(f"entry {key[:60]!r} has the timing {name} = {ms!r}")
    return entries


def _is_version_1(data: Any) -> bool:
    """prunex 0.2's cache: a table whose keys all have the ``a || b || c`` shape (``{}`` included)."""
    return isinstance(data, dict) and all(isinstance(k, str) and k.count(KEY_SEPARATOR) >= 2 for k in data)


def read_cache_file(path: Path) -> dict[str, dict[str, float]]:
    """The entries of the cache at ``path`` ({} when there is none yet).

    Raises :class:`TuningCacheError` when ``path`` is not a prunex tuning cache (nothing is touched), and
    ``_Damaged`` when it is one whose contents are unusable.
    """
    if not (path.exists() or path.is_symlink()):
        return {}
    if path.is_dir():
        raise TuningCacheError(
            f"--tuning-cache {path} is a directory, not a prunex tuning cache; give a file, e.g. {path / 'tuning.json'}"
        )
    try:
        size = path.stat().st_size
        raw = b"" if size > _MAX_BYTES else path.read_bytes()
    except OSError as err:
        raise TuningCacheError(f"--tuning-cache {path}: cannot be read ({err.strerror or err})") from err
    text = raw.decode("utf-8", errors="replace").lstrip()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        if text.startswith(_HEADER):
            raise _Damaged(f"not valid JSON ({str(err).splitlines()[0]})") from err
        data = None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        version = data.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
            raise TuningCacheError(f"--tuning-cache {path} was written by a newer prunex (version {version})")
        if version != VERSION:
            raise _Damaged(f"its version is {version!r}")
        return _checked_entries(data.get("entries"))
    if _is_version_1(data):
        return _checked_entries(data)
    raise TuningCacheError(
        f"--tuning-cache {path} is not a prunex tuning cache (it holds something else); it is left as it is — give "
        "a new file or an earlier cache"
    )


def check_tuning_cache(path: str | Path | None) -> Path:
    """The cache path (``None``: the default), refused now if it is not a prunex tuning cache. A damaged cache of
    prunex's own passes: it is set aside when it is opened."""
    path = Path(path) if path is not None else default_cache_path()
    with contextlib.suppress(_Damaged):
        read_cache_file(path)
    return path


class TuningCache:
    """Measured candidate times: {fingerprint + target + layer signature: {candidate: ms}} in one JSON file.

    A path that is not a prunex tuning cache — a directory, another program's file — is refused
    (:class:`TuningCacheError`) and never moved or written. A cache of prunex's own whose contents cannot be used
    (unreadable JSON after prunex's header, wrong shape, negative or non-finite times) is moved aside
    (``tuning.json.damaged-<time>``), its timings are measured again, and :attr:`warnings` says so. A cache that
    cannot be written is left as it was (with a warning).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.entries: dict[str, dict[str, float]] = {}
        self.warnings: list[str] = []
        self.writable = True
        try:
            self.entries = read_cache_file(self.path)
        except _Damaged as err:
            self._set_aside(str(err))

    def _set_aside(self, reason: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            if aside.exists():
                raise FileExistsError(f"{aside} exists")
            os.rename(self.path, aside)
            where = f"moved to {aside}"
        except OSError as err:
            self.writable = False
            where = f"left in place (cannot move it: {err.strerror or err}); it will not be written"
        self.warnings.append(f"tuning cache {self.path} is damaged ({reason}); {where}; its timings are re-measured")

    @staticmethod
    def key(fingerprint: str, target: str, signature: str) -> str:
        """One entry: the device (name and library versions), the target (backend, dtype, batch, layout) and the
        layer's signature."""
        return KEY_SEPARATOR.join((fingerprint, target, signature))

    def get(self, key: str) -> dict[str, float] | None:
        return self.entries.get(key)

    def put(self, key: str, timings: dict[str, float]) -> None:
        self.entries[key] = timings

    def save(self) -> None:
        if not self.writable:
            return
        body = json.dumps(self.entries, indent=1, sort_keys=True)
        text = f'{_HEADER}, "version": {VERSION},\n "entries": {body}}}\n'
        try:
            atomic_write_text(self.path, text)
        except (OSError, InputError) as err:
            self.warnings.append(f"tuning cache {self.path} was not saved: {getattr(err, 'strerror', None) or err}")
