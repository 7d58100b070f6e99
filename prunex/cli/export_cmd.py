"""``prunex export``: ONNX and TensorRT engines, each validated against PyTorch."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from prunex.cli.errors import EXIT_NOT_EQUIVALENT as EXIT_DIVERGED
from prunex.cli.errors import handle_errors
from prunex.cli.views import int8_lines
from prunex.runtime.choices import Exporter, TuneMode
from prunex.runtime.int8_observer import Observer
from prunex.runtime.precision import Precision


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
    precision: Precision = typer.Option(
        Precision.FP32,
        "--precision",
        help="fp32; fp16 (TensorRT engines: TensorRT 10 builder flag, 11 an FP16 ONNX model; the ONNX output stays "
        "fp32); int8 (every output quantized with symmetric Q/DQ, calibrated on the run's own training images and "
        "judged on its test images).",
    ),
    fp16: bool = typer.Option(False, "--fp16", rich_help_panel="TensorRT", help="The same as --precision fp16."),
    exporter: Exporter = typer.Option(
        Exporter.DYNAMO, "--exporter", help="dynamo (torch.export based) or legacy (TorchScript)."
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
    calibration: int = typer.Option(
        512, "--calibration", min=1, rich_help_panel="INT8", help="Training images the INT8 observers see."
    ),
    validation: int = typer.Option(
        1000, "--validation", min=1, rich_help_panel="INT8", help="Held-out test images INT8 is judged on (at most)."
    ),
    observer: Observer = typer.Option(
        Observer.MINMAX,
        "--observer",
        rich_help_panel="INT8",
        help="How activation ranges are read from the calibration images: minmax (the largest |x|), percentile "
        "(99.999 % of |x|), entropy (the KL-optimal threshold).",
    ),
    min_agreement: float = typer.Option(
        0.99, "--min-agreement", min=0.0, max=1.0, rich_help_panel="INT8", help="Required top-1 agreement with fp32."
    ),
    max_accuracy_drop: float = typer.Option(
        0.5, "--max-accuracy-drop", min=0.0, rich_help_panel="INT8", help="Allowed test accuracy drop, in points."
    ),
    tune: TuneMode = typer.Option(
        TuneMode.OFF,
        "--tune",
        metavar="off|full",
        rich_help_panel="INT8",
        help="full: time every layer in float and INT8 on ONNX Runtime and keep in floating point the layers INT8 "
        "does not make faster (the report names them); off: quantize every conv and linear layer.",
    ),
    target_batch: int = typer.Option(
        32, "--target-batch", min=1, rich_help_panel="INT8", help="The batch --tune full times at."
    ),
) -> None:
    """Export and validate; writes OUTPUT.validation.json next to each output.

    Validation compares the exported model with PyTorch on real test images (when the dataset is readable) and
    random ones, batch 1 and 16: max |Δ| within 1e-4 of the output scale (FP16: 2e-2) and 100 % top-1 agreement
    (FP16: 99 %). INT8 is judged as a classifier against the fp32 model on held-out test images: top-1 agreement
    (--min-agreement) and test accuracy (--max-accuracy-drop), with the error as a share of the output scale. A
    model that fails exits with status 3 and says by how much; it is written as OUTPUT.diverged (with its report)
    and an earlier OUTPUT stays as it was.

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
            precision=precision,
            fp16=fp16,
            min_batch=min_batch,
            opt_batch=opt_batch,
            max_batch=max_batch,
            workspace_gb=workspace_gb,
            force=force,
            calibration=calibration,
            validation=validation,
            observer=observer,
            min_agreement=min_agreement,
            max_accuracy_drop=max_accuracy_drop,
            tune=tune,
            target_batch=target_batch,
        )
        loaded = job.model
        console.print(
            f"exporting the {loaded.label} {loaded.name} from {model} (input {list(loaded.input_shape)})"
            + (f" in {job.precision.value}" if job.precision is not Precision.FP32 else "")
        )
        failed = False
        for outcome in job.run():
            colour = "green" if outcome.report.passed else "bold red"
            console.print(f"[{colour}]{escape(outcome.report.message)}[/{colour}]")
            for line in int8_lines(outcome.int8):
                console.print(escape(line))
            console.print(f"wrote {outcome.path} and {outcome.report_path}")
            failed |= not outcome.report.passed
        if failed:
            raise typer.Exit(EXIT_DIVERGED)
