"""What a run shows on the console: a header, a progress bar per epoch, and a summary table per phase."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch import nn

from prunex.models import count_parameters
from prunex.train.config import TrainConfig
from prunex.train.distributed import DistContext
from prunex.train.result import TrainResult


class EpochProgress:
    """One rich progress bar per epoch, with the running loss and accuracy."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.1f}%"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> EpochProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def epoch(self, label: str, steps: int) -> None:
        self.task = self.progress.add_task(label, total=steps, loss=float("nan"), acc=float("nan"))

    def step(self) -> None:
        self.progress.update(self.task, advance=1)

    def running(self, loss: float, accuracy: float) -> None:
        self.progress.update(self.task, loss=loss, acc=100 * accuracy)


def print_header(
    console: Console, config: TrainConfig, model: nn.Module, ctx: DistContext, run_dir: object, first_epoch: int
) -> None:
    counts = count_parameters(model)
    what = "resuming" if first_epoch else "training"
    console.print(
        f"[bold]{what}[/bold] {config.model} on {config.dataset} "
        f"({counts['params']:,} weights, {counts['gates']:,} gates) on {ctx.device}"
        f"{f' × {ctx.world_size} processes' if ctx.distributed else ''}; "
        f"{config.total_epochs} epochs in {len(config.phases)} phase(s); run directory {run_dir}"
    )


def print_summary(console: Console, config: TrainConfig, result: TrainResult) -> None:
    table = Table(title="training summary (accuracy at the end of each phase)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("phase", no_wrap=True)
    for col in ("ep", "lr", "gate lr", "loss", "train", "test", "best"):
        table.add_column(col, justify="right", no_wrap=True)
    for phase in config.phases:
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
    console.print(table)
    last = result.metrics
    extra = ""
    if "active_blocks" in last:
        extra = f"; blocks in use per module {last['active_blocks']}"
    if "zeta" in last:
        extra = f"; DGConv groups {last['groups']}, ζ = {last['zeta']:,.0f}" + (
            f" (budget o = {last['budget_o']:,.0f})" if "budget_o" in last else ""
        )
    console.print(
        f"test accuracy {100 * last.get('test_acc', 0):.2f}% after {result.seconds:.0f} s{extra}\n"
        f"checkpoint: [bold]{result.checkpoint}[/bold]   metrics: {result.run_dir / 'metrics.jsonl'}"
    )
