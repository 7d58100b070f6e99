"""``prunex export``: ONNX and TensorRT engines, each validated against PyTorch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from prunex.artifacts import InputError, check_writable_parent
from prunex.cli.errors import handle_errors

if TYPE_CHECKING:
    from prunex.exporters.validate import ValidationReport

EXIT_DIVERGED = 3
EXPORTERS = ("dynamo", "legacy")


def export(
    model: Path = typer.Argument(
        ..., help="A compressed model directory, or a checkpoint / run directory (exports the frozen gated network)."
    ),
    onnx_path: Path = typer.Option(None, "--onnx", help="Write an ONNX model here and validate it with ONNX Runtime."),
    trt_path: Path = typer.Option(None, "--trt", help="Build a TensorRT engine here and validate it on the GPU."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 engine (TensorRT 10: builder flag; 11: FP16 ONNX)."),
    exporter: str = typer.Option("dynamo", "--exporter", help="dynamo (torch.export based) or legacy (TorchScript)."),
    opset: int = typer.Option(
        18, "--opset", min=9, help="ONNX opset (>= 18 for the dynamo exporter, at most what the installed onnx knows)."
    ),
    min_batch: int = typer.Option(1, "--min-batch", min=1, help="TensorRT optimization profile: smallest batch."),
    opt_batch: int = typer.Option(32, "--opt-batch", min=1, help="TensorRT optimization profile: batch to tune for."),
    max_batch: int = typer.Option(128, "--max-batch", min=1, help="TensorRT optimization profile: largest batch."),
    workspace_gb: float = typer.Option(4.0, "--workspace-gb", min=0.001, help="TensorRT workspace limit."),
) -> None:
    """Export and validate; writes OUTPUT.validation.json next to each output.

    Validation compares the exported model with PyTorch on real test images (when the dataset is readable) and
    random ones, batch 1 and 16: max |Δ| within 1e-4 of the output scale (FP16: 2e-2) and 100 % top-1 agreement
    (FP16: 99 %). A model that diverges exits with status 3 and says by how much; it is written as
    OUTPUT.diverged (with its report) and an earlier OUTPUT stays as it was.
    """
    from prunex.exporters.export import export_and_validate_onnx, export_and_validate_tensorrt
    from prunex.exporters.sources import load_model
    from prunex.exporters.tensorrt_engine import EngineSpec, require_tensorrt

    console = Console()
    if onnx_path is None and trt_path is None:
        raise typer.BadParameter("give --onnx PATH, --trt PATH or both")
    with handle_errors(console):
        check_options(exporter, opset, min_batch, opt_batch, max_batch)
        for path in (onnx_path, trt_path):
            if path is not None:
                if path.is_dir():
                    raise InputError(f"{path} is a directory; give the path of the file to write")
                check_writable_parent(path)
        if trt_path is not None:
            require_tensorrt()  # fail at once, before any work
        loaded = load_model(model)
        console.print(f"exporting the {loaded.label} {loaded.name} from {model} (input {list(loaded.input_shape)})")
        failed = False
        if onnx_path is not None:

            def onnx_export(tmp: Path):
                report = export_and_validate_onnx(loaded, tmp, exporter=exporter, opset=opset)
                return report, {"model": str(model), "exporter": exporter, "opset": written_opset(tmp)}

            failed |= _print(console, *publish(onnx_path, onnx_export, key="onnx"))
        if trt_path is not None:

            def trt_export(tmp: Path):
                spec = EngineSpec(
                    Path(),
                    tmp,
                    loaded.input_shape,
                    min_batch,
                    opt_batch,
                    max_batch,
                    fp16,
                    int(workspace_gb * (1 << 30)),
                )
                report, extra = export_and_validate_tensorrt(loaded, spec, exporter=exporter, opset=opset)
                return report, {"model": str(model), **extra}

            failed |= _print(console, *publish(trt_path, trt_export, key="engine"))
        if failed:
            raise typer.Exit(EXIT_DIVERGED)


def check_options(exporter: str, opset: int, min_batch: int, opt_batch: int, max_batch: int) -> None:
    """Every option checked before any work."""
    import onnx

    from prunex.exporters.onnx_export import DEFAULT_OPSET

    if exporter not in EXPORTERS:
        raise InputError(f"--exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    newest = onnx.defs.onnx_opset_version()
    lowest = DEFAULT_OPSET if exporter == "dynamo" else 9
    if not lowest <= opset <= newest:
        raise InputError(f"--opset {opset}: the {exporter} exporter writes opsets {lowest} to {newest} here")
    if not min_batch <= opt_batch <= max_batch:
        raise InputError(
            f"TensorRT batches need --min-batch <= --opt-batch <= --max-batch, got {min_batch}, "
            f"{opt_batch}, {max_batch}"
        )


def written_opset(path: Path) -> int:
    """The default-domain opset the exporter actually wrote (it can fall back from the one asked for)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def publish(final: Path, make, *, key: str) -> tuple[ValidationReport, Path, Path]:
    """Run ``make(tmp)`` (export to a temporary sibling, validate) and put its output in place: at ``final`` if it
    passed, else at FINAL.diverged — an earlier ``final`` is replaced only by a validated model."""
    from prunex.exporters.export import write_report

    tmp = final.with_name(f".{final.stem}.{os.getpid()}.tmp{final.suffix}")
    try:
        report, extra = make(tmp)
        path = final if report.passed else final.with_name(f"{final.stem}.diverged{final.suffix}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    report_path = write_report(path.with_suffix(".validation.json"), report, {key: str(path), **extra})
    return report, path, report_path


def _print(console: Console, report: ValidationReport, output: Path, report_path: Path) -> bool:
    colour = "green" if report.passed else "bold red"
    console.print(f"[{colour}]{escape(report.message)}[/{colour}]")
    console.print(f"wrote {output} and {report_path}")
    return not report.passed
