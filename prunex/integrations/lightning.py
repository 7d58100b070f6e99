"""A PyTorch Lightning callback that runs a :class:`~prunex.train.StructureSchedule` (the ``lightning`` extra).

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = prunex.create_model("maskconnect_cifar", num_classes=10, in_chans=1)
            self.structure = StructureCallback(StructureSchedule.for_model(self.model, dataset="digits"))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.structure.objective(F.cross_entropy(self.model(x), y))

        def configure_optimizers(self):
            return self.structure.schedule.optimizer()

    net = Net()
    pl.Trainer(max_epochs=net.structure.schedule.epochs, callbacks=[net.structure]).fit(net, loader)

The callback starts each epoch as the schedule says (freezing MaskConnect's connectivity and renewing the optimiser
where a phase starts) and sets the learning rates before every batch; :meth:`StructureCallback.objective` adds the
resource term while DGConv's gates learn. The model fuses its own gates and projects its masks: nothing else to call.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from prunex.runtime.optional import require
from prunex.train.structure_schedule import StructureSchedule

pl = require("pytorch_lightning", "lightning", "prunex.integrations.lightning")


class StructureCallback(pl.Callback):
    """Follows ``schedule`` in a Lightning run of one optimiser (the one ``schedule.optimizer()`` made)."""

    def __init__(self, schedule: StructureSchedule) -> None:
        super().__init__()
        self.schedule = schedule
        self.epoch = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch = trainer.current_epoch
        self.schedule.start_epoch(self.epoch, _only_optimizer(trainer))

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        steps = trainer.num_training_batches
        self.schedule.set_lr(_only_optimizer(trainer), self.epoch, batch_idx, int(steps))

    def objective(self, loss: Tensor) -> Tensor:
        """The loss to minimise in this epoch (see :meth:`StructureSchedule.objective`)."""
        return self.schedule.objective(loss, self.epoch)


def _only_optimizer(trainer: pl.Trainer):
    optimizers = trainer.optimizers
    if len(optimizers) != 1:
        raise ValueError(f"a StructureCallback drives one optimiser; this run has {len(optimizers)}")
    return optimizers[0]
