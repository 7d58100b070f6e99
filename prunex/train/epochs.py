"""One training epoch and one evaluation: running sums kept on the device, read back once at the end.

Loss and accuracy accumulate as device tensors (no host–device sync per step); the progress bar reads them back at
most every :data:`PROGRESS_REFRESH_S` seconds; the epoch's totals are summed over processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from prunex.train import distributed as dist_utils
from prunex.train.config import Phase
from prunex.train.distributed import DistContext
from prunex.train.schedule import lr_factor
from prunex.train.step import TrainStep, autocast_dtype

PROGRESS_REFRESH_S = 0.5  # the running loss / accuracy on the progress bar is read back from the device this often

StepCallback = Callable[[], None]  # after each step
RunningCallback = Callable[[float, float], None]  # running mean loss and accuracy, when read back


@dataclass(frozen=True)
class Evaluation:
    """Mean loss, top-1 and top-5 accuracy over a test set (top-5: None for fewer than 5 classes)."""

    loss: float
    accuracy: float
    top5: float | None


def top_k_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """How many rows have their label among their ``k`` largest logits (a device tensor: nothing read back)."""
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(1).sum()


def crop_log_probabilities(logits: torch.Tensor, crops: int) -> torch.Tensor:
    """log p for each image: log softmax of its logits, or with ``crops`` > 1 (rows image-major, crops consecutive)
    log of the mean over its crops of the softmax, p = (1/m)·Σ_c softmax(z_c)."""
    if crops == 1:
        return nn.functional.log_softmax(logits, 1)
    return nn.functional.softmax(logits, 1).view(-1, crops, logits.shape[1]).mean(1).log()


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Every group's learning rate = its base rate × ``factor``."""
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor


@dataclass
class EpochRunner:
    """How batches reach the model on this process: device, memory format, mixed precision."""

    model: nn.Module
    ctx: DistContext
    channels_last: bool
    use_amp: bool

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = x.to(self.ctx.device, non_blocking=True), y.to(self.ctx.device, non_blocking=True)
        return (x.contiguous(memory_format=torch.channels_last) if self.channels_last else x), y

    def train_epoch(
        self,
        step_fn: TrainStep,
        batches: Iterable,
        optimizer: torch.optim.Optimizer,
        phase: Phase,
        epoch_in_phase: int,
        on_step: StepCallback | None = None,
        on_running: RunningCallback | None = None,
    ) -> tuple[float, float]:
        """Mean training loss and accuracy over the epoch (all processes), the learning rate following the phase's
        schedule step by step. ``on_running`` gets the running means (read back from the device) at most every
        :data:`PROGRESS_REFRESH_S` seconds and after the last step; without it nothing is read back until the end."""
        self.model.train()
        dev, steps = self.ctx.device, len(batches)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        count, shown = 0, time.perf_counter()
        for step, (x, y) in enumerate(batches):
            set_lr(optimizer, lr_factor(phase, epoch_in_phase, step, steps))
            x, y = self._to_device(x, y)
            loss, logits = step_fn(x, y, optimizer, learn_gates=phase.gate_lr > 0)
            loss_sum += loss.detach() * y.numel()
            correct += (logits.detach().argmax(1) == y).sum()
            count += y.numel()
            if on_running is not None and (step + 1 == steps or time.perf_counter() - shown > PROGRESS_REFRESH_S):
                on_running(float(loss_sum) / count, float(correct) / count)
                shown = time.perf_counter()
            if on_step is not None:
                on_step()
        return self._mean(float(loss_sum), float(correct), count)

    @torch.no_grad()
    def evaluate(self, batches: Iterable) -> Evaluation:
        """Mean test loss, top-1 and top-5 accuracy (all processes; autocast as in training); top-5 is None for
        fewer than 5 classes. A batch of crops (N, crops, C, H, W) is scored by its mean softmax over the crops
        (ten-crop testing)."""
        self.model.eval()
        dev = self.ctx.device
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        correct5 = torch.zeros((), dtype=torch.int64, device=dev)
        count, classes = 0, 0
        for x, y in batches:
            crops = x.shape[1] if x.dim() == 5 else 1
            x, y = self._to_device(x.flatten(0, 1) if crops > 1 else x, y)
            with torch.autocast(dev.type, dtype=autocast_dtype(dev), enabled=self.use_amp):
                logits = self.model(x)
            log_p = crop_log_probabilities(logits.float(), crops)
            loss_sum += nn.functional.nll_loss(log_p, y, reduction="sum")
            correct += (log_p.argmax(1) == y).sum()
            classes = log_p.shape[1]
            correct5 += top_k_correct(log_p, y, min(5, classes))
            count += y.numel()
        loss_total, correct_total, correct5_total, count_total = dist_utils.all_reduce_sum(
            self.ctx, [float(loss_sum), float(correct), float(correct5), count]
        )
        n = max(count_total, 1)
        return Evaluation(loss_total / n, correct_total / n, correct5_total / n if classes >= 5 else None)

    def _mean(self, loss_sum: float, correct: float, count: int) -> tuple[float, float]:
        loss_total, correct_total, count_total = dist_utils.all_reduce_sum(self.ctx, [loss_sum, correct, count])
        return loss_total / max(count_total, 1), correct_total / max(count_total, 1)
