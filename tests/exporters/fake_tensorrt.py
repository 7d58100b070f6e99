"""A small emulation of the documented TensorRT 10 / 11 builder, for machines without TensorRT.

It holds the rules the builder enforces, not a list of expected calls: the parser reads the real ONNX file (input
name, shape, element type); TensorRT 11 networks are always strongly typed and its ``BuilderFlag`` has no precision
flags; a strongly typed network takes its precision from the ONNX types and refuses precision flags; a weakly typed
one (TensorRT 10) is FP16 only with ``BuilderFlag.FP16``; a dynamic input needs a profile with min ≤ opt ≤ max whose
other dimensions match the model; the timing cache carries what earlier builds measured. The "engine" it writes is
a JSON description of what was built, so a test can check the result. INT8 (explicit quantization, the only kind
TensorRT 11 has): QuantizeLinear / DequantizeLinear nodes in the ONNX model, which the parser accepts only
symmetric (zero-point 0); a weakly typed network (TensorRT 10) builds them only with ``BuilderFlag.INT8``.
"""

from __future__ import annotations

import json
import types

import onnx
from onnx import numpy_helper

STRONGLY_TYPED = 1  # NetworkDefinitionCreationFlag value: create_network(1 << STRONGLY_TYPED)


class Logger:
    WARNING = "WARNING"

    def __init__(self, severity: str) -> None:
        self.severity = severity


class Network:
    def __init__(self, strongly_typed: bool) -> None:
        self.strongly_typed = strongly_typed
        self.inputs: list[types.SimpleNamespace] = []
        self.elem_type: int | None = None
        self.quantized = False  # the model holds Q/DQ nodes

    def get_input(self, i: int) -> types.SimpleNamespace:
        return self.inputs[i]


class OnnxParser:
    def __init__(self, network: Network, logger: Logger) -> None:
        self.network, self.errors = network, []

    def parse(self, data: bytes) -> bool:
        try:
            model = onnx.load_from_string(data)
            onnx.checker.check_model(model)
        except Exception as err:  # noqa: BLE001 - TensorRT reports any parse failure as an error string
            self.errors = [f"ONNX parse error: {err}"]
            return False
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type == "QuantizeLinear" and len(node.input) > 2 and inits[node.input[2]].any():
                self.errors = [f"{node.name}: TensorRT supports only symmetric quantization (zero-point 0)"]
                return False
        self.network.quantized = any(n.op_type == "QuantizeLinear" for n in model.graph.node)
        graph_input = model.graph.input[0]
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in graph_input.type.tensor_type.shape.dim]
        self.network.inputs = [types.SimpleNamespace(name=graph_input.name, shape=tuple(dims))]
        self.network.elem_type = graph_input.type.tensor_type.elem_type
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> str:
        return self.errors[i]


class Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:
        self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


class TimingCache:
    def __init__(self, data: bytes) -> None:
        self.entries: list[str] = json.loads(data) if data else []

    def serialize(self) -> bytes:
        return json.dumps(self.entries).encode()


class BuilderConfig:
    def __init__(self, precision_flags: bool) -> None:
        self.flags: set[str] = set()
        self.pools: dict[str, int] = {}
        self.profiles: list[Profile] = []
        self.cache: TimingCache | None = None
        self._precision_flags = precision_flags

    def set_memory_pool_limit(self, pool: str, size: int) -> None:
        self.pools[pool] = size

    def set_flag(self, flag: str) -> None:
        self.flags.add(flag)

    def add_optimization_profile(self, profile: Profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> TimingCache:
        return TimingCache(data)

    def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
        self.cache = cache
        return True

    def get_timing_cache(self) -> TimingCache:
        return self.cache


class Builder:
    def __init__(self, trt: FakeTensorRT, logger: Logger) -> None:
        self.trt = trt

    def create_network(self, flags: int) -> Network:
        return Network(self.trt.major >= 11 or bool(flags & (1 << STRONGLY_TYPED)))

    def create_builder_config(self) -> BuilderConfig:
        return BuilderConfig(precision_flags=self.trt.major < 11)

    def create_optimization_profile(self) -> Profile:
        return Profile()

    def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes | None:
        if network.strongly_typed and config.flags & {"FP16", "INT8"}:
            return None  # precision flags are an error on strongly typed networks
        if network.quantized and not network.strongly_typed and "INT8" not in config.flags:
            return None  # TensorRT 10: Q/DQ layers need the INT8 flag
        (inp,) = network.inputs
        if -1 in inp.shape:
            if not config.profiles or inp.name not in config.profiles[0].shapes:
                return None
            lo, opt, hi = config.profiles[0].shapes[inp.name]
            fixed = [i for i, d in enumerate(inp.shape) if d != -1]
            if any(s[i] != inp.shape[i] for s in (lo, opt, hi) for i in fixed):
                return None
            if not all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
                return None
        half = network.elem_type == onnx.TensorProto.FLOAT16
        precision = "fp16" if half or (not network.strongly_typed and "FP16" in config.flags) else "fp32"
        precision = "int8" if network.quantized else precision
        key = f"{inp.name}{inp.shape}"
        hit = config.cache is not None and key in config.cache.entries
        if config.cache is not None and not hit:
            config.cache.entries.append(key)
        engine = {
            "precision": precision,
            "strongly_typed": network.strongly_typed,
            "input": inp.name,
            "profile": [list(s) for s in config.profiles[0].shapes[inp.name]] if config.profiles else None,
            "workspace": config.pools.get("WORKSPACE"),
            "timing_cache_hit": hit,
        }
        return json.dumps(engine).encode()


class FakeTensorRT(types.SimpleNamespace):
    """The module: ``FakeTensorRT("10.13.0")`` or ``FakeTensorRT("11.4.0")``."""

    def __init__(self, version: str) -> None:
        major = int(version.split(".")[0])
        flags = {"FP16": "FP16", "INT8": "INT8"} if major < 11 else {"DEBUG": "DEBUG"}  # 11: no precision flags
        super().__init__(
            __version__=version,
            major=major,
            Logger=Logger,
            OnnxParser=OnnxParser,
            NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=STRONGLY_TYPED),
            MemoryPoolType=types.SimpleNamespace(WORKSPACE="WORKSPACE"),
            BuilderFlag=types.SimpleNamespace(**flags),
        )
        self.Builder = lambda logger: Builder(self, logger)
