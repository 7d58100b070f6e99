"""``prunex export``: ONNX and TensorRT engines, each validated against PyTorch."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from prunex.cli.errors import EXIT_NOT_EQUIVALENT as EXIT_DIVERGED
from prunex.cli.errors import handle_errors


def export(
    model: Path = typer.Argument(
        ..., help="A compressed model directory, or a checkpoint / run directory (exports the frozen gated network)."
    ),
    onnx_path: Path = typer.Option(
        None, "--onnx", metavar="FILE", help="Write an ONNX model here and validate it with ONNX Runtime."
    ),
    trt_path: Path = typer.Option(
        None, "--trt", metavar="FILE", help="Build a TensorRT engine here and validate it on the GPU."
    ),
    fp16: bool = typer.Option(
        False, "--fp16", rich_help_panel="TensorRT", help="FP16 engine (TensorRT 10: builder flag; 11: FP16 ONNX)."
    ),
    exporter: str = typer.Option(
        "dynamo", "--exporter", metavar="dynamo|legacy", help="dynamo (torch.export based) or legacy (TorchScript)."
    ),
    opset: int = typer.Option(
        18, "--opset", min=9, help="ONNX opset (>= 18 for the dynamo exporter, at most what the installed onnx knows)."
    ),
    min_batch: int = typer.Option(
        1, "--min-batch", min=1, rich_help_panel="TensorRT", help="TensorRT optimization profile: smallest batch."
    ),
    opt_batch: int = typer.Option(
        32, "--opt-batch", min=1, rich_help_panel="TensorRT", help="TensorRT optimization profile: batch to tune for."
    ),
    max_batch: int = typer.Option(
        128, "--max-batch", min=1, rich_help_panel="TensorRT", help="TensorRT optimization profile: largest batch."
    ),
    workspace_gb: float = typer.Option(
        4.0, "--workspace-gb", min=0.001, rich_help_panel="TensorRT", help="TensorRT workspace limit."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an earlier export at the same path (never any other file)."
    ),
) -> None:
    """Export and validate; writes OUTPUT.validation.json next to each output.

    Validation compares the exported model with PyTorch on real test images (when the dataset is readable) and
    random ones, batch 1 and 16: max |Δ| within 1e-4 of the output scale (FP16: 2e-2) and 100 % top-1 agreement
    (FP16: 99 %). A model that diverges exits with status 3 and says by how much; it is written as
    OUTPUT.diverged (with its report) and an earlier OUTPUT stays as it was.

    An existing file at OUTPUT (or its report) is replaced only if an earlier export wrote it, and only with
    --force; a checkpoint, the model's own files or anything else is never replaced.
    """
    from prunex.workflows.export import prepare_export

    console = Console(soft_wrap=True)  # lines are never hard-wrapped (paths stay whole); tables fit the width
    with handle_errors():
        job = prepare_export(
            model,
            onnx=onnx_path,
            trt=trt_path,
            exporter=exporter,
            opset=opset,
            fp16=fp16,
            min_batch=min_batch,
            opt_batch=opt_batch,
            max_batch=max_batch,
            workspace_gb=workspace_gb,
            force=force,
        )
        loaded = job.model
        console.print(f"exporting the {loaded.label} {loaded.name} from {model} (input {list(loaded.input_shape)})")
        failed = False
        for outcome in job.run():
            colour = "green" if outcome.report.passed else "bold red"
            console.print(f"[{colour}]{escape(outcome.report.message)}[/{colour}]")
            console.print(f"wrote {outcome.path} and {outcome.report_path}")
            failed |= not outcome.report.passed
        if failed:
            raise typer.Exit(EXIT_DIVERGED)
