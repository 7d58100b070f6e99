"""Where a run writes, and the rules that keep it from destroying earlier work.

A run directory holds ``config.json``, ``checkpoint.pt`` (every epoch, atomic) and ``metrics.jsonl``. A new run
only starts in a directory that holds none of them; a resumed run continues in its own directory only if
nothing there is newer than the checkpoint it starts from (else it continues into a new directory, ``--out``);
and one process at a time writes into a directory (:class:`~prunex.artifacts.RunLock`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prunex.artifacts import first_free
from prunex.artifacts import layout as files
from prunex.artifacts.checkpoint import CheckpointError, load_checkpoint
from prunex.train.config import ConfigError, TrainConfig

TRAIN_STATE_KEYS = ("phase", "epoch_in_phase", "epoch", "optimizer", "rng")


def next_run_dir(config: TrainConfig) -> Path:
    """``--out`` if given, else the first free ``runs/<model>-<dataset>[-N]`` (``torchvision:resnet50`` and
    ``package.module:build`` become ``torchvision-resnet50`` and ``package.module-build``)."""
    if config.out:
        return Path(config.out)
    return first_free(Path("runs") / f"{config.model.replace(':', '-')}-{config.dataset}")


def check_new_run_dir(path: Path) -> None:
    """Refuse a directory that already holds (part of) a run."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file, not a directory")
    taken = [f for f in files.RUN_FILES if (path / f).exists()]
    if files.CHECKPOINT in taken:
        raise ConfigError(f"{path} already holds a run; resume it with --resume {path} or pick a new --out")
    if taken:
        raise ConfigError(
            f"{path} already holds {', '.join(taken)} (a run that stopped before its first epoch ended leaves "
            f"{files.CONFIG}); pick a new --out, or delete {path} to start again there"
        )


def write_config(path: Path, config: TrainConfig) -> None:
    path.mkdir(parents=True, exist_ok=True)
    from prunex.artifacts import atomic_write_text

    atomic_write_text(path / files.CONFIG, json.dumps(config.to_dict(), indent=2) + "\n")


def resumable(ckpt: dict[str, Any], path: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The run configuration and training state of a checkpoint, checked before anything uses them."""
    state, config = ckpt.get("train_state"), ckpt.get("config")
    if not isinstance(state, dict) or any(k not in state for k in TRAIN_STATE_KEYS):
        raise CheckpointError(f"{path}: has no complete training state to resume from (written by another tool?)")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: has no training configuration to resume with")
    try:
        config = TrainConfig.from_dict(config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its training configuration is not usable: {err}") from None
    if not isinstance(state["rng"], list) or not state["rng"]:
        raise CheckpointError(f"{path}: its training state has no random-generator states")
    return config, state


def _epoch_of(path: Path) -> int | None:
    try:
        state = load_checkpoint(path).get("train_state")
    except CheckpointError:
        return None
    return state.get("epoch") if isinstance(state, dict) else None


def _logged_epochs(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    except (OSError, UnicodeDecodeError):
        return 0


def resume_dir(ckpt_path: Path, state: dict[str, Any], history: list, out: Path | None) -> Path:
    """The directory a resumed run writes into: ``out`` if given (a new directory), else the checkpoint's own —
    unless that directory holds work newer than the checkpoint, which resuming there would overwrite."""
    if out is not None and out.resolve() != ckpt_path.parent.resolve():
        check_new_run_dir(out)
        return out
    run = ckpt_path.parent
    epoch = state.get("epoch", 0)
    latest = run / files.CHECKPOINT
    newer = None
    if latest.resolve() != ckpt_path.resolve() and latest.exists():
        latest_epoch = _epoch_of(latest)
        if latest_epoch is None or latest_epoch > epoch:
            newer = f"{latest} (epoch {latest_epoch})" if latest_epoch is not None else str(latest)
    logged = _logged_epochs(run / files.METRICS)
    if newer is None and logged > len(history):
        newer = f"{run / files.METRICS} ({logged} epochs logged)"
    if newer is not None:
        raise ConfigError(
            f"{ckpt_path} is at epoch {epoch}, but {run} holds newer work: {newer}; resuming there would overwrite "
            f"it. Resume {run} itself, or continue this checkpoint in a new directory with --out NEW_DIR"
        )
    return run
