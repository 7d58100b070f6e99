"""``prunex bench``: latency of gated vs compressed models on the backends this machine has."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from prunex.cli.errors import handle_errors
from prunex.cli.parsing import comma_ints, comma_list
from prunex.cli.views import print_bench, print_bench_row
from prunex.runtime.compile_mode import CompileMode


def bench(
    models: list[Path] = typer.Argument(
        ...,
        help="Run directories / checkpoints (their gated model and, if "
        "compressed, the compressed one) or compressed model directories.",
    ),
    device: str = typer.Option("auto", "--device", metavar="cpu|cuda|auto", help="cpu, cuda, or auto."),
    batch: str = typer.Option("1,32", "--batch", metavar="N[,N]", help="Comma-separated batch sizes."),
    backend: str = typer.Option(
        "all",
        "--backend",
        metavar="NAME[,NAME]",
        help="Comma-separated: eager, cuda-graphs, compile, onnxruntime, "
        "tensorrt; 'all' tries each (unavailable ones are listed with the reason).",
    ),
    dtype: str = typer.Option(
        "fp32",
        "--precision",
        "--dtype",
        metavar="fp32[,fp16][,int8]",
        help="Comma-separated: fp32, fp16 (CUDA only), int8 (onnxruntime and tensorrt: each model quantized with "
        "symmetric Q/DQ, calibrated on 256 training images of its run; the reference the same way). Rows of "
        "another precision than fp32 show their speed-up over fp32.",
    ),
    channels_last: bool = typer.Option(
        None, "--channels-last/--no-channels-last", help="NHWC memory format (default: on for CUDA)."
    ),
    warmup: int = typer.Option(10, "--warmup", min=0, help="Untimed iterations first."),
    iters: int = typer.Option(50, "--iters", min=1, help="Timed iterations (at least)."),
    min_seconds: float = typer.Option(
        0.0, "--min-seconds", min=0.0, help="Keep timing until this much time has passed."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        metavar="DIR",
        help="Directory for bench.json and bench.png (default: the first free of bench, bench-2, bench-3 and on).",
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an earlier benchmark in --out, once the new one has measured something."
    ),
    reference: str = typer.Option(
        "auto",
        "--reference",
        metavar="NAME",
        help="What users would deploy instead, timed alongside with the same settings: auto (the family's: "
        "torchvision ResNeXt for G-ResNeXt-50/101, the plain zoo network of the same depth for CIFAR families), "
        "none, a registered model, torchvision:NAME or timm:NAME (random weights).",
    ),
    compile_mode: CompileMode = typer.Option(
        CompileMode.DEPLOY,
        "--compile-mode",
        help="The compile backend: deploy (inductor freezing + CUDA graphs), max-autotune (deploy with autotuned "
        "kernels; slow to compile), default (torch.compile's defaults).",
    ),
    plots: bool = typer.Option(
        True,
        "--plots/--no-plots",
        help="bench.png (latency against batch) and, per run, "
        "the pictures of what it learned (as `prunex inspect`); needs matplotlib.",
    ),
) -> None:
    """Time each model on each backend after a warm-up: median / p90 / p95 / p99, throughput, set-up time.

    A run directory brings its gated model (as it would ship without prunex), its compressed ones and a reference,
    all measured in one process. Each row's TFLOP/s (2 × MACs × batch / median) is shown as a share of the peak (a
    data sheet for known GPUs, else a matmul measured first). Writes bench.json and bench.png; warns when a
    coefficient of variation exceeds 2.5 %.
    """
    import torch

    from prunex.artifacts import layout as files
    from prunex.workflows.bench import prepare_bench

    console = Console(soft_wrap=True)  # lines are never hard-wrapped (paths stay whole); tables fit the width
    with handle_errors():
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
            force=force,
            plots=plots,
            reference=reference,
            compile_mode=compile_mode,
        )
        threads = torch.get_num_threads()
        console.print(f"benchmarking {len(job.models)} model(s) on {job.settings.device} with {threads} threads")
        done = job.run(on_row=lambda row: print_bench_row(console, row))
        print_bench(console, done.result, done.warnings)
        console.print(f"wrote {done.out / files.BENCH_JSON}" + (f" and {done.plot}" if done.plot else ""))
