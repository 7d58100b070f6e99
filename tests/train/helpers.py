"""Tiny configurations that train in seconds on the CPU."""

import atexit
import shutil
import tempfile
from pathlib import Path

from prunex.train import Phase, TrainConfig
from prunex.train.observer import TrainObserver

TINY_MASKCONNECT = dict(depth=11, bottleneck_width=4, cardinality=4, fan_in=2)


def tiny_config(out, **overrides) -> TrainConfig:
    base = dict(
        model="maskconnect_cifar",
        model_kwargs=dict(TINY_MASKCONNECT),
        dataset="synthetic",
        phases=(
            Phase("learn-connectivity", 2, 0.05, gate_lr=0.2),
            Phase("fine-tune", 2, 0.05, freeze_connectivity=True, schedule="cosine"),
        ),
        batch_size=64,
        out=str(out),
        seed=7,
    )
    base.update(overrides)
    return TrainConfig(**base)


class SimulatedKill(RuntimeError):
    """A run stopped abruptly by :class:`KillAfter` (tests of resume)."""


class KillAfter(TrainObserver):
    """Stops the run (:class:`SimulatedKill`) once ``steps`` optimisation steps are done, as a kill would."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def step_done(self, steps_done: int) -> None:
        if steps_done >= self.steps:
            raise SimulatedKill(f"stopped after {steps_done} steps")


_TRAINED: Path | None = None  # the one tiny run of this test session, copied for every caller


def trained_and_compressed_run(run):
    """One epoch of the tiny MaskConnect on synthetic data in ``run``, compressed into ``run/compressed``: trained
    once per test session (training is deterministic) and copied, so every caller gets its own run directory."""
    global _TRAINED
    if _TRAINED is None:
        _TRAINED = Path(tempfile.mkdtemp(prefix="prunex-tests-")) / "run"
        atexit.register(shutil.rmtree, _TRAINED.parent, True)
        _train_and_compress(_TRAINED)
    shutil.copytree(_TRAINED, run)
    return Path(run)


def _train_and_compress(run):
    import json

    import torch

    from prunex.artifacts.compressed_model import save_compressed
    from prunex.passes import compress
    from prunex.train import model_from_checkpoint, train

    train(tiny_config(run, phases=tiny_config(run).phases[:1]))
    model, ckpt = model_from_checkpoint(run)
    gm, report = compress(model, torch.randn(2, 3, 16, 16))
    meta = {"source": ckpt["spec"], "input_shape": report.input_shape, "dataset": ckpt["dataset"]}
    save_compressed(gm, run / "compressed", meta)
    (run / "compressed" / "report.json").write_text(json.dumps(report.to_json()))
    return run
