"""Exporters: ONNX (validated with ONNX Runtime) and TensorRT engines (optional extra), with numerical reports."""

from prunex.exporters.sources import LoadedModel, load_model, load_pair
from prunex.exporters.validate import ValidationReport, validate
from prunex.runtime.onnx_program import ExportError, export_onnx
from prunex.runtime.tensorrt_engine import EngineSpec, TensorRTUnavailable

__all__ = [
    "EngineSpec",
    "ExportError",
    "LoadedModel",
    "TensorRTUnavailable",
    "ValidationReport",
    "export_onnx",
    "load_model",
    "load_pair",
    "validate",
]
