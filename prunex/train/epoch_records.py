"""What each finished epoch leaves in the run directory: ``checkpoint.pt`` (atomic), then its ``metrics.jsonl`` line.

The log line is written after the checkpoint, so the log never runs ahead of it; a resumed run rewrites the log
from the checkpoint's history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from prunex.artifacts import atomic_write_text
from prunex.artifacts import layout as files
from prunex.artifacts.checkpoint import save_checkpoint
from prunex.data import DatasetInfo
from prunex.train.config import TrainConfig


@dataclass
class TrainState:
    """Where the run is, for an exact resume: the phase and epoch just finished, the optimiser and gradient scaler,
    every process's random generators."""

    phase: int
    epoch_in_phase: int
    epoch: int
    optimizer: dict[str, Any]
    scaler: dict[str, Any] | None
    rng: list[dict[str, Any]]
    world_size: int


def checkpoint_payload(
    model: nn.Module,
    info: DatasetInfo,
    config: TrainConfig,
    state: TrainState,
    history: list[dict[str, Any]],
    state_dict: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint format (version added by :func:`~prunex.artifacts.checkpoint.save_checkpoint`);
    ``state_dict`` replaces the model's own (a gathered one, under branch parallelism)."""
    return {
        "spec": model.prunex_spec.to_dict(),
        "state_dict": model.state_dict() if state_dict is None else state_dict,
        "dataset": {**vars(info), "root": config.data_root},
        "config": config.to_dict(),
        "train_state": vars(state),
        "history": history,
        "metrics": history[-1],
    }


def record_epoch(run_dir: Path, payload: dict[str, Any]) -> None:
    """Save the checkpoint, then append the epoch's metrics to the log."""
    save_checkpoint(run_dir / files.CHECKPOINT, payload)
    with open(run_dir / files.METRICS, "a") as f:
        f.write(json.dumps(payload["metrics"]) + "\n")


def rewrite_metrics_log(run_dir: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(run_dir / files.METRICS, "".join(json.dumps(m) + "\n" for m in history))
