"""The TensorRT builder against an emulation of the documented TensorRT 10 and 11 builder rules (what engine comes
out), and the real thing where it exists."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from prunex.runtime.precision import Precision
from prunex.runtime.tensorrt_engine import EngineSpec, build_engine, needs_fp16_onnx
from tests.exporters.fake_tensorrt import FakeTensorRT


def onnx_model(path: Path, elem_type: int = onnx.TensorProto.FLOAT, batch: str | int = "batch") -> Path:
    """A one-layer ONNX model (1×1 conv, 3 → 4 channels) with a dynamic batch dimension."""
    w = numpy_helper.from_array(
        np.ones((4, 3, 1, 1), dtype=np.float16 if elem_type == onnx.TensorProto.FLOAT16 else np.float32), "w"
    )
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["output"])],
        "g",
        [helper.make_tensor_value_info("input", elem_type, [batch, 3, 32, 32])],
        [helper.make_tensor_value_info("output", elem_type, [batch, 4, 32, 32])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def build(tmp_path: Path, version: str, fp16: bool, elem_type: int = onnx.TensorProto.FLOAT) -> dict:
    """Build with the emulated TensorRT ``version``; the engine's description."""
    spec = EngineSpec(
        onnx_model(tmp_path / "m.onnx", elem_type),
        tmp_path / "m.engine",
        (3, 32, 32),
        1,
        8,
        16,
        Precision.FP16 if fp16 else Precision.FP32,
        1 << 30,
    )
    assert build_engine(spec, FakeTensorRT(version)) == spec.engine_path
    return json.loads(spec.engine_path.read_bytes())


def test_tensorrt10_builds_an_fp16_engine_from_an_fp32_model(tmp_path):
    engine = build(tmp_path, "10.13.0", fp16=True)
    assert engine["precision"] == "fp16" and not engine["strongly_typed"]
    assert engine["profile"] == [[1, 3, 32, 32], [8, 3, 32, 32], [16, 3, 32, 32]]  # the batch range asked for
    assert engine["workspace"] == 1 << 30
    assert build(tmp_path, "10.13.0", fp16=False)["precision"] == "fp32"


def test_tensorrt11_builds_fp16_strongly_typed_from_an_fp16_model(tmp_path):
    trt11, trt10 = FakeTensorRT("11.4.0"), FakeTensorRT("10.13.0")
    assert needs_fp16_onnx(trt11, Precision.FP16) and not needs_fp16_onnx(trt10, Precision.FP16)
    assert not needs_fp16_onnx(trt11, Precision.FP32) and not needs_fp16_onnx(trt11, Precision.INT8)
    engine = build(tmp_path, "11.4.0", fp16=True, elem_type=onnx.TensorProto.FLOAT16)
    assert engine["precision"] == "fp16" and engine["strongly_typed"]  # no precision flag (11 has none) was needed
    assert build(tmp_path, "11.4.0", fp16=False)["precision"] == "fp32"


def test_a_second_build_reuses_the_first_builds_timing_cache(tmp_path):
    assert build(tmp_path, "10.13.0", fp16=False)["timing_cache_hit"] is False
    assert (tmp_path / "m.timing-cache").exists()  # kept next to the engine
    assert build(tmp_path, "10.13.0", fp16=False)["timing_cache_hit"] is True


def test_an_unparsable_model_is_an_error_that_names_the_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(RuntimeError, match="could not parse .*bad.onnx"):
        build_engine(EngineSpec(bad, tmp_path / "m.engine", (3, 32, 32)), FakeTensorRT("10.13.0"))
    assert not (tmp_path / "m.engine").exists()


def int8_model(tmp_path: Path) -> Path:
    """The one-layer model quantized by prunex (symmetric Q/DQ, calibrated on random images)."""
    from prunex.runtime.onnx_int8 import quantize_int8

    calibration = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    return quantize_int8(onnx_model(tmp_path / "fp32.onnx"), tmp_path / "int8.onnx", calibration)


@pytest.mark.parametrize(("version", "strongly_typed"), [("10.13.0", False), ("11.4.0", True)])
def test_int8_engines_build_from_prunex_s_symmetric_qdq_model(tmp_path, version, strongly_typed):
    """TensorRT 10 takes the Q/DQ model with the INT8 flag (without it the build fails); 11 builds it strongly
    typed, where any precision flag would fail the build; both parse only symmetric Q/DQ."""
    spec = EngineSpec(int8_model(tmp_path), tmp_path / "m.engine", (3, 32, 32), 1, 8, 16, Precision.INT8)
    build_engine(spec, FakeTensorRT(version))
    engine = json.loads(spec.engine_path.read_bytes())
    assert engine["precision"] == "int8" and engine["strongly_typed"] is strongly_typed


def test_an_asymmetric_qdq_model_is_refused_by_prunex_and_by_the_tensorrt_parser(tmp_path):
    from prunex.runtime.onnx_int8 import QuantizationError, check_symmetric

    model = onnx.load(str(int8_model(tmp_path)))
    zp = next(
        i for i in model.graph.initializer if i.name.endswith("zero_point") and i.data_type == onnx.TensorProto.INT8
    )
    zp.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(zp).shape, 3, np.int8), zp.name))
    onnx.save(model, tmp_path / "asym.onnx")
    with pytest.raises(QuantizationError, match="not symmetric int8"):
        check_symmetric(tmp_path / "asym.onnx")
    with pytest.raises(RuntimeError, match="symmetric"):
        build_engine(EngineSpec(tmp_path / "asym.onnx", tmp_path / "m.engine", (3, 32, 32)), FakeTensorRT("11.4.0"))


HAS_TRT = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


@pytest.mark.trt
@pytest.mark.skipif(not HAS_TRT, reason="needs the tensorrt package (pip install 'prunex[trt]') and a CUDA GPU")
@pytest.mark.parametrize("precision", [Precision.FP32, Precision.FP16, Precision.INT8])
def test_real_engine_matches_pytorch(tmp_path, precision):
    from prunex.exporters.export import export_and_validate_tensorrt
    from prunex.exporters.sources import LoadedModel
    from prunex.models import create_model
    from prunex.passes import compress

    model = create_model("resnext_cifar", depth=11, bottleneck_width=4, cardinality=4).eval()
    gm, _ = compress(model, torch.randn(2, 3, 32, 32))
    loaded = LoadedModel("compressed", gm, (3, 32, 32), tmp_path, None, "resnext_cifar", {})
    spec = EngineSpec(Path(), tmp_path / "m.engine", (3, 32, 32), 1, 16, 16, precision)
    int8 = quantized = None
    if precision is Precision.INT8:  # judged against the fp32 model's own predictions on held-out images
        from prunex.exporters.int8 import Int8Data, Int8Export, Int8Settings, quantized_onnx

        images = torch.randn(64, 3, 32, 32)
        with torch.no_grad():
            labels = gm(images).argmax(1)
        data = Int8Data(torch.randn(64, 3, 32, 32).numpy(), images, labels, "random images")
        int8 = Int8Export(Int8Settings(), data)
        quantized = quantized_onnx(loaded, tmp_path / "int8.onnx", data, int8.settings)
    report, _ = export_and_validate_tensorrt(loaded, spec, exporter="dynamo", opset=18, int8=int8, quantized=quantized)
    assert report.passed, report.message
