"""Training: the papers' schedules (phases, gate learning, DGConv's resource constraint), checkpoints, DDP.

The names below are imported when first used, so that the torch-free vocabulary (``prunex.train.choices``, read by
``prunex train --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "CheckpointError": "prunex.artifacts.checkpoint",
    "load_checkpoint": "prunex.artifacts.checkpoint",
    "save_checkpoint": "prunex.artifacts.checkpoint",
    "build_model": "prunex.models.from_checkpoint",
    "model_from_checkpoint": "prunex.models.from_checkpoint",
    "Recipe": "prunex.train.choices",
    "Schedule": "prunex.train.choices",
    "ConfigError": "prunex.train.config",
    "Phase": "prunex.train.config",
    "TrainConfig": "prunex.train.config",
    "Trainer": "prunex.train.loop",
    "train": "prunex.train.loop",
    "RunStart": "prunex.train.observer",
    "TrainObserver": "prunex.train.observer",
    "build_config": "prunex.train.recipes",
    "EpochPlan": "prunex.train.structure_schedule",
    "StructureSchedule": "prunex.train.structure_schedule",
    "TrainResult": "prunex.train.result",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'prunex.train' has no attribute {name!r}")


__all__ = sorted(_HOMES)
