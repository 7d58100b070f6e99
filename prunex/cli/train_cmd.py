"""``prunex train``: train a gated model (the papers' schedules, or a short one on the embedded digits)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from prunex.cli.errors import handle_errors


def parse_model_args(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are Python literals (``depth=29``, ``growth=(16,32,64)``) or strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--model-arg")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def train(
    model: str = typer.Option(
        None, "--model", "-m", help="Registered model (see `prunex models`). Default: maskconnect_cifar {20,4,8}, K=4."
    ),
    model_arg: list[str] = typer.Option([], "--model-arg", "-a", help="Model keyword argument key=value (repeat)."),
    dataset: str = typer.Option(
        None, "--dataset", "-d", help="digits (default, embedded), cifar10, cifar100, imagefolder, synthetic."
    ),
    data_root: Path = typer.Option(None, "--data-root", help="Directory holding cifar10/cifar100/imagefolder data."),
    recipe: str = typer.Option(
        None, "--recipe", help="auto (paper schedule on CIFAR / image folders, quick otherwise), paper, or quick."
    ),
    epochs: int = typer.Option(None, "--epochs", help="Rescale the recipe's phases to this many epochs in total."),
    batch_size: int = typer.Option(None, "--batch-size", "-b", help="Per-process batch size."),
    weight_decay: float = typer.Option(None, "--weight-decay", help="Weight decay of the weights (not the gates)."),
    budget: float = typer.Option(
        None, "--budget", help="DGConv resource constraint b: ζ ≤ Σ C² / b (32 = ResNeXt 32×4d's size)."
    ),
    alpha: float = typer.Option(None, "--alpha", help="Exponent of the constraint factor (o/ζ)^α (paper: -0.02)."),
    config: Path = typer.Option(
        None, "--config", "-c", help="TOML or JSON file with training settings (options given here win)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Run directory (default: runs/<model>-<dataset>[-N])."),
    resume: Path = typer.Option(
        None,
        "--resume",
        help="Continue a run from its directory or checkpoint exactly where its last complete epoch ended.",
    ),
    device: str = typer.Option(None, "--device", help="auto (default), cpu, cuda or cuda:N."),
    amp: bool = typer.Option(
        None, "--amp/--no-amp", help="Mixed precision on CUDA: bf16 autocast where supported, else fp16 (default on)."
    ),
    channels_last: bool = typer.Option(
        None, "--channels-last/--no-channels-last", help="Channels-last tensors (default: on CUDA)."
    ),
    compile: bool = typer.Option(
        False,
        "--compile",
        help="Run the training step's model through torch.compile (slower start, faster steps on a GPU; "
        "checkpoints, resume and metrics are the same).",
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        help="Loader processes for datasets read from disk (default: one per core, at most 8). In-memory datasets "
        "(digits, CIFAR, synthetic) are drawn and augmented on the training device and use none.",
    ),
    seed: int = typer.Option(None, "--seed", help="Random seed (default 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summary."),
) -> None:
    """Train a gated model; write checkpoint.pt (every epoch), metrics.jsonl and config.json to its run directory.

    With no arguments: MaskConnect {20,4,8} (fan-in 4) on the embedded digits dataset in four phases.

    Under torchrun it trains with DistributedDataParallel (gloo on CPU, NCCL on GPU).
    """
    from prunex.train import TrainConfig, build_config
    from prunex.train import train as run_training

    console = Console()
    with handle_errors(console):
        if resume is not None:
            config = TrainConfig(device=device or "auto", workers=workers, compile=compile, channels_last=channels_last)
        else:
            options = dict(
                model=model,
                dataset=dataset,
                data_root=str(data_root) if data_root else None,
                recipe=recipe,
                epochs=epochs,
                batch_size=batch_size,
                weight_decay=weight_decay,
                budget=budget,
                alpha=alpha,
                out=str(out) if out else None,
                device=device,
                amp=amp,
                channels_last=channels_last,
                compile=compile or None,
                workers=workers,
                seed=seed,
                model_kwargs=parse_model_args(model_arg) or None,
            )
            config = build_config(options, str(config) if config else None)
        run_training(config, resume=resume, console=console, quiet=quiet)
