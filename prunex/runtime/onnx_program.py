"""ONNX export (torch.onnx: the dynamo exporter by default, the TorchScript one on request) with a dynamic batch
dimension and onnx.checker's full check."""

from __future__ import annotations

import copy
from pathlib import Path

import onnx
import torch
from torch import nn

from prunex.artifacts.errors import InputError
from prunex.runtime.choices import Exporter, parse_choice

INPUT_NAME, OUTPUT_NAME = "input", "logits"
DEFAULT_OPSET = 18


def newest_opset() -> int:
    """The newest ONNX opset the installed ``onnx`` knows."""
    return onnx.defs.onnx_opset_version()


class ExportError(InputError):
    """The exporter failed or produced a model that does not pass onnx.checker."""


def export_onnx(
    module: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    *,
    exporter: Exporter | str = Exporter.DYNAMO,
    opset: int = DEFAULT_OPSET,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Export ``module`` for inputs shaped like ``example`` (any batch size), check it, return the path."""
    try:
        exporter = parse_choice(Exporter, exporter, "exporter")
    except ValueError as err:
        raise ExportError(str(err)) from None
    if opset < 18 and exporter is Exporter.DYNAMO:
        raise ExportError(f"the dynamo exporter needs opset >= 18, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if dtype != torch.float32:
        module = copy.deepcopy(module)
    module = module.eval().to(dtype)
    example = example.to(dtype)
    if example.shape[0] == 1:  # torch.export specialises a size-1 dimension: trace the batch at 2, export any batch
        example = example.repeat(2, *[1] * (example.dim() - 1))
    try:
        if exporter is Exporter.DYNAMO:
            batch = torch.export.Dim("batch", min=1, max=4096)
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                verbose=False,
                opset_version=opset,
                dynamic_shapes=({0: batch},),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
            )
            program.save(str(path))
        else:
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    except Exception as err:  # the exporters raise many types; the message is what matters
        raise ExportError(f"{exporter} ONNX export failed: {str(err).splitlines()[0]}") from err
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"{path} fails onnx.checker: {str(err).splitlines()[0]}") from None
    return path
