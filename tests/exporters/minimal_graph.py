"""What a minimal exported graph is: nothing onnxsim can still remove, and none of the ops that only move data
around (ScatterND from in-place writes into views, Transpose from channel shuffles, Identity)."""

from collections import Counter
from pathlib import Path

import onnx

MOVERS = ("ScatterND", "Transpose", "Identity")


def op_counts(path: Path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def assert_minimal(path: Path) -> None:
    import onnxsim

    model = onnx.load(str(path))
    counts = Counter(n.op_type for n in model.graph.node)
    assert not {op: counts[op] for op in MOVERS if counts[op]}, f"{path.name} holds data-moving ops: {counts}"
    simplified, ok = onnxsim.simplify(model)
    assert ok
    left = Counter(n.op_type for n in simplified.graph.node)
    assert len(simplified.graph.node) == len(model.graph.node), f"onnxsim removes {counts - left} from {path.name}"
