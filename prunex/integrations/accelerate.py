"""A :class:`~prunex.train.StructureSchedule` in a Hugging Face Accelerate loop (``pip install -e ".[accelerate]"``).

Accelerate has no callbacks: its user writes the loop. :class:`AcceleratedStructure` is what that loop calls
instead::

    structure = AcceleratedStructure(StructureSchedule.for_model(model, dataset="digits"), Accelerator())
    model, optimizer, loader = structure.prepare(loader)     # the schedule's model and optimiser, prepared
    for epoch in structure.epochs(loader):                   # phase starts: freezing, a renewed optimiser
        for step, (x, y) in enumerate(loader):
            structure.set_lr(step, len(loader))
            loss = structure.objective(F.cross_entropy(model(x), y))
            structure.accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()

The model fuses its own gates and projects its masks, under DistributedDataParallel too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from prunex.runtime.optional import require
from prunex.train.structure_schedule import StructureSchedule

accelerate = require("accelerate", "accelerate", "prunex.integrations.accelerate")


class AcceleratedStructure:
    """``schedule`` followed in a loop that ``accelerator`` runs (one optimiser: the schedule's)."""

    def __init__(self, schedule: StructureSchedule, accelerator: accelerate.Accelerator) -> None:
        self.schedule, self.accelerator = schedule, accelerator
        self.optimizer: torch.optim.Optimizer | None = None
        self.epoch = 0

    def prepare(self, *loaders: Any) -> tuple[Any, ...]:
        """(model, optimizer, *loaders) as ``accelerator.prepare`` returns them; the optimiser is the schedule's."""
        prepared = self.accelerator.prepare(self.schedule.model, self.schedule.optimizer(), *loaders)
        self.optimizer = prepared[1]
        return prepared

    def epochs(self, loader: Any = None) -> Iterator[int]:
        """The run's epochs; each starts as the schedule says (and sets ``loader``'s sampler epoch)."""
        if self.optimizer is None:
            raise RuntimeError("call prepare() first: the schedule's optimiser is prepared there")
        for epoch in range(self.schedule.epochs):
            self.epoch = epoch
            self.schedule.start_epoch(epoch, self.optimizer)
            if loader is not None and hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            yield epoch

    def set_lr(self, step: int, steps_per_epoch: int) -> float:
        """The learning rates of ``step`` in the current epoch (see :meth:`StructureSchedule.set_lr`)."""
        return self.schedule.set_lr(self.optimizer, self.epoch, step, steps_per_epoch)

    def objective(self, loss: Tensor) -> Tensor:
        """The loss to minimise in the current epoch (see :meth:`StructureSchedule.objective`)."""
        return self.schedule.objective(loss, self.epoch)
