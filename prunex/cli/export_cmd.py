"""``prunex export``: ONNX and TensorRT engines, each validated against PyTorch."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from prunex.cli.errors import handle_errors

EXIT_DIVERGED = 3


def export(
    model: Path = typer.Argument(
        ..., help="A compressed model directory, or a checkpoint / run directory (exports the frozen gated network)."
    ),
    onnx_path: Path = typer.Option(None, "--onnx", help="Write an ONNX model here and validate it with ONNX Runtime."),
    trt_path: Path = typer.Option(None, "--trt", help="Build a TensorRT engine here and validate it on the GPU."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 engine (TensorRT 10: builder flag; 11: FP16 ONNX)."),
    exporter: str = typer.Option("dynamo", "--exporter", help="dynamo (torch.export based) or legacy (TorchScript)."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (>= 18 for the dynamo exporter)."),
    min_batch: int = typer.Option(1, "--min-batch", help="TensorRT optimization profile: smallest batch."),
    opt_batch: int = typer.Option(32, "--opt-batch", help="TensorRT optimization profile: batch to tune for."),
    max_batch: int = typer.Option(128, "--max-batch", help="TensorRT optimization profile: largest batch."),
    workspace_gb: float = typer.Option(4.0, "--workspace-gb", help="TensorRT workspace limit."),
) -> None:
    """Export and validate; writes OUTPUT.validation.json next to each output.

    Validation compares the exported model with PyTorch on real test images (when the dataset is readable) and
    random ones, batch 1 and 16: max |Δ| within 1e-4 of the output scale (FP16: 2e-2) and 100 % top-1 agreement
    (FP16: 99 %). A model that diverges exits with status 3 and says by how much.
    """
    from prunex.exporters.export import export_and_validate_onnx, export_and_validate_tensorrt, write_report
    from prunex.exporters.onnx_export import ExportError
    from prunex.exporters.sources import load_model
    from prunex.exporters.tensorrt_engine import EngineSpec, TensorRTUnavailable, require_tensorrt

    console = Console()
    if onnx_path is None and trt_path is None:
        raise typer.BadParameter("give --onnx PATH, --trt PATH or both")
    with handle_errors(console):
        if trt_path is not None:
            try:
                require_tensorrt()  # fail at once, before any work
            except TensorRTUnavailable as err:
                console.print(f"[bold red]error:[/bold red] {escape(str(err))}")
                raise typer.Exit(2) from None
        loaded = load_model(model)
        console.print(f"exporting the {loaded.label} {loaded.name} from {model} (input {list(loaded.input_shape)})")
        failed = False
        try:
            if onnx_path is not None:
                report = export_and_validate_onnx(loaded, onnx_path, exporter=exporter, opset=opset)
                path = write_report(
                    onnx_path.with_suffix(".validation.json"),
                    report,
                    {"model": str(model), "onnx": str(onnx_path), "exporter": exporter, "opset": opset},
                )
                failed |= _print(console, report, onnx_path, path)
            if trt_path is not None:
                spec = EngineSpec(
                    Path(),
                    trt_path,
                    loaded.input_shape,
                    min_batch,
                    opt_batch,
                    max_batch,
                    fp16,
                    int(workspace_gb * (1 << 30)),
                )
                report, extra = export_and_validate_tensorrt(loaded, spec, exporter=exporter, opset=opset)
                path = write_report(
                    trt_path.with_suffix(".validation.json"),
                    report,
                    {"model": str(model), "engine": str(trt_path), **extra},
                )
                failed |= _print(console, report, trt_path, path)
        except ExportError as err:
            console.print(f"[bold red]export failed:[/bold red] {escape(str(err))}")
            raise typer.Exit(2) from None
        if failed:
            raise typer.Exit(EXIT_DIVERGED)


def _print(console: Console, report, output: Path, report_path: Path) -> bool:
    colour = "green" if report.passed else "bold red"
    console.print(f"[{colour}]{escape(report.message)}[/{colour}]")
    console.print(f"wrote {output} and {report_path}")
    return not report.passed
