"""Learning rate within a phase as a pure function of progress (so a resumed run needs no scheduler state)."""

from __future__ import annotations

import math

from prunex.train.choices import Schedule
from prunex.train.config import Phase


def lr_factor(phase: Phase, epoch_in_phase: int, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the phase's base LR at ``step`` of ``epoch_in_phase`` (both from 0)."""
    t = (epoch_in_phase + step / max(steps_per_epoch, 1)) / phase.epochs
    if phase.schedule is Schedule.COSINE:
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if phase.schedule is Schedule.STEP:
        passed = sum(1 for m in phase.milestones if epoch_in_phase >= round(m * phase.epochs))
        return phase.gamma**passed
    return 1.0
