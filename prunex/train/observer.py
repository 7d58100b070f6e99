"""What a training run reports as it goes: :class:`TrainObserver`, whose every method does nothing (a silent run).

The trainer prints nothing; whoever wants to see the run passes an observer (the CLI's draws a progress bar per
epoch and a summary table: :mod:`prunex.cli.views.train`), as compress takes ``on_pass`` and bench ``on_row``.
Every process of a distributed run calls its observer; :attr:`RunStart.is_main` says which one speaks for the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunex.train.config import TrainConfig
from prunex.train.result import TrainResult


@dataclass(frozen=True)
class RunStart:
    """A run about to train (or resume): what, on what, and where it writes."""

    config: TrainConfig
    params: int  # weights of the network
    gates: int  # gates it learns
    device: str
    world_size: int  # processes
    run_dir: Path
    first_epoch: int  # epochs already done (a resumed run)
    is_main: bool  # this process writes the run directory and speaks for the run

    @property
    def resuming(self) -> bool:
        return self.first_epoch > 0


class TrainObserver:
    """Told what a run does; subclass and override what you need (every method here does nothing)."""

    wants_running = False  # True: :meth:`running` gets the running loss (each call reads it back from the device)

    def run_started(self, start: RunStart) -> None:
        """Before the first epoch."""

    def epoch_started(self, label: str, steps: int) -> None:
        """An epoch of ``steps`` optimisation steps begins (``label``: its phase and number)."""

    def step_done(self, steps_done: int) -> None:
        """One optimisation step is done (``steps_done`` of this process so far)."""

    def running(self, loss: float, accuracy: float) -> None:
        """The epoch's running mean loss and accuracy (at most a few times a second; only if :attr:`wants_running`)."""

    def epoch_ended(self, metrics: dict[str, Any]) -> None:
        """An epoch is done and checkpointed; ``metrics`` is its line of ``metrics.jsonl``."""

    def phases_ended(self) -> None:
        """Training stopped: after the last epoch, or on an error or an interruption."""

    def run_ended(self, result: TrainResult) -> None:
        """The run finished every phase."""
