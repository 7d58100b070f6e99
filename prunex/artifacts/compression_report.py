"""``report.json`` of a compressed model: reading it, and reading reports older runs wrote.

Migration: reports written before prunex 0.2 name multiply-accumulate counts ``flops`` (per pass) and
``flops_before`` / ``flops_after`` (totals), and may list the remaining gathers as bare names; they are read as
``macs`` / ``macs_before`` / ``macs_after`` and ``{"gather": name, "forced_by": null}``. The file itself is left as
it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RENAMED = {"flops": "macs", "flops_before": "macs_before", "flops_after": "macs_after"}


def _renamed(entry: dict[str, Any]) -> dict[str, Any]:
    return {RENAMED.get(k, k): v for k, v in entry.items()}


def upgrade_report(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with the current key names (a copy; a current report comes back equal)."""
    out = dict(report)
    if isinstance(out.get("totals"), dict):
        out["totals"] = _renamed(out["totals"])
    if isinstance(out.get("passes"), list):
        out["passes"] = [_renamed(p) if isinstance(p, dict) else p for p in out["passes"]]
    gathers = out.get("gathers_remaining", [])
    out["gathers_remaining"] = [g if isinstance(g, dict) else {"gather": g, "forced_by": None} for g in gathers]
    return out


def read_report(path: Path) -> dict[str, Any] | None:
    """The report at ``path`` in the current format, or None if there is none or it cannot be read."""
    try:
        report = json.loads(Path(path).read_bytes().decode("utf-8")) if Path(path).is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return upgrade_report(report) if isinstance(report, dict) else None
