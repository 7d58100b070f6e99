"""``prunex train``: train a gated model (the papers' schedules, or a short one on the embedded digits)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from prunex.cli.errors import handle_errors

if TYPE_CHECKING:
    from prunex.train import Trainer


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
    epochs: int = typer.Option(
        None, "--epochs", min=1, help="Rescale the recipe's phases to this many epochs in total."
    ),
    batch_size: int = typer.Option(None, "--batch-size", "-b", min=1, help="Per-process batch size."),
    weight_decay: float = typer.Option(
        None, "--weight-decay", min=0.0, help="Weight decay of the weights (not the gates)."
    ),
    budget: float = typer.Option(
        None, "--budget", min=1.0, help="DGConv resource constraint b: ζ ≤ Σ C² / b (32 = ResNeXt 32×4d's size)."
    ),
    alpha: float = typer.Option(None, "--alpha", help="Exponent of the constraint factor (o/ζ)^α (paper: -0.02)."),
    config: Path = typer.Option(
        None, "--config", "-c", help="TOML or JSON file with training settings (options given here win)."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Run directory (default: runs/<model>-<dataset>[-N]); it must not hold a run. With --resume: continue "
        "in this new directory instead of the checkpoint's.",
    ),
    resume: Path = typer.Option(
        None,
        "--resume",
        help="Continue a run from its directory or checkpoint exactly where its last complete epoch ended, with "
        "the run's own settings (only --device, --workers, --compile, --channels-last, --out and --quiet may "
        "be given). Refuses to overwrite work newer than the checkpoint.",
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
        min=0,
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
    from prunex.train import TrainConfig, Trainer, build_config
    from prunex.train.config import ConfigError

    console = Console()
    started: dict[str, Trainer] = {}
    with handle_errors(console, interrupted=lambda: _interrupted(started.get("trainer"))):
        if resume is not None:
            fixed = {
                "--model": model,
                "--model-arg": model_arg or None,
                "--dataset": dataset,
                "--data-root": data_root,
                "--recipe": recipe,
                "--epochs": epochs,
                "--batch-size": batch_size,
                "--weight-decay": weight_decay,
                "--budget": budget,
                "--alpha": alpha,
                "--config": config,
                "--amp/--no-amp": amp,
                "--seed": seed,
            }
            given = [name for name, value in fixed.items() if value is not None]
            if given:
                raise ConfigError(
                    f"{', '.join(given)} cannot change when resuming: a resumed run keeps its own settings "
                    "(start a new run to change them)"
                )
            config = TrainConfig(
                device=device or "auto",
                workers=workers,
                compile=compile,
                channels_last=channels_last,
                out=str(out) if out else None,
            )
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
        trainer = started["trainer"] = Trainer(config, resume=resume, console=console, quiet=quiet)
        trainer.fit()


def _interrupted(trainer: Trainer | None) -> str:
    """What Ctrl-C left behind, for this run."""
    if trainer is None:
        return "nothing was written"
    trainer.close()
    run = trainer.run_dir
    if (run / "checkpoint.pt").exists():
        return f"the last complete epoch is in {run / 'checkpoint.pt'}; continue with `prunex train --resume {run}`"
    return f"stopped before the first epoch ended: nothing to resume (delete {run} to start again there)"
