"""How ``prunex train`` shows a run: a header, a progress bar per epoch with the running loss and accuracy, and a
summary table per phase (a :class:`~prunex.train.observer.TrainObserver`; only the main process speaks)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from prunex.artifacts import layout as files
from prunex.train.observer import RunStart, TrainObserver
from prunex.train.result import TrainResult


class ConsoleTrainObserver(TrainObserver):
    """The run on a rich console."""

    wants_running = True

    def __init__(self, console: Console) -> None:
        self.console = console
        self.start: RunStart | None = None
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def run_started(self, start: RunStart) -> None:
        if not start.is_main:
            return
        self.start = start
        cfg = start.config
        console_line = (
            f"[bold]{'resuming' if start.resuming else 'training'}[/bold] {cfg.model} on {cfg.dataset} "
            f"({start.params:,} weights, {start.gates:,} gates) on {start.device}"
            f"{f' × {start.world_size} processes' if start.world_size > 1 else ''}; "
            f"{cfg.total_epochs} epochs in {len(cfg.phases)} phase(s); run directory {start.run_dir}"
        )
        self.console.print(console_line)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.1f}%"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.progress.start()

    def epoch_started(self, label: str, steps: int) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task(label, total=steps, loss=float("nan"), acc=float("nan"))

    def step_done(self, steps_done: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1)

    def running(self, loss: float, accuracy: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, loss=loss, acc=100 * accuracy)

    def phases_ended(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def run_ended(self, result: TrainResult) -> None:
        if self.start is not None:
            print_train_summary(self.console, self.start, result)


def print_train_summary(console: Console, start: RunStart, result: TrainResult) -> None:
    """One row per phase (accuracy at its end and its best), then the final accuracy and where the run is."""
    table = Table(title="training summary (accuracy at the end of each phase)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("phase", no_wrap=True)
    top5 = any("test_top5" in m for m in result.history)
    for col in ("ep", "lr", "gate lr", "loss", "train", "test", "best", *(("top-5",) if top5 else ())):
        table.add_column(col, justify="right", no_wrap=True)
    for phase in start.config.phases:
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
            *((f"{100 * last['test_top5']:.1f}%",) if top5 else ()),
        )
    console.print(table)
    last = result.metrics
    top5 = f" (top-5 {100 * last['test_top5']:.2f}%)" if "test_top5" in last else ""
    console.print(
        f"test accuracy {100 * last.get('test_acc', 0):.2f}%{top5} after {result.seconds:.0f} s{_learned(last)}\n"
        f"checkpoint: [bold]{result.checkpoint}[/bold]   metrics: {result.run_dir / files.METRICS}"
    )


def _learned(last: dict[str, Any]) -> str:
    if "zeta" in last:
        budget = f" (budget o = {last['budget_o']:,.0f})" if "budget_o" in last else ""
        return f"; DGConv groups {last['groups']}, ζ = {last['zeta']:,.0f}{budget}"
    if "active_blocks" in last:
        return f"; blocks in use per module {last['active_blocks']}"
    return ""
