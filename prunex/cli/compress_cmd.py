"""``prunex compress``: compile a trained gated checkpoint into a verified network of standard layers."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from prunex.cli.errors import handle_errors, warn
from prunex.cli.views import print_report
from prunex.runtime.choices import Backend, TuneMode


def compress(
    checkpoint: Path = typer.Argument(..., help="A checkpoint from `prunex train` (file or run directory)."),
    out: Path = typer.Option(
        None, "--out", "-o", metavar="DIR", help="Output directory (default: RUN_DIR/compressed)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a compressed model already in the output directory."),
    fold_bn: bool = typer.Option(True, "--fold-bn/--no-fold-bn", help="Fold BatchNorm into the preceding convs."),
    merge: bool = typer.Option(True, "--merge/--no-merge", help="Merge parallel branches into wide / grouped convs."),
    tolerance: float = typer.Option(
        1e-4, "--tolerance", min=0.0, help="Accepted max |Δ| per pass, relative to the output scale."
    ),
    calibration: int = typer.Option(
        32, "--calibration", min=1, help="Real test images to verify on (plus as many random)."
    ),
    tune: TuneMode = typer.Option(
        TuneMode.OFF,
        "--tune",
        rich_help_panel="Latency-aware lowering",
        metavar="off|cache|full",
        help="off: keep the learned structure; cache: choose each grouped conv's "
        "realisation and merged-or-separate branches by measured time, reusing cached timings; "
        "full: measure everything again.",
    ),
    target_device: str = typer.Option(
        "cpu",
        "--target-device",
        rich_help_panel="Latency-aware lowering",
        metavar="DEVICE",
        help="Device to tune for: cpu or cuda[:N].",
    ),
    target_batch: int = typer.Option(
        1, "--target-batch", min=1, rich_help_panel="Latency-aware lowering", help="Batch size to tune for."
    ),
    target_dtype: str = typer.Option(
        "fp32",
        "--target-dtype",
        rich_help_panel="Latency-aware lowering",
        metavar="fp32|fp16",
        help="fp32 or fp16 (fp16 needs CUDA).",
    ),
    target_backend: Backend = typer.Option(
        Backend.EAGER,
        "--target-backend",
        rich_help_panel="Latency-aware lowering",
        help="Runtime to tune for, as prunex bench runs it: eager, cuda-graphs, compile, onnxruntime or tensorrt "
        "(ONNX Runtime and TensorRT time an ONNX export of each candidate layer and of the whole network).",
    ),
    channels_last: bool = typer.Option(
        False, "--channels-last", rich_help_panel="Latency-aware lowering", help="Tune for NHWC inputs."
    ),
    plots: bool = typer.Option(False, "--plots", help="Also draw what was learned (as `prunex inspect`) into --out."),
    tuning_cache: Path = typer.Option(
        None,
        "--tuning-cache",
        rich_help_panel="Latency-aware lowering",
        help="Timing cache file (default ~/.cache/prunex/tuning.json, or $PRUNEX_CACHE_DIR/tuning.json); a path "
        "that is not a prunex tuning cache is refused and left as it is.",
    ),
) -> None:
    """Compile the learned structure away and verify every pass; writes model.json + model.safetensors (standard
    layers, no pickle) and report.json.

    Passes: fold gate constants → remove dead blocks → CSE → fold BN → merge branches → DGConv to grouped convs →
    propagate permutations → remove no-ops → stack blocks (and, with --tune, choose each layer's realisation, then
    the fastest whole network of tuned, untuned, dense and separate blocks). A pass that changes the output beyond
    the tolerance stops the run (exit 3) and writes failure.json instead (beside OUT, as OUT.failure.json, when OUT
    already holds a model).

    Nothing is written until the whole compilation has succeeded: a failed or interrupted run leaves OUT as it
    was, and --force replaces an earlier compressed model only then.
    """
    from prunex.artifacts import layout as files
    from prunex.artifacts.errors import InputError
    from prunex.passes.tuning import TuneTarget
    from prunex.workflows.compress import prepare_compress

    console = Console(soft_wrap=True)  # lines are never hard-wrapped (paths stay whole); tables fit the width
    with handle_errors():
        try:
            target = TuneTarget(target_device, target_dtype, target_batch, channels_last, target_backend)
        except ValueError as err:
            raise InputError(str(err)) from None
        job = prepare_compress(
            checkpoint,
            out=out,
            force=force,
            fold_bn=fold_bn,
            merge=merge,
            tolerance=tolerance,
            calibration=calibration,
            tune=tune,
            target=target,
            tuning_cache=tuning_cache,
            plots=plots,
        )
        console.print(f"compressing {escape(job.spec.name)} from {checkpoint}; verifying on {job.source}")
        progress = Progress(TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), console=console)
        task = progress.add_task("freeze + trace", total=job.steps)
        with progress:
            result = job.run(lambda record: progress.update(task, advance=1, description=record.name))
        for warning in result.warnings:
            warn(warning)
        print_report(console, result.report)
        if result.pictures:
            console.print(f"pictures: {', '.join(p.name for p in result.pictures)}")
        console.print(
            f"compressed model: [bold]{result.out}[/bold] ({files.MODEL_SPEC}, {files.MODEL_WEIGHTS})   "
            f"report: {result.out / files.REPORT}"
        )
