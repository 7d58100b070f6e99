"""The tuning cache: measured latencies of candidate realisations, one JSON file shared by every compile.

Format: ``{"<device fingerprint> || <target> || <layer signature>": {"<realisation>": milliseconds, ...}, ...}``
(``~/.cache/prunex/tuning.json``, or ``$PRUNEX_CACHE_DIR/tuning.json``).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from prunex.artifacts.errors import InputError
from prunex.artifacts.outputs import atomic_write_text


def default_cache_path() -> Path:
    root = os.environ.get("PRUNEX_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "prunex")
    return Path(root) / "tuning.json"


class TuningCache:
    """Measured candidate times: {fingerprint + target + layer signature: {candidate: ms}} in one JSON file.

    A cache file that cannot be used — not UTF-8, not JSON, not that shape, negative or non-finite times, a
    directory, unreadable — is never fatal: it is moved aside (``tuning.json.damaged-<time>``) when possible, its
    timings are measured again, and :attr:`warnings` says what happened. A cache that cannot be written is left as
    it was (with a warning).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.entries: dict[str, dict[str, float]] = {}
        self.warnings: list[str] = []
        self.writable = True
        if self.path.exists():
            try:
                self.entries = self._read()
            except (OSError, UnicodeDecodeError, ValueError) as err:
                self._set_aside(str(err).splitlines()[0] if str(err) else type(err).__name__)

    def _read(self) -> dict[str, dict[str, float]]:
        data = json.loads(self.path.read_bytes().decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"a JSON object was expected, not {type(data).__name__}")
        for key, timings in data.items():
            if not isinstance(timings, dict) or not timings:
                raise ValueError(f"entry {key[:60]!r} is not a table of timings")
            for name, ms in timings.items():
                if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
                    raise ValueError(f"entry {key[:60]!r} has the timing {name} = {ms!r}")
        return data

    def _set_aside(self, reason: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.rename(self.path, aside)
            where = f"moved to {aside}"
        except OSError as err:
            self.writable = False
            where = f"left in place (cannot move it: {err.strerror or err}); it will not be written"
        self.warnings.append(f"tuning cache {self.path} is unusable ({reason}); {where}; its timings are re-measured")

    @staticmethod
    def key(fingerprint: str, target: str, signature: str) -> str:
        """One entry: the device (name and library versions), the target (backend, dtype, batch, layout) and the
        layer's signature."""
        return f"{fingerprint} || {target} || {signature}"

    def get(self, key: str) -> dict[str, float] | None:
        return self.entries.get(key)

    def put(self, key: str, timings: dict[str, float]) -> None:
        self.entries[key] = timings

    def save(self) -> None:
        if not self.writable:
            return
        try:
            atomic_write_text(self.path, json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        except (OSError, InputError) as err:
            self.warnings.append(f"tuning cache {self.path} was not saved: {getattr(err, 'strerror', None) or err}")
