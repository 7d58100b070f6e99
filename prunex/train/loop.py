"""The training loop: a run's phases in order, each epoch checkpointed, resumable exactly where it stopped.

Set-up (new run or resume) is :class:`Trainer`'s constructor; :meth:`Trainer.fit` runs the phases. The pieces have
their own modules: batches (:mod:`~prunex.train.loaders`), one epoch (:mod:`~prunex.train.epochs`), one step
(:mod:`~prunex.train.step`), what an epoch writes (:mod:`~prunex.train.epoch_records`), who is told what happens
(:mod:`~prunex.train.observer`), random state (:mod:`~prunex.train.rng_state`).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from prunex.artifacts import RunLock, check_writable_parent
from prunex.artifacts import layout as files
from prunex.artifacts.checkpoint import load_checkpoint
from prunex.artifacts.layout import checkpoint_file
from prunex.data import load_dataset
from prunex.models import GroupLearning, count_parameters
from prunex.models.from_checkpoint import build_model
from prunex.nn.branch_parallel import (
    BranchLayoutError,
    check_branch_layout,
    full_optimizer_state,
    full_state_dict,
    shard_branches,
    shard_optimizer_state,
)
from prunex.train import distributed as dist_utils
from prunex.train.config import ConfigError, TrainConfig
from prunex.train.epoch_records import TrainState, checkpoint_payload, record_epoch, rewrite_metrics_log
from prunex.train.epochs import EpochRunner
from prunex.train.gate_report import gate_report
from prunex.train.loaders import check_batch_fits, make_loaders
from prunex.train.new_model import build_new_model, check_branch_model, model_kwargs_for, retrained_structure
from prunex.train.observer import RunStart, TrainObserver
from prunex.train.result import TrainResult
from prunex.train.rng_state import capture_rng_state, restore_rng_state, seed_everything
from prunex.train.run_dir import check_new_run_dir, next_run_dir, resumable, resume_dir, write_config
from prunex.train.schedule import lr_factor
from prunex.train.step import TrainStep
from prunex.train.structure_schedule import StructureSchedule


class Trainer:
    """Runs a :class:`TrainConfig` (or resumes a run) on one process or under torchrun."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: str | Path | None = None,
        observer: TrainObserver | None = None,
    ) -> None:
        if resume is None:  # a layout the network cannot take is said before any process group is joined
            check_branch_model(config.model, config.model_kwargs, config.branch_parallel)
        self.ctx = dist_utils.setup(config.device, config.branch_parallel)
        self.observer = observer or TrainObserver()
        self.steps_done = 0
        self.start = (0, 0)  # (phase index, epoch in phase) to run next
        self.history: list[dict[str, Any]] = []
        self.resumed_state: dict[str, Any] | None = None
        self._lock: RunLock | None = None
        if resume is not None:
            config, ckpt = self._resume_from(Path(resume), config)
        self.config = config
        if not config.phases:
            raise ConfigError("no training phases: pick a recipe or give phases in a config file")
        seed_everything(config.seed + self.ctx.data_rank)  # a branch group's ranks draw the same batches
        self.data = load_dataset(
            config.dataset,
            config.data_root,
            image_size=config.image_size,
            augment=config.augment,
            normalisation=config.normalisation,
            pipeline=config.pipeline,
            ten_crop=config.ten_crop,
        )
        check_batch_fits(config.batch_size, len(self.data.train), self.ctx.data_size)
        if resume is not None:
            self.model = build_model(ckpt["spec"], ckpt["state_dict"])
            self._check_branch_layout()  # before the run directory is taken
            self._continue_run(ckpt)
        else:
            kwargs = model_kwargs_for(config.model, config.model_kwargs, self.data.info)
            grouping = GroupLearning.parse(config.learn_groups) if config.learn_groups else None
            self.model = build_new_model(config.model, kwargs, config.weights, grouping)
            if config.structure_from:
                self.model = retrained_structure(self.model, config.structure_from)
            self._check_branch_layout()
            self.run_dir = self._claim_run_dir()
        if self.ctx.branch is not None:
            shard_branches(self.model, self.ctx.branch)
        self.channels_last = self.ctx.device.type == "cuda" if config.channels_last is None else config.channels_last
        self.model.to(self.ctx.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.checkpoint_path = self.run_dir / files.CHECKPOINT
        self.use_amp = config.amp and self.ctx.device.type == "cuda"
        self.schedule = StructureSchedule(self.model, config)  # phases, groups, freezing, the resource term

    # -- set-up ----------------------------------------------------------------------------------------
    def _resume_from(self, resume: Path, given: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
        """The run's own configuration, with only how it executes taken from ``given``; and its checkpoint."""
        self.ckpt_path = checkpoint_file(resume)
        ckpt = load_checkpoint(self.ckpt_path)
        base, self.resumed_state = resumable(ckpt, self.ckpt_path)
        self.history = list(ckpt.get("history", []))
        out = Path(given.out) if given.out else None
        self.run_dir = resume_dir(self.ckpt_path, self.resumed_state, self.history, out) if self.ctx.is_main else out
        config = replace(
            base,
            device=given.device,
            workers=given.workers,
            compile=given.compile,
            channels_last=given.channels_last,
            branch_parallel=given.branch_parallel,
            out=str(self.run_dir) if self.run_dir else base.out,
        )
        return config, ckpt

    def _continue_run(self, ckpt: dict[str, Any]) -> None:
        """Start after the checkpoint's epoch, in its run directory (or ``--out``), with its random state."""
        state = self.resumed_state
        self.start = (state["phase"], state["epoch_in_phase"] + 1)
        if self.start[1] >= self.config.phases[self.start[0]].epochs:
            self.start = (self.start[0] + 1, 0)
        if self.ctx.is_main:
            self._lock = RunLock(self.run_dir).acquire()
            if not (self.run_dir / files.CONFIG).exists() or self.run_dir != self.ckpt_path.parent:
                write_config(self.run_dir, self.config)
        self.run_dir = Path(dist_utils.gather_objects(self.ctx, str(self.run_dir) if self.ctx.is_main else None)[0])
        rng = state["rng"]
        restore_rng_state(rng[self.ctx.rank] if self.ctx.rank < len(rng) else rng[0])
        if self.ctx.is_main:
            rewrite_metrics_log(self.run_dir, self.history)

    def _check_branch_layout(self) -> None:
        if self.ctx.branch is not None:
            try:
                check_branch_layout(self.model, self.ctx.branch.size)
            except BranchLayoutError as err:
                raise ConfigError(f"--branch-parallel {self.ctx.branch.size}: {err}") from err

    def _claim_run_dir(self) -> Path:
        """The new run's directory: checked, locked for this process, its config.json written."""
        path = None
        if self.ctx.is_main:
            path = next_run_dir(self.config)
            try:
                check_new_run_dir(path)
            except ConfigError:
                RunLock(path).refuse_if_held()  # a run being trained there is said as such, not as a leftover
                raise
            check_writable_parent(path / files.CONFIG)
            self._lock = RunLock(path).acquire()
            try:
                check_new_run_dir(path)  # a second writer may have claimed it between the check and the lock
                write_config(path, self.config)
            except BaseException:
                self.close()
                raise
        return Path(dist_utils.gather_objects(self.ctx, str(path) if path else None)[0])

    def interrupted(self) -> str:
        """What an interruption now leaves behind, and how to go on."""
        self.close()
        if self.checkpoint_path.exists():
            return (
                f"the last complete epoch is in {self.checkpoint_path}; "
                f"continue with `prunex train --resume {self.run_dir}`"
            )
        return f"stopped before the first epoch ended: nothing to resume (delete {self.run_dir} to start again there)"

    def close(self) -> None:
        """Release the run directory (also done when :meth:`fit` ends, however it ends)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _wrap(self) -> nn.Module:
        if not self.ctx.data_parallel:
            return self.model
        ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids, process_group=self.ctx.data_group)

    def _phase_optimizer(self, p_idx: int, step_fn: TrainStep, mid_phase: bool) -> torch.optim.Optimizer:
        """SGD over the phase's parameter groups; a resume in the middle of a phase restores its state."""
        optimizer = self.schedule.optimizer(self.schedule.first_epoch(p_idx))
        if mid_phase and self.resumed_state is not None:
            saved = self.resumed_state["optimizer"]  # the ordinary (unsharded) layout
            if self.ctx.branch is not None:
                saved = shard_optimizer_state(self.model, optimizer, saved, self.ctx.branch)
            optimizer.load_state_dict(saved)
            if self.resumed_state.get("scaler") and step_fn.scaler.is_enabled():
                step_fn.scaler.load_state_dict(self.resumed_state["scaler"])
        return optimizer

    # -- the run -----------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg, t0 = self.config, time.perf_counter()
        loaders = make_loaders(self.data, cfg, self.ctx, self.channels_last)
        runner = EpochRunner(self.model, self.ctx, self.channels_last, self.use_amp)
        epoch = sum(p.epochs for p in cfg.phases[: self.start[0]]) + self.start[1]
        self.observer.run_started(self._run_start(epoch))
        with ExitStack() as cleanup:
            cleanup.callback(self.close)
            cleanup.callback(self.observer.phases_ended)
            for p_idx in range(self.start[0], len(cfg.phases)):
                phase = cfg.phases[p_idx]
                self.schedule.enter_phase(phase)
                step_fn = TrainStep(
                    self.model,
                    self._wrap(),
                    amp=self.use_amp,
                    budget=self.schedule.budget_o,
                    alpha=cfg.alpha,
                    compile=cfg.compile,
                )
                optimizer = self._phase_optimizer(p_idx, step_fn, p_idx == self.start[0] and self.start[1] > 0)
                for e_in in range(self.start[1] if p_idx == self.start[0] else 0, phase.epochs):
                    loaders.sampler.set_epoch(epoch)
                    self._run_epoch(runner, loaders, (p_idx, e_in, epoch), optimizer, step_fn)
                    epoch += 1
        last = self.history[-1] if self.history else {}
        result = TrainResult(self.run_dir, self.checkpoint_path, last, self.history, time.perf_counter() - t0)
        self.observer.run_ended(result)
        dist_utils.teardown(self.ctx)
        return result

    def _run_start(self, first_epoch: int) -> RunStart:
        counts = count_parameters(self.model)
        ctx = self.ctx
        return RunStart(
            self.config,
            counts["params"],
            counts["gates"],
            str(ctx.device),
            ctx.world_size,
            self.run_dir,
            first_epoch,
            ctx.is_main,
        )

    def _run_epoch(self, runner: EpochRunner, loaders, at: tuple[int, int, int], optimizer, step_fn: TrainStep) -> None:
        """One epoch (``at``: phase index, epoch in the phase, epoch of the run): train, evaluate, checkpoint."""
        p_idx, e_in, epoch = at
        phase, tic, observer = self.config.phases[p_idx], time.perf_counter(), self.observer
        observer.epoch_started(f"{phase.name:<18} epoch {epoch + 1:>3}/{self.config.total_epochs}", len(loaders.train))
        train_loss, train_acc = runner.train_epoch(
            step_fn,
            loaders.train,
            optimizer,
            phase,
            e_in,
            on_step=self._after_step,
            on_running=observer.running if observer.wants_running else None,
        )
        test = runner.evaluate(loaders.test)
        metrics = {
            "epoch": epoch + 1,
            "phase": phase.name,
            "lr": phase.lr * lr_factor(phase, e_in, 0, 1),
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test.loss,
            "test_acc": test.accuracy,
            **({"test_top5": test.top5} if test.top5 is not None else {}),
            "seconds": time.perf_counter() - tic,
            **gate_report(self.model, self.config.budget),
        }
        self._end_epoch(metrics, p_idx, e_in, optimizer, step_fn)
        observer.epoch_ended(metrics)

    def _after_step(self) -> None:
        self.steps_done += 1
        self.observer.step_done(self.steps_done)

    def _end_epoch(
        self, metrics: dict[str, Any], p_idx: int, e_in: int, optimizer: torch.optim.Optimizer, step_fn: TrainStep
    ) -> None:
        self.history.append(metrics)
        rngs = dist_utils.gather_objects(self.ctx, capture_rng_state())
        weights, optim = self.model.state_dict(), optimizer.state_dict()
        if self.ctx.branch is not None:  # gathered: a branch-parallel run writes an ordinary checkpoint
            weights = full_state_dict(self.model, self.ctx.branch)
            optim = full_optimizer_state(self.model, optimizer, self.ctx.branch)
        if self.ctx.is_main:
            scaler = step_fn.scaler.state_dict() if step_fn.scaler.is_enabled() else None
            state = TrainState(p_idx, e_in, metrics["epoch"], optim, scaler, rngs, self.ctx.world_size)
            payload = checkpoint_payload(self.model, self.data.info, self.config, state, self.history, weights)
            record_epoch(self.run_dir, payload)
        dist_utils.barrier(self.ctx)


def train(config: TrainConfig, **kwargs: Any) -> TrainResult:
    """Train ``config`` (see :class:`Trainer` for the keyword arguments)."""
    return Trainer(config, **kwargs).fit()
