"""INT8 only where it is faster: every quantized layer is timed on ONNX Runtime in both forms, and the layers whose
INT8 form is not faster stay in floating point (no Q/DQ around them); the network is then timed end to end.

A layer's forms are cut out of the two whole models (``onnx.utils.extract_model``): the float one from the fp32
model (float in, float out) and the quantized one from the Q/DQ model (int8 in, int8 out: what a layer costs
inside an INT8 chain, where ONNX Runtime fuses DequantizeLinear → Conv → QuantizeLinear into one int8 kernel).
Both are timed in alternating rounds at the target batch; INT8 stays if it is more than the noise margin faster.
Per-layer times miss what happens between layers (a float layer between INT8 ones costs a dequantize and a
quantize), so the tuned network is timed against the fully quantized one and kept unless that is faster.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx.utils import extract_model

from prunex.runtime.timing import summarise, time_interleaved

NOISE_MARGIN = 0.03  # INT8 must be this much faster to be kept
Timer = Callable[[list[tuple[Path, np.ndarray]]], list[float]]  # (model, input) pairs -> median ms each


@dataclass
class LayerChoice:
    layer: str  # ONNX node name
    fp32_ms: float
    int8_ms: float
    int8: bool  # kept quantized

    def as_dict(self) -> dict:
        return asdict(self)


def onnxruntime_timer(warmup: int = 3, iters: int = 20) -> Timer:
    """Median ms of each (model, input) on ONNX Runtime's CPU provider, timed in alternating rounds."""

    def timer(cases: list[tuple[Path, np.ndarray]]) -> list[float]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        runs = []
        for path, x in cases:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: x}
            runs.append(lambda s=session, f=feed: s.run(None, f))
        samples = time_interleaved(runs, cuda=False, warmup=warmup, iters=iters)
        return [summarise(s, len(x)).median_ms for s, (_, x) in zip(samples, cases, strict=True)]

    return timer


def _layer_io(model: onnx.ModelProto, name: str, quantized: bool) -> tuple[str, str]:
    """The tensors a layer reads and writes: in the Q/DQ model, the int8 ones around its Dequantize / Quantize."""
    node = next(n for n in model.graph.node if n.name == name)
    if not quantized:
        return node.input[0], node.output[0]
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers = [n for n in model.graph.node if node.output[0] in n.input]
    source = producers[node.input[0]].input[0]  # DequantizeLinear's int8 input
    quant = [n for n in consumers if n.op_type == "QuantizeLinear"]
    return source, (quant[0].output[0] if len(consumers) == 1 and quant else node.output[0])


def _input_like(model: onnx.ModelProto, tensor: str, batch: int) -> np.ndarray:
    """A random input for ``tensor`` (its shape from shape inference, the batch given)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = list(inferred.graph.value_info) + list(inferred.graph.input)
    info = next(v for v in infos if v.name == tensor)
    dims = [d.dim_value or batch for d in info.type.tensor_type.shape.dim]
    dims[0] = batch
    if info.type.tensor_type.elem_type == onnx.TensorProto.INT8:
        return np.random.default_rng(0).integers(-64, 64, size=dims, dtype=np.int8)
    return np.random.default_rng(0).standard_normal(dims).astype(np.float32)


def choose_layers(fp32: Path, int8: Path, layers: list[str], batch: int, timer: Timer) -> list[LayerChoice]:
    """Time every layer of ``layers`` in its float and INT8 form; which stays INT8."""
    float_model, quant_model = onnx.load(str(fp32)), onnx.load(str(int8))
    choices = []
    with tempfile.TemporaryDirectory(prefix="prunex-int8-layers-") as tmp:
        for i, name in enumerate(layers):
            cases = []
            for kind, path, model, quantized in (("f", fp32, float_model, False), ("q", int8, quant_model, True)):
                source, sink = _layer_io(model, name, quantized)
                cut = Path(tmp) / f"{i}{kind}.onnx"
                extract_model(str(path), str(cut), [source], [sink], check_model=False)
                cases.append((cut, _input_like(model, source, batch)))
            fp32_ms, int8_ms = timer(cases)
            choices.append(LayerChoice(name, fp32_ms, int8_ms, int8_ms < (1 - NOISE_MARGIN) * fp32_ms))
    return choices
