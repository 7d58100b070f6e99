"""The TensorRT builder against a recording stand-in of the documented API (TensorRT 10 and 11), and the real
thing where it exists."""

import importlib.util
import types
from pathlib import Path

import pytest
import torch

from prunex.exporters.tensorrt_engine import EngineSpec, build_engine, needs_fp16_onnx


class Recorder:
    """Records every call made on it or on the objects it returns."""

    def __init__(self, log, name="trt"):
        self._log, self._name = log, name

    def __getattr__(self, attr):
        return Recorder(self._log, f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        self._log.append((self._name, args))
        if self._name.endswith("parse"):
            return True
        if self._name.endswith("build_serialized_network"):
            return b"engine-bytes"
        if self._name.endswith("serialize"):
            return b"cache-bytes"
        if self._name.endswith("get_input"):
            return types.SimpleNamespace(name="input")
        return Recorder(self._log, f"{self._name}()")

    def __int__(self):
        return 5  # the STRONGLY_TYPED enum value


def fake_tensorrt(version):
    log = []
    trt = Recorder(log)
    module = types.SimpleNamespace(
        __version__=version,
        Logger=trt.Logger,
        Builder=trt.Builder,
        OnnxParser=trt.OnnxParser,
        NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=Recorder(log, "STRONGLY_TYPED")),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="WORKSPACE"),
        BuilderFlag=types.SimpleNamespace(FP16="FP16"),
    )
    module.Logger.WARNING = "WARNING"
    return module, log


def _build(tmp_path: Path, version: str, fp16: bool):
    trt, log = fake_tensorrt(version)
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(b"onnx")
    spec = EngineSpec(onnx_path, tmp_path / "m.engine", (3, 32, 32), 1, 8, 16, fp16, 1 << 30)
    build_engine(spec, trt)
    return spec, log


def _calls(log, suffix):
    return [args for name, args in log if name.endswith(suffix)]


def test_tensorrt10_fp16_uses_the_builder_flag_on_a_weakly_typed_network(tmp_path):
    spec, log = _build(tmp_path, "10.13.0", fp16=True)
    assert _calls(log, "create_network") == [(0,)]
    assert _calls(log, "set_flag") == [("FP16",)]
    assert _calls(log, "set_shape") == [("input", (1, 3, 32, 32), (8, 3, 32, 32), (16, 3, 32, 32))]
    assert _calls(log, "set_memory_pool_limit") == [("WORKSPACE", 1 << 30)]
    assert spec.engine_path.read_bytes() == b"engine-bytes"
    assert spec.timing_cache_path.read_bytes() == b"cache-bytes"  # kept for the next build


def test_tensorrt11_builds_strongly_typed_without_precision_flags(tmp_path):
    _, log = _build(tmp_path, "11.4.0", fp16=True)
    assert _calls(log, "create_network") == [(1 << 5,)]
    assert _calls(log, "set_flag") == []
    trt11, _ = fake_tensorrt("11.4.0")
    trt10, _ = fake_tensorrt("10.13.0")
    assert needs_fp16_onnx(trt11, True) and not needs_fp16_onnx(trt10, True) and not needs_fp16_onnx(trt11, False)


def test_a_second_build_reuses_the_timing_cache(tmp_path):
    _build(tmp_path, "10.13.0", fp16=False)
    _, log = _build(tmp_path, "10.13.0", fp16=False)
    assert _calls(log, "create_timing_cache") == [(b"cache-bytes",)]


HAS_TRT = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


@pytest.mark.trt
@pytest.mark.skipif(not HAS_TRT, reason="needs the tensorrt package (pip install 'prunex[trt]') and a CUDA GPU")
@pytest.mark.parametrize("fp16", [False, True])
def test_real_engine_matches_pytorch(tmp_path, fp16):
    from prunex.exporters.export import export_and_validate_tensorrt
    from prunex.exporters.sources import LoadedModel
    from prunex.models import create_model
    from prunex.passes import compress

    model = create_model("resnext_cifar", depth=11, bottleneck_width=4, cardinality=4).eval()
    gm, _ = compress(model, torch.randn(2, 3, 32, 32))
    loaded = LoadedModel("compressed", gm, (3, 32, 32), tmp_path, None, "resnext_cifar")
    spec = EngineSpec(Path(), tmp_path / "m.engine", (3, 32, 32), 1, 16, 16, fp16)
    report, _ = export_and_validate_tensorrt(loaded, spec, exporter="dynamo", opset=18)
    assert report.passed, report.message
