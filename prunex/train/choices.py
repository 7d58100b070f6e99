"""The training choices a user spells as words (imports nothing heavy: ``prunex train --help`` reads it)."""

from __future__ import annotations

from enum import StrEnum


class Recipe(StrEnum):
    """Which schedule a run's family gets: ``paper`` (the paper's, for CIFAR and image folders), ``quick`` (the
    same shape at a length that runs in minutes on a CPU), ``auto`` (paper on CIFAR / image folders, else quick)."""

    AUTO = "auto"
    QUICK = "quick"
    PAPER = "paper"


class Schedule(StrEnum):
    """The learning rate within a phase: ``constant``; ``step`` (× gamma at each milestone); ``cosine`` (to 0)."""

    CONSTANT = "constant"
    STEP = "step"
    COSINE = "cosine"
