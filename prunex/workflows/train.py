"""``prunex train`` as a function: build the configuration (or take a run's own to resume) and train.

trainer = prepare_train(dataset="digits", epochs=4)       # run directory claimed, model and data loaded
result = trainer.fit()                                    # checkpoint.pt every epoch, metrics.jsonl, config.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from prunex.train import Trainer, TrainResult, build_config
from prunex.train.recipes import resume_config


def prepare_train(
    *,
    resume: str | Path | None = None,
    config: str | Path | None = None,
    console: Console | None = None,
    quiet: bool = False,
    **options: Any,
) -> Trainer:
    """A :class:`~prunex.train.Trainer` for ``options`` (the fields of :class:`~prunex.train.TrainConfig`; ``None``
    means not given) over the recipe's defaults and the ``config`` file, or for resuming the run at ``resume``
    (then only how it executes may be given)."""
    if resume is not None:
        cfg = resume_config({**options, "config": config})
    else:
        cfg = build_config(options, str(config) if config else None)
    return Trainer(cfg, resume=resume, console=console, quiet=quiet)


def train_run(**options: Any) -> TrainResult:
    """``prunex train``: :func:`prepare_train` (same keyword arguments), then fit."""
    return prepare_train(**options).fit()
