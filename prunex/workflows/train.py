"""``prunex train`` as a function: build the configuration (or take a run's own to resume) and train.

trainer = prepare_train(dataset="digits", epochs=4)       # run directory claimed, model and data loaded
result = trainer.fit()                                    # checkpoint.pt every epoch, metrics.jsonl, config.json
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from prunex.train import TrainConfig, Trainer, TrainResult, build_config
from prunex.train.observer import TrainObserver
from prunex.train.recipes import resume_config


def prepare_train(
    *,
    resume: str | Path | None = None,
    config: str | Path | None = None,
    observer: TrainObserver | None = None,
    **options: Any,
) -> Trainer:
    """A :class:`~prunex.train.Trainer` for ``options`` (the fields of :class:`~prunex.train.TrainConfig`; ``None``
    means not given) over the recipe's defaults and the ``config`` file, or for resuming the run at ``resume``
    (then only how it executes may be given). ``observer`` is told how the run goes (default: nobody)."""
    return Trainer(_configuration(resume, config, options), resume=resume, observer=observer)


def _configuration(resume: str | Path | None, config: str | Path | None, options: dict[str, Any]) -> TrainConfig:
    """The run's configuration: recipe < ``config`` file < ``options`` for a new run; for a resumed one, the
    options that only say how it executes (any other is refused)."""
    if resume is not None:
        return resume_config({**options, "config": config})
    return build_config(options, str(config) if config else None)


def launch_train(
    argv: list[str],
    nproc_per_node: int,
    *,
    resume: str | Path | None = None,
    config: str | Path | None = None,
    **options: Any,
) -> int:
    """``prunex train --nproc-per-node N``: check here what can be checked before processes exist (every option, the
    run directory, the branch layout against N processes and the network), then start ``prunex train ARGV`` in N
    processes with ``torch.distributed.run`` (``--standalone``: one machine) and return their exit status."""
    from prunex.artifacts.errors import InputError
    from prunex.train.distributed import check_branch_parallel
    from prunex.train.new_model import check_branch_model
    from prunex.train.run_dir import check_new_run_dir

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InputError("--nproc-per-node starts the processes itself: run it without torchrun")
    cfg = _configuration(resume, config, options)
    check_branch_parallel(cfg.branch_parallel, nproc_per_node)
    if resume is None:
        check_branch_model(cfg.model, cfg.model_kwargs, cfg.branch_parallel)
        if cfg.out:
            check_new_run_dir(Path(cfg.out))
    runner = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc_per_node}"]
    return subprocess.run([*runner, "-m", "prunex", "train", *argv], check=False).returncode


def train_run(**options: Any) -> TrainResult:
    """``prunex train``: :func:`prepare_train` (same keyword arguments), then fit."""
    return prepare_train(**options).fit()
