"""The training loop: phases, SGD with per-group learning rates, gate learning, checkpoints, exact resume."""

from __future__ import annotations

import inspect
import json
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from prunex.artifacts import RunLock, atomic_write_text, check_writable_parent
from prunex.data import DatasetInfo, default_workers, load_dataset
from prunex.data.tensor_images import DeviceBatches, TensorImages
from prunex.models import count_parameters, create_model, model_entry
from prunex.nn.gates import branch_gate_modules, dgconv_modules
from prunex.train import distributed as dist_utils
from prunex.train.checkpoint import build_model, load_checkpoint, save_checkpoint
from prunex.train.config import ConfigError, Phase, TrainConfig
from prunex.train.resource import budget, complexity_summary
from prunex.train.run_dir import (
    check_new_run_dir,
    checkpoint_file,
    next_run_dir,
    resumable,
    resume_dir,
    write_config,
)
from prunex.train.schedule import lr_factor
from prunex.train.step import TrainStep, autocast_dtype, param_groups, sgd

PROGRESS_REFRESH_S = 0.5  # the running loss / accuracy on the progress bar is read back from the device this often


class SimulatedKill(RuntimeError):
    """Raised by the ``kill_after_steps`` hook to stop a run abruptly (tests of resume)."""


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuples(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(x: Any) -> Any:
    return tuple(_as_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def build_new_model(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """``create_model(name, **kwargs)``; arguments the builder refuses are a configuration error naming them."""
    try:
        return create_model(name, **kwargs)
    except TypeError as err:
        accepted = ", ".join(p for p in inspect.signature(model_entry(name).builder).parameters)
        raise ConfigError(f"{name} does not take these arguments ({err}); it takes: {accepted}") from None
    except ValueError as err:
        raise ConfigError(f"cannot build {name} with {kwargs}: {err}") from None


def model_kwargs_for(model: str, kwargs: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    """The model's kwargs with ``num_classes`` / ``in_chans`` taken from the dataset where the builder has them."""
    accepted = inspect.signature(model_entry(model).builder).parameters
    out = dict(kwargs)
    if "num_classes" in accepted:
        out.setdefault("num_classes", info.num_classes)
    if "in_chans" in accepted:
        out.setdefault("in_chans", info.in_chans)
    elif info.in_chans != 3:
        raise ConfigError(f"{model} takes 3-channel images; {info.name} has {info.in_chans}")
    return out


def _set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor


def gate_report(model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    """What the gates say now: MaskConnect blocks in use and mask spread, DGConv groups and ζ against o."""
    report: dict[str, Any] = {}
    gates = [m for _, m in branch_gate_modules(model)]
    if gates and hasattr(model, "active_blocks"):
        report["active_blocks"] = [sum(a) for a in model.active_blocks()]
        learned = [m.weight for m in gates if m.weight is not None]
        if learned:
            report["mask_min_positive"] = int(min(int((w > 0).sum(1).min()) for w in learned))
    dg = [m for _, m in dgconv_modules(model)]
    if dg:
        report["groups"] = [m.num_groups for m in dg]
        report.update(complexity_summary(model, config.budget))
    return report


class Trainer:
    """Runs a :class:`TrainConfig` (or resumes a run) on one process or under torchrun."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: str | Path | None = None,
        console: Console | None = None,
        quiet: bool = False,
        kill_after_steps: int | None = None,
    ) -> None:
        self.ctx = dist_utils.setup(config.device)
        self.console = console or Console()
        self.quiet = quiet or not self.ctx.is_main
        self.kill_after_steps = kill_after_steps
        self.steps_done = 0
        self.start = (0, 0)  # (phase index, epoch in phase) to run next
        self.history: list[dict[str, Any]] = []
        self.resumed_state: dict[str, Any] | None = None
        self._step_fn: TrainStep | None = None
        self._lock: RunLock | None = None
        if resume is not None:
            ckpt_path = checkpoint_file(Path(resume))
            ckpt = load_checkpoint(ckpt_path)
            base, self.resumed_state = resumable(ckpt, ckpt_path)
            self.history = list(ckpt.get("history", []))
            out = Path(config.out) if config.out else None
            self.run_dir = resume_dir(ckpt_path, self.resumed_state, self.history, out) if self.ctx.is_main else out
            config = replace(
                base,
                device=config.device,
                workers=config.workers,
                compile=config.compile,
                channels_last=config.channels_last,
                out=str(self.run_dir) if self.run_dir else base.out,
            )
        self.config = config
        if not config.phases:
            raise ConfigError("no training phases: pick a recipe or give phases in a config file")
        _seed_everything(config.seed + self.ctx.rank)
        self.data = load_dataset(config.dataset, config.data_root, image_size=config.image_size, augment=config.augment)
        if resume is not None:
            self.model = build_model(ckpt["spec"], ckpt["state_dict"])
            state = self.resumed_state
            self.start = (state["phase"], state["epoch_in_phase"] + 1)
            if self.start[1] >= config.phases[self.start[0]].epochs:
                self.start = (self.start[0] + 1, 0)
            if self.ctx.is_main:
                self._lock = RunLock(self.run_dir).acquire()
                if not (self.run_dir / "config.json").exists() or self.run_dir != ckpt_path.parent:
                    write_config(self.run_dir, self.config)
            self.run_dir = Path(dist_utils.gather_objects(self.ctx, str(self.run_dir) if self.ctx.is_main else None)[0])
            rng = state["rng"]
            _set_rng_state(rng[self.ctx.rank] if self.ctx.rank < len(rng) else rng[0])
            self._rewrite_metrics_log()
        else:
            kwargs = model_kwargs_for(config.model, config.model_kwargs, self.data.info)
            self.model = build_new_model(config.model, kwargs)
            self.run_dir = self._claim_run_dir()
        self.channels_last = self.ctx.device.type == "cuda" if config.channels_last is None else config.channels_last
        self.model.to(self.ctx.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.checkpoint_path = self.run_dir / "checkpoint.pt"
        self.use_amp = config.amp and self.ctx.device.type == "cuda"
        self.budget_o = budget(self.model, config.budget) if config.budget else None

    # -- set-up ----------------------------------------------------------------------------------------
    def _claim_run_dir(self) -> Path:
        """The new run's directory: checked, locked for this process, its config.json written."""
        path = None
        if self.ctx.is_main:
            path = next_run_dir(self.config)
            check_new_run_dir(path)
            check_writable_parent(path / "config.json")
            self._lock = RunLock(path).acquire()
            try:
                check_new_run_dir(path)  # a second writer may have claimed it between the check and the lock
                write_config(path, self.config)
            except BaseException:
                self.close()
                raise
        return Path(dist_utils.gather_objects(self.ctx, str(path) if path else None)[0])

    def close(self) -> None:
        """Release the run directory (also done when :meth:`fit` ends, however it ends)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _loaders(self):
        """Train and test batches for this process: drawn on the device for in-memory datasets
        (:class:`DeviceBatches`), else a DataLoader with worker processes and pinned memory."""
        ctx, cfg = self.ctx, self.config
        sampler = DistributedSampler(
            self.data.train, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.seed
        )
        drop_last = len(self.data.train) // ctx.world_size > cfg.batch_size
        shard = list(range(ctx.rank, len(self.data.test), ctx.world_size))
        test_batch = max(cfg.batch_size, 256)
        if isinstance(self.data.train, TensorImages) and isinstance(self.data.test, TensorImages):
            cl = self.channels_last
            train = DeviceBatches(self.data.train, cfg.batch_size, ctx.device, sampler, drop_last, channels_last=cl)
            test = DeviceBatches(self.data.test, test_batch, ctx.device, shard, augment=False, channels_last=cl)
            return train, test, sampler
        workers = default_workers() if cfg.workers is None else cfg.workers
        pin = ctx.device.type == "cuda"
        options = dict(num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
        train = DataLoader(self.data.train, batch_size=cfg.batch_size, sampler=sampler, drop_last=drop_last, **options)
        test = DataLoader(Subset(self.data.test, shard), batch_size=test_batch, **options)
        return train, test, sampler

    def _wrap(self) -> nn.Module:
        if not self.ctx.distributed:
            return self.model
        ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids)

    # -- one epoch ---------------------------------------------------------------------------------------
    def _train_epoch(self, step_fn: TrainStep, loader, optimizer, phase: Phase, epoch_in_phase: int, progress, label):
        self.model.train()
        dev, steps = self.ctx.device, len(loader)
        learn_gates = phase.gate_lr > 0
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        count, shown = 0, time.perf_counter()
        task = progress.add_task(label, total=steps, loss=float("nan"), acc=float("nan")) if progress else None
        for step, (x, y) in enumerate(loader):
            _set_lr(optimizer, lr_factor(phase, epoch_in_phase, step, steps))
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss, logits = step_fn(x, y, optimizer, learn_gates=learn_gates)
            n = y.numel()
            loss_sum += loss.detach() * n
            correct += (logits.detach().argmax(1) == y).sum()
            count += n
            self.steps_done += 1
            if task is not None:
                fields = {}
                if step + 1 == steps or time.perf_counter() - shown > PROGRESS_REFRESH_S:
                    fields = dict(loss=float(loss_sum) / count, acc=100 * float(correct) / count)
                    shown = time.perf_counter()
                progress.update(task, advance=1, **fields)
            if self.kill_after_steps is not None and self.steps_done >= self.kill_after_steps:
                raise SimulatedKill(f"stopped after {self.steps_done} steps")
        totals = dist_utils.all_reduce_sum(self.ctx, [float(loss_sum), float(correct), count])
        loss_total, correct_total, count_total = totals
        return loss_total / max(count_total, 1), correct_total / max(count_total, 1)

    @torch.no_grad()
    def evaluate(self, loader) -> tuple[float, float]:
        self.model.eval()
        dev = self.ctx.device
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        count = 0
        for x, y in loader:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=autocast_dtype(dev), enabled=self.use_amp):
                logits = self.model(x)
            loss_sum += nn.functional.cross_entropy(logits.float(), y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            count += y.numel()
        loss_total, correct_total, count_total = dist_utils.all_reduce_sum(
            self.ctx, [float(loss_sum), float(correct), count]
        )
        return loss_total / max(count_total, 1), correct_total / max(count_total, 1)

    # -- the run -----------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg, t0 = self.config, time.perf_counter()
        train_loader, test_loader, sampler = self._loaders()
        first_epoch = sum(p.epochs for p in cfg.phases[: self.start[0]]) + self.start[1]
        progress = None
        if not self.quiet:
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.1f}%"),
                TimeElapsedColumn(),
                console=self.console,
            )
            progress.start()
            self._print_header(first_epoch)
        try:
            epoch = first_epoch
            for p_idx in range(self.start[0], len(cfg.phases)):
                phase = cfg.phases[p_idx]
                mid_phase = p_idx == self.start[0] and self.start[1] > 0
                if phase.freeze_connectivity:
                    for _, m in branch_gate_modules(self.model):
                        m.freeze()
                step_fn = self._step_fn = TrainStep(
                    self.model,
                    self._wrap(),
                    amp=self.use_amp,
                    budget=self.budget_o,
                    alpha=cfg.alpha,
                    compile=cfg.compile,
                )
                self.scaler = step_fn.scaler
                optimizer = sgd(
                    param_groups(
                        self.model,
                        lr=phase.lr,
                        gate_lr=phase.gate_lr,
                        weight_decay=cfg.weight_decay,
                        momentum=cfg.momentum,
                        nesterov=cfg.nesterov,
                    )
                )
                if mid_phase and self.resumed_state is not None:
                    optimizer.load_state_dict(self.resumed_state["optimizer"])
                    if self.resumed_state.get("scaler") and self.scaler.is_enabled():
                        self.scaler.load_state_dict(self.resumed_state["scaler"])
                for e_in in range(self.start[1] if p_idx == self.start[0] else 0, phase.epochs):
                    sampler.set_epoch(epoch)
                    tic = time.perf_counter()
                    label = f"{phase.name:<18} epoch {epoch + 1:>3}/{cfg.total_epochs}"
                    train_loss, train_acc = self._train_epoch(
                        step_fn, train_loader, optimizer, phase, e_in, progress, label
                    )
                    test_loss, test_acc = self.evaluate(test_loader)
                    metrics = {
                        "epoch": epoch + 1,
                        "phase": phase.name,
                        "lr": phase.lr * lr_factor(phase, e_in, 0, 1),
                        "train_loss": train_loss,
                        "train_acc": train_acc,
                        "test_loss": test_loss,
                        "test_acc": test_acc,
                        "seconds": time.perf_counter() - tic,
                        **gate_report(self.model, cfg),
                    }
                    self._end_epoch(metrics, p_idx, e_in, optimizer)
                    epoch += 1
                step_fn.close()
        finally:
            if self._step_fn is not None:
                self._step_fn.close()
            if progress is not None:
                progress.stop()
            self.close()
        result = TrainResult(
            self.run_dir,
            self.checkpoint_path,
            self.history[-1] if self.history else {},
            self.history,
            time.perf_counter() - t0,
        )
        if not self.quiet:
            self._print_summary(result)
        dist_utils.teardown(self.ctx)
        return result

    def _end_epoch(self, metrics: dict[str, Any], p_idx: int, e_in: int, optimizer) -> None:
        self.history.append(metrics)
        rngs = dist_utils.gather_objects(self.ctx, _rng_state())
        if self.ctx.is_main:
            save_checkpoint(
                self.checkpoint_path,
                {
                    "spec": self.model.prunex_spec,
                    "state_dict": self.model.state_dict(),
                    "dataset": {**vars(self.data.info), "root": self.config.data_root},
                    "config": self.config.to_dict(),
                    "train_state": {
                        "phase": p_idx,
                        "epoch_in_phase": e_in,
                        "epoch": metrics["epoch"],
                        "optimizer": optimizer.state_dict(),
                        "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                        "rng": rngs,
                        "world_size": self.ctx.world_size,
                    },
                    "history": self.history,
                    "metrics": metrics,
                },
            )
            # after the checkpoint, so the log never runs ahead of it; a resume rewrites it from the checkpoint
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
        dist_utils.barrier(self.ctx)

    def _rewrite_metrics_log(self) -> None:
        if self.ctx.is_main:
            lines = "".join(json.dumps(m) + "\n" for m in self.history)
            atomic_write_text(self.run_dir / "metrics.jsonl", lines)

    # -- reporting ---------------------------------------------------------------------------------------
    def _print_header(self, first_epoch: int) -> None:
        counts = count_parameters(self.model)
        what = "resuming" if first_epoch else "training"
        self.console.print(
            f"[bold]{what}[/bold] {self.config.model} on {self.config.dataset} "
            f"({counts['params']:,} weights, {counts['gates']:,} gates) on {self.ctx.device}"
            f"{f' × {self.ctx.world_size} processes' if self.ctx.distributed else ''}; "
            f"{self.config.total_epochs} epochs in {len(self.config.phases)} phase(s); run directory {self.run_dir}"
        )

    def _print_summary(self, result: TrainResult) -> None:
        table = Table(title="training summary (accuracy at the end of each phase)", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("phase", no_wrap=True)
        for col in ("ep", "lr", "gate lr", "loss", "train", "test", "best"):
            table.add_column(col, justify="right", no_wrap=True)
        for phase in self.config.phases:
            rows = [m for m in result.history if m["phase"] == phase.name]
            if not rows:
                continue
            last = rows[-1]
            table.add_row(
                phase.name,
                str(phase.epochs),
                f"{phase.lr:g}",
                f"{phase.gate_lr:g}",
                f"{last['train_loss']:.4f}",
                f"{100 * last['train_acc']:.1f}%",
                f"{100 * last['test_acc']:.1f}%",
                f"{100 * max(m['test_acc'] for m in rows):.1f}%",
            )
        self.console.print(table)
        last = result.metrics
        extra = ""
        if "active_blocks" in last:
            extra = f"; blocks in use per module {last['active_blocks']}"
        if "zeta" in last:
            extra = f"; DGConv groups {last['groups']}, ζ = {last['zeta']:,.0f}" + (
                f" (budget o = {last['budget_o']:,.0f})" if "budget_o" in last else ""
            )
        self.console.print(
            f"test accuracy {100 * last.get('test_acc', 0):.2f}% after {result.seconds:.0f} s{extra}\n"
            f"checkpoint: [bold]{result.checkpoint}[/bold]   metrics: {self.run_dir / 'metrics.jsonl'}"
        )


def train(config: TrainConfig, **kwargs: Any) -> TrainResult:
    """Train ``config`` (see :class:`Trainer` for the keyword arguments)."""
    return Trainer(config, **kwargs).fit()
