"""The recipe of ``prunex train`` as an object a user's own training loop asks what to do.

A recipe is a list of phases (:class:`~prunex.train.config.Phase`): how many epochs, the learning rate of the weights
and of the gates, its schedule, and whether MaskConnect's connectivity is frozen at top-K when the phase starts.
DGConv's resource constraint multiplies the loss by (o/ζ)^α while ζ > o and the gates learn. ``prunex train``
(:class:`~prunex.train.loop.Trainer`) reads the same object, so a loop that follows it trains what ``prunex train``
trains from the same batches and random state:

    schedule = StructureSchedule.for_model(model, dataset="digits")
    optimizer = schedule.optimizer()
    for epoch in range(schedule.epochs):
        schedule.start_epoch(epoch, optimizer)       # freeze at top-K and a fresh optimizer state where a phase starts
        for step, (x, y) in enumerate(loader):
            schedule.set_lr(optimizer, epoch, step, len(loader))
            loss = schedule.objective(F.cross_entropy(model(x), y), epoch)  # the resource term while gates learn
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()                         # the masks are projected when next read: nothing to call

The gates are fused by the model itself (:func:`~prunex.nn.fuse_gates`); the schedule installs the fusion on a
model prunex did not build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from prunex.nn.fused_gates import fuse_gates
from prunex.nn.gates import branch_gate_modules, dgconv_modules
from prunex.train.config import ConfigError, Phase, TrainConfig
from prunex.train.resource import budget, constrained_loss
from prunex.train.schedule import lr_factor
from prunex.train.step import param_groups, sgd


@dataclass(frozen=True)
class EpochPlan:
    """What one epoch of the run is: its phase, where in the phase, whether the phase starts here, whether the gates
    learn (gate LR > 0: the resource term applies)."""

    epoch: int
    phase_index: int
    phase: Phase
    epoch_in_phase: int

    @property
    def starts_phase(self) -> bool:
        return self.epoch_in_phase == 0

    @property
    def learns_gates(self) -> bool:
        return self.phase.gate_lr > 0


class StructureSchedule:
    """The phases, optimiser groups, learning rates, freezing and resource term of a :class:`TrainConfig` for one
    model (see the module docstring for the loop that follows it)."""

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        if not config.phases:
            raise ConfigError("no training phases: pick a recipe or give phases")
        self.model, self.config = model, config
        self.fusion = fuse_gates(model)
        b = config.budget or (_learn_groups_of(model) or {}).get("budget")
        has_dgconv = any(m.num_gates for _, m in dgconv_modules(model))
        self.budget_o: float | None = budget(model, b) if b and has_dgconv else None

    @classmethod
    def for_model(
        cls, model: nn.Module, *, dataset: str = "digits", recipe: str = "auto", **options: Any
    ) -> StructureSchedule:
        """The schedule ``prunex train`` would use for ``model`` (its family read from the spec prunex attached) on
        ``dataset``: ``recipe`` auto / paper / quick, and any :class:`TrainConfig` field in ``options`` (``epochs``
        rescales the phases, ``budget``, ``alpha``, ``weight_decay``, ``phases``…). As in ``prunex train``, the
        recipe's budget (the DGConv quick recipe's b = 8) comes before one recorded by :func:`learn_groups`: give
        ``budget=`` to choose it."""
        from prunex.train.recipes import build_config

        spec = getattr(model, "prunex_spec", None)
        name = spec.name if spec is not None else type(model).__name__
        learn = _learn_groups_of(model)
        given = {"model": name, "dataset": dataset, "recipe": recipe, **options}
        if learn and "learn_groups" not in given:
            given["learn_groups"] = ",".join(learn.get("where") or ()) or "spatial"
        return cls(model, build_config(given))

    # -- the run's shape ----------------------------------------------------------------------------------
    @property
    def phases(self) -> tuple[Phase, ...]:
        return self.config.phases

    @property
    def epochs(self) -> int:
        return self.config.total_epochs

    def first_epoch(self, phase_index: int) -> int:
        """The epoch (from 0) at which phase ``phase_index`` starts."""
        return sum(p.epochs for p in self.phases[:phase_index])

    def plan(self, epoch: int) -> EpochPlan:
        """Epoch ``epoch`` (from 0) of the run."""
        start = 0
        for index, phase in enumerate(self.phases):
            if epoch < start + phase.epochs:
                return EpochPlan(epoch, index, phase, epoch - start)
            start += phase.epochs
        raise ValueError(f"epoch {epoch} is past the schedule's {self.epochs} epochs")

    # -- the optimiser ------------------------------------------------------------------------------------
    def param_groups(self, epoch: int = 0) -> list[dict[str, Any]]:
        """SGD parameter groups for the phase of ``epoch``: the weights (weight decay), the DGConv gates and the
        MaskConnect real masks (the phase's gate LR, no decay); ``base_lr`` is each group's LR before the schedule."""
        phase, cfg = self.plan(epoch).phase, self.config
        return param_groups(
            self.model,
            lr=phase.lr,
            gate_lr=phase.gate_lr,
            weight_decay=cfg.weight_decay,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
        )

    def optimizer(self, epoch: int = 0) -> torch.optim.SGD:
        """The optimiser ``prunex train`` starts the phase of ``epoch`` with (SGD, foreach)."""
        return sgd(self.param_groups(epoch))

    def start_epoch(self, epoch: int, optimizer: torch.optim.Optimizer) -> EpochPlan:
        """Call before each epoch. Where a phase starts: freeze MaskConnect's connectivity at top-K if the phase says
        so, and give ``optimizer`` the phase's groups and an empty state (what a new optimiser would have)."""
        plan = self.plan(epoch)
        if plan.starts_phase:
            self.enter_phase(plan.phase)
            if epoch > 0 or optimizer.state:
                reset_optimizer(optimizer, self.param_groups(epoch))
        return plan

    def enter_phase(self, phase: Phase) -> None:
        """What the model undergoes when ``phase`` starts: its connectivity frozen at top-K if the phase says so."""
        if phase.freeze_connectivity:
            for _, m in branch_gate_modules(self.model):
                m.freeze()

    def set_lr(self, optimizer: torch.optim.Optimizer, epoch: int, step: int, steps_per_epoch: int) -> float:
        """Every group's LR = its base LR × the phase's schedule at ``step`` of ``epoch``; returns the factor."""
        plan = self.plan(epoch)
        factor = lr_factor(plan.phase, plan.epoch_in_phase, step, steps_per_epoch)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        return factor

    # -- the loss -----------------------------------------------------------------------------------------
    def objective(self, loss: Tensor, epoch: int) -> Tensor:
        """``loss`` · (o/ζ)^α while ζ > o, for epochs whose gates learn and models with a budget; else ``loss``.
        Call after the forward pass (ζ is computed from that pass's gates)."""
        if self.budget_o is None or not self.plan(epoch).learns_gates:
            return loss
        return constrained_loss(loss, self.fusion.complexity(), self.budget_o, self.config.alpha)


def reset_optimizer(optimizer: torch.optim.Optimizer, groups: list[dict[str, Any]]) -> None:
    """Give ``optimizer`` these parameter groups and no state, as if it had just been made from them (a frozen
    mask leaves its group; momentum starts again)."""
    optimizer.state.clear()
    optimizer.param_groups.clear()
    for group in groups:
        optimizer.add_param_group(group)


def _learn_groups_of(model: nn.Module) -> dict[str, Any] | None:
    spec = getattr(model, "prunex_spec", None)
    return spec.learn_groups if spec is not None else None
