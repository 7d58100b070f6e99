"""Training: the papers' schedules (phases, gate learning, DGConv's resource constraint), checkpoints, DDP."""

from prunex.artifacts.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from prunex.models.from_checkpoint import build_model, model_from_checkpoint
from prunex.train.config import ConfigError, Phase, TrainConfig
from prunex.train.loop import SimulatedKill, Trainer, train
from prunex.train.recipes import build_config
from prunex.train.result import TrainResult

__all__ = [
    "CheckpointError",
    "ConfigError",
    "Phase",
    "SimulatedKill",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_config",
    "build_model",
    "load_checkpoint",
    "model_from_checkpoint",
    "save_checkpoint",
    "train",
]
