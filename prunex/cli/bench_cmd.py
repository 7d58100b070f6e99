"""``prunex bench``: latency of gated vs compressed models on the backends this machine has."""

from __future__ import annotations

from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.markup import escape

from prunex.cli.errors import handle_errors
from prunex.cli.parsing import comma_ints, comma_list
from prunex.cli.views import print_bench


def bench(
    models: list[Path] = typer.Argument(
        ...,
        help="Run directories / checkpoints (their gated model and, if "
        "compressed, the compressed one) or compressed model directories.",
    ),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, or auto."),
    batch: str = typer.Option("1,32", "--batch", help="Comma-separated batch sizes."),
    backend: str = typer.Option(
        "all",
        "--backend",
        help="Comma-separated: eager, cuda-graphs, compile, onnxruntime, "
        "tensorrt; 'all' tries each (unavailable ones are listed with the reason).",
    ),
    dtype: str = typer.Option("fp32", "--dtype", help="Comma-separated: fp32, fp16 (fp16 on CUDA only)."),
    channels_last: bool = typer.Option(
        None, "--channels-last/--no-channels-last", help="NHWC memory format (default: on for CUDA)."
    ),
    warmup: int = typer.Option(10, "--warmup", min=0, help="Untimed iterations first."),
    iters: int = typer.Option(50, "--iters", min=1, help="Timed iterations (at least)."),
    min_seconds: float = typer.Option(
        0.0, "--min-seconds", min=0.0, help="Keep timing until this much time has passed."
    ),
    out: Path = typer.Option(
        Path("bench"),
        "--out",
        "-o",
        help="Directory for bench.json and bench.png; replaced only when the whole benchmark has run.",
    ),
    plots: bool = typer.Option(
        True,
        "--plots/--no-plots",
        help="bench.png (latency against batch) and, per run, "
        "the pictures of what it learned (as `prunex inspect`); needs matplotlib.",
    ),
) -> None:
    """Time each model on each backend after a warm-up: min / mean / median / p90 / p95 / p99 and throughput.

    A run directory brings both its gated model (frozen masks and gates applied to the dense weights, as it would
    ship without prunex) and its compressed model, so the speed-up is measured in the same process. Writes
    bench.json (results, environment, speed-ups) and bench.png; warns when a measurement's coefficient of
    variation exceeds 2.5 %.
    """
    from prunex.workflows.bench import prepare_bench

    console = Console()
    with handle_errors(console):
        job = prepare_bench(
            models,
            device=device,
            backends=None if backend == "all" else comma_list(backend),
            dtypes=comma_list(dtype),
            batches=comma_ints(batch, "--batch"),
            channels_last=channels_last,
            warmup=warmup,
            iters=iters,
            min_seconds=min_seconds,
            out=out,
            plots=plots,
        )
        device_name = job.settings.device
        console.print(
            f"benchmarking {len(job.models)} model(s) on {device_name} with {torch.get_num_threads()} threads"
        )

        def show(row) -> None:
            if row["status"] == "ok":
                line = f"{row['model']} [{row['kind']}] {row['backend']} {row['dtype']} batch {row['batch']}"
                console.print(f"  {escape(line)}: median {row['median_ms']:.3f} ms")

        done = job.run(on_row=show)
        print_bench(console, done.result, done.warnings)
        console.print(f"wrote {done.out / 'bench.json'}" + (f" and {done.plot}" if done.plot else ""))
