"""What a finished run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    metrics: dict[str, Any]  # the last epoch's
    history: list[dict[str, Any]] = field(default_factory=list)  # every epoch's, this run's and the resumed ones
    seconds: float = 0.0
