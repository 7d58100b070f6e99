"""``prunex bench``: latency of gated vs compressed models on the backends this machine has."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.markup import escape

from prunex.artifacts import InputError, atomic_directory, check_writable_parent
from prunex.cli.errors import handle_errors

BENCH_FILES = ("bench.json", "bench.png")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


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
    from prunex.bench.backends import BACKENDS
    from prunex.bench.report import plot_latency, results_tables, unstable_rows
    from prunex.bench.run import DTYPES, BenchModel, BenchSettings, run_grid
    from prunex.exporters.sources import load_pair
    from prunex.train.config import ConfigError
    from prunex.train.distributed import pick_device

    console = Console()
    with handle_errors(console):
        dev = pick_device(device)
        backends = list(BACKENDS) if backend == "all" else _csv(backend)
        unknown = [b for b in backends if b not in BACKENDS] + [d for d in _csv(dtype) if d not in DTYPES]
        if unknown:
            raise ConfigError(f"unknown backend / dtype: {', '.join(unknown)}")
        try:
            batches = [int(b) for b in _csv(batch)]
        except ValueError:
            raise ConfigError(f"--batch takes comma-separated integers, got {batch!r}") from None
        if not batches or min(batches) < 1:
            raise ConfigError(f"--batch takes comma-separated batch sizes of at least 1, got {batch!r}")
        if not backends:
            raise ConfigError("--backend names no backend")
        check_output_dir(out)
        bench_models = []
        for path in models:
            for loaded in load_pair(path):  # one argument = one group: its gated and compressed models
                bench_models.append(BenchModel(loaded.name, loaded.label, str(path), loaded.module, loaded.input_shape))
        settings = BenchSettings(
            dev,
            backends,
            _csv(dtype),
            batches,
            dev.type == "cuda" if channels_last is None else channels_last,
            warmup,
            iters,
            min_seconds,
        )
        console.print(f"benchmarking {len(bench_models)} model(s) on {dev} with {torch.get_num_threads()} threads")

        def show(row) -> None:
            if row["status"] == "ok":
                line = f"{row['model']} [{row['kind']}] {row['backend']} {row['dtype']} batch {row['batch']}"
                console.print(f"  {escape(line)}: median {row['median_ms']:.3f} ms")

        with atomic_directory(out, replace=True) as tmp:
            result = run_grid(bench_models, settings, on_row=show)
            (tmp / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
            for table in results_tables(result):
                console.print(table)
            for line in unstable_rows(result):
                console.print(f"[yellow]warning: coefficient of variation above 2.5 %: {escape(line)}[/yellow]")
            missing = sorted({(r["backend"], r["reason"]) for r in result["results"] if r["status"] != "ok"})
            for name, reason in missing:
                console.print(f"[dim]{name} not measured: {escape(reason)}[/dim]")
            png = plot_latency(result, tmp / "bench.png") if plots else None
            if plots:
                from prunex.cli.inspect_cmd import write_pictures

                for i, path in enumerate(models):
                    gated = [m for m in bench_models if m.group == str(path) and m.kind == "gated"]
                    if gated:
                        pictures = tmp / f"learned-{i}-{path.name}"
                        write_pictures(console, gated[0].module, pictures, None, ("svg", "png"))
        console.print(f"wrote {out / 'bench.json'}" + (f" and {out / 'bench.png'}" if png else ""))


def check_output_dir(out: Path) -> None:
    """``out`` may be replaced if it holds nothing but an earlier benchmark's files (or does not exist)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a directory")
    if out.exists():
        others = [f.name for f in out.iterdir() if f.name not in BENCH_FILES and not f.name.startswith("learned-")]
        if others:
            raise InputError(
                f"{out} holds files prunex bench did not write ({', '.join(sorted(others)[:5])}); choose another --out"
            )
    check_writable_parent(out)
