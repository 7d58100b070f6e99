"""INT8 ONNX models by post-training static quantization with ONNX Runtime's quantizer (``quantize_static``).

What TensorRT 11 builds and ONNX Runtime runs with its int8 kernels: explicit QuantizeLinear / DequantizeLinear
pairs (QDQ format, opset >= 13) around every convolution and linear layer, weights per output channel and
activations per tensor, all symmetric signed int8 with zero-point 0 (TensorRT accepts no other). The batch stays
dynamic: the quantizer keeps the float model's inputs.

For a real-valued tensor x with calibrated range [−a, a]: s = a / 127 (weights: a / 63, below) and
q = clamp(round(x / s), −128, 127), x̂ = s·q. The observer chooses a from the calibration images: the largest |x|
seen (min-max, the default), a high percentile of |x| (99.999 %), or the threshold minimising the KL divergence of
the quantized histogram (entropy).

NOTE: weights use 7 bits (``reduce_range``). On x86 CPUs without VNNI, ONNX Runtime's int8 convolutions add pairs of
u8 × s8 products in int16 (``vpmaddubsw``), which saturates for 8-bit weights: on the digits model, quantizing the
stem alone took top-1 agreement with fp32 from 100 % to 98.1 % under ONNX Runtime's int8 kernels while the same
Q/DQ graph evaluated in float agreed 100 %. 7-bit weights cannot saturate and are still symmetric int8.
"""

from __future__ import annotations

import ast
import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from prunex.artifacts.errors import InputError
from prunex.runtime.int8_observer import Observer

QUANTIZED_OPS = ("Conv", "Gemm")  # the network's convolutions and linear layers
MIN_OPSET = 13  # per-axis (per output channel) QuantizeLinear / DequantizeLinear
CALIBRATION_BATCH = 32


class QuantizationError(InputError):
    """The model cannot be quantized as asked (the message says why)."""


@dataclass(frozen=True)
class QuantizeSpec:
    """One quantization: the observer and the layers (ONNX node names) kept in floating point."""

    observer: Observer = Observer.MINMAX
    keep_float: tuple[str, ...] = ()


def calibration_batches(images: np.ndarray) -> list[np.ndarray]:
    """Equal batches of at most 32 images (the histogram observers need one shape; the remainder is dropped)."""
    size = min(CALIBRATION_BATCH, len(images))
    return [images[i : i + size] for i in range(0, len(images) - size + 1, size)]


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over a list of batches."""

    def __init__(self, name: str, batches: list[np.ndarray]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter([{name: b.astype(np.float32)} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover - ONNX Runtime calls it only for some observers
        pass


def calibration_method(observer: Observer):
    """ONNX Runtime's name for ``observer``."""
    from onnxruntime.quantization import CalibrationMethod

    return {
        Observer.MINMAX: CalibrationMethod.MinMax,
        Observer.PERCENTILE: CalibrationMethod.Percentile,
        Observer.ENTROPY: CalibrationMethod.Entropy,
    }[observer]


def opset_of(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def quantize_int8(fp32: Path, out: Path, calibration: np.ndarray, spec: QuantizeSpec = QuantizeSpec()) -> Path:
    """Write the INT8 Q/DQ version of the float ONNX model ``fp32`` to ``out``, calibrated on ``calibration``
    (N, C, H, W images preprocessed as the model's inputs); returns ``out``."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(fp32))
    if opset_of(model) < MIN_OPSET:
        raise QuantizationError(
            f"INT8 Q/DQ needs ONNX opset >= {MIN_OPSET} (per-channel scales), the model has {opset_of(model)}"
        )
    batches = calibration_batches(calibration)
    if not batches:
        raise QuantizationError("INT8 calibration needs at least one image")
    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    quiet = contextlib.redirect_stdout(io.StringIO())  # the histogram observers print their progress
    with tempfile.TemporaryDirectory(prefix="prunex-int8-") as tmp, quiet:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            _Reader(model.graph.input[0].name, batches),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            calibrate_method=calibration_method(spec.observer),
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_exclude=list(spec.keep_float),
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
    check_symmetric(out)
    return out


def zero_points(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every QuantizeLinear's zero-point, by node name."""
    inits = {i.name: i for i in model.graph.initializer}
    found = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            zp = inits.get(node.input[2]) if len(node.input) > 2 else None
            found[node.name] = numpy_helper.to_array(zp) if zp is not None else np.zeros((), np.uint8)
    return found


def check_symmetric(path: Path) -> None:
    """Raise unless every QuantizeLinear of ``path`` has an int8 zero-point of 0 (TensorRT's requirement)."""
    bad = [n for n, zp in zero_points(onnx.load(str(path))).items() if zp.dtype != np.int8 or np.any(zp != 0)]
    if bad:
        raise QuantizationError(f"{path}: {len(bad)} QuantizeLinear node(s) are not symmetric int8, e.g. {bad[0]}")


def quantized_layers(path: Path, names: Sequence[str] | None = None) -> list[str]:
    """The convolutions and linear layers of the Q/DQ model at ``path`` that run in INT8 (DequantizeLinear feeds
    both their data and their weights), in graph order; restricted to ``names`` when given."""
    model = onnx.load(str(path))
    producers = {o: n for n in model.graph.node for o in n.output}
    return [
        n.name
        for n in model.graph.node
        if n.op_type in QUANTIZED_OPS
        and all(i in producers and producers[i].op_type == "DequantizeLinear" for i in n.input[:2])
        and (names is None or n.name in names)
    ]


def layer_labels(path: Path) -> dict[str, str]:
    """ONNX node name → the PyTorch module it came from (``stem.0``), where the exporter recorded it."""
    labels = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
        try:
            names = ast.literal_eval(scopes) if scopes else []
        except (ValueError, SyntaxError):
            names = []
        labels[node.name] = names[-2] if len(names) >= 2 and names[-2] else node.name
    return labels
