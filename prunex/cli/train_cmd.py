"""``prunex train``: train a gated model (the papers' schedules, or a short one on the embedded digits)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from prunex.cli import train_options as options
from prunex.cli.errors import handle_errors
from prunex.cli.parsing import given_arguments, model_args
from prunex.train.choices import Recipe


def train(
    ctx: typer.Context,
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        rich_help_panel="Model",
        metavar="NAME",
        help="Registered model (`prunex models`), torchvision:NAME, timm:NAME (the timm extra; random weights: "
        "--weights FILE loads yours) or module:function. Default: MaskConnect {20,4,8}.",
    ),
    model_arg: list[str] = typer.Option(
        [],
        "--model-arg",
        "-a",
        rich_help_panel="Model",
        metavar="KEY=VALUE",
        help="Model keyword argument key=value (repeat). Without --model they change the default MaskConnect "
        "{20,4,8} (e.g. -a connectivity=real_valued).",
    ),
    dataset: str = typer.Option(
        None,
        "--dataset",
        "-d",
        rich_help_panel="Data",
        metavar="NAME",
        help="digits (default, embedded), cifar10, cifar100, imagefolder, synthetic.",
    ),
    data_root: Path = typer.Option(
        None,
        "--data-root",
        rich_help_panel="Data",
        metavar="DIR",
        help="Directory holding cifar10/cifar100/imagefolder data.",
    ),
    pipeline: str = options.PIPELINE,
    normalisation: str = options.NORMALISATION,
    ten_crop: bool = options.TEN_CROP,
    recipe: Recipe = typer.Option(
        None,
        "--recipe",
        rich_help_panel="Schedule",
        help="auto (paper schedule on CIFAR / image folders, quick otherwise), paper, or quick.",
    ),
    epochs: int = typer.Option(
        None,
        "--epochs",
        min=1,
        rich_help_panel="Schedule",
        help="Rescale the recipe's phases to this many epochs in total.",
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", "-b", min=1, rich_help_panel="Schedule", help="Per-process batch size."
    ),
    weight_decay: float = typer.Option(
        None, "--weight-decay", min=0.0, rich_help_panel="Schedule", help="Weight decay of the weights (not the gates)."
    ),
    budget: float = typer.Option(
        None,
        "--budget",
        min=1.0,
        rich_help_panel="Schedule",
        help="DGConv resource constraint b: ζ ≤ Σ C² / b (32 = ResNeXt 32×4d's size).",
    ),
    alpha: float = typer.Option(
        None, "--alpha", rich_help_panel="Schedule", help="Exponent of the constraint factor (o/ζ)^α (paper: -0.02)."
    ),
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        rich_help_panel="Schedule",
        help="TOML or JSON file with training settings (options given here win).",
    ),
    out: Path = options.OUT,
    resume: Path = options.RESUME,
    device: str = typer.Option(
        None, "--device", rich_help_panel="Execution", metavar="DEVICE", help="auto (default), cpu, cuda or cuda:N."
    ),
    amp: bool = typer.Option(
        None,
        "--amp/--no-amp",
        rich_help_panel="Execution",
        help="Mixed precision on CUDA: bf16 autocast where supported, else fp16 (default on).",
    ),
    channels_last: bool = typer.Option(
        None,
        "--channels-last/--no-channels-last",
        rich_help_panel="Execution",
        help="Channels-last tensors (default: on CUDA).",
    ),
    compile: bool = typer.Option(
        False,
        "--compile",
        rich_help_panel="Execution",
        help="torch.compile the training step's model (slower start, faster GPU steps).",
    ),
    workers: int = options.WORKERS,
    branch_parallel: int = options.BRANCH_PARALLEL,
    learn_groups: str = options.LEARN_GROUPS,
    weights: Path = options.WEIGHTS,
    structure_from: Path = options.STRUCTURE_FROM,
    seed: int = typer.Option(None, "--seed", rich_help_panel="Schedule", help="Random seed (default 0)."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", rich_help_panel="Run directory", help="No progress bars or summary."
    ),
    nproc_per_node: int = options.NPROC_PER_NODE,
) -> None:
    """Train a gated model; write checkpoint.pt (every epoch), metrics.jsonl and config.json to its run directory.

    No arguments: MaskConnect {20,4,8} (fan-in 4) on the embedded digits in four phases. Under torchrun: DDP
    (gloo on CPU, NCCL on GPU), or branch × data parallel."""
    from prunex.cli.views.train import ConsoleTrainObserver
    from prunex.train.observer import TrainObserver
    from prunex.workflows import prepare_train

    console = Console(soft_wrap=True)  # lines are never hard-wrapped (paths stay whole); tables fit the width
    started: list = []
    with handle_errors(interrupted=lambda: started[0].interrupted() if started else "nothing was written"):
        given = {  # option -> TrainConfig field; None: not given (the recipe's or the config file's value stands)
            "model": model,
            "model_kwargs": model_args(model_arg) or None,
            "dataset": dataset,
            "data_root": _text(data_root),
            "pipeline": pipeline,
            "normalisation": normalisation,
            "ten_crop": ten_crop or None,
            "recipe": recipe,
            "epochs": epochs,
            "batch_size": batch_size,
            "weight_decay": weight_decay,
            "budget": budget,
            "alpha": alpha,
            "out": _text(out),
            "device": device,
            "amp": amp,
            "channels_last": channels_last,
            "compile": compile or None,
            "workers": workers,
            "branch_parallel": branch_parallel,
            "learn_groups": learn_groups,
            "weights": _text(weights),
            "structure_from": _text(structure_from),
            "seed": seed,
        }
        if nproc_per_node is not None:
            from prunex.workflows.train import launch_train

            argv = given_arguments(ctx, skip={"nproc_per_node"})
            code = launch_train(argv, nproc_per_node, resume=resume, config=config, **given)
            raise typer.Exit(code)
        observer = TrainObserver() if quiet else ConsoleTrainObserver(console)
        started.append(prepare_train(resume=resume, config=config, observer=observer, **given))
        started[0].fit()


def _text(path: Path | None) -> str | None:
    return str(path) if path else None
