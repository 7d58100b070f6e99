"""torchvision ResNeXt-50 → G-ResNeXt-50 → compress: torchvision's network back, exactly; and learned groups
compile without a run-time gather."""

import onnx
import pytest
import torch
from torchvision.models import resnext50_32x4d

from prunex.models import from_torchvision_resnext
from prunex.nn.dgconv import DGConv2d
from prunex.passes import CompressOptions, compress
from tests.passes.helpers import randomise_batchnorm

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return randomise_batchnorm(resnext50_32x4d(weights=None)).eval()


def _weights(model):
    return sorted(tuple(m.weight.shape) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


@pytest.mark.slow  # full width (~10 s); every gate pattern compresses exactly on a small G-ResNeXt by default
def test_contiguous_groups_compress_back_to_torchvision(reference):
    gm, report = compress(from_torchvision_resnext(reference), X, options=CompressOptions(fold_bn=False))
    assert _weights(gm) == _weights(reference)
    assert sum(p.numel() for p in gm.parameters()) == 25_028_904 == report.totals.params_after
    assert report.totals.params_before == 68_883_240 + 137  # dense DGConv weights and the gates
    with torch.no_grad():
        torch.testing.assert_close(gm(X), reference(X), rtol=0, atol=1e-5)
    assert {g.learned_groups for g in report.groups} == {32} and report.gathers_remaining == []


def _non_contiguous(reference):
    model = from_torchvision_resnext(reference)
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, DGConv2d):
            gates = torch.randint(0, 2, (m.num_gates,), generator=g)
            gates[0], gates[-1] = 1, 0  # a merging bit above a separating one: never contiguous
            with torch.no_grad():
                m.gate.copy_(torch.where(gates.bool(), 1e-8, -1e-8))
    return model


@pytest.mark.slow  # G-ResNeXt-50 at full width (~11 s); the gather-free rule is checked small by default
def test_non_contiguous_groups_leave_no_gather_in_any_bottleneck(reference):
    model = _non_contiguous(reference)
    gm, report = compress(model, X)
    assert not any(g.contiguous for g in report.groups)
    assert report.gathers_remaining == []
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert torch.index_select not in targets
    with torch.no_grad():
        ref = model.eval()(X)
        assert float((gm(X) - ref).abs().max()) <= 1e-4 * float(ref.abs().max())


@pytest.mark.slow
def test_non_contiguous_groups_export_to_onnx_without_a_gather_between_convolutions(reference, tmp_path):
    gm, _ = compress(_non_contiguous(reference), X)
    path = tmp_path / "g50.onnx"
    torch.onnx.export(gm, (X,), str(path), dynamo=True)
    assert between_convolutions(onnx.load(str(path)), {"Gather", "GatherElements", "Transpose"}) == []


def between_convolutions(model: onnx.ModelProto, kinds: set[str]) -> list[str]:
    """Nodes of the given kinds on a data path from one Conv to another (shape arithmetic is not data)."""
    producer = {out: n for n in model.graph.node for out in n.output}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def reaches(node, step, seen) -> bool:
        for nxt in step(node):
            if nxt.op_type == "Conv":
                return True
            if nxt.op_type != "Shape" and id(nxt) not in seen:
                seen.add(id(nxt))
                if reaches(nxt, step, seen):
                    return True
        return False

    def up(n):
        return [producer[i] for i in n.input[:1] if i in producer]

    def down(n):
        return [c for o in n.output for c in consumers.get(o, [])]

    return [
        n.name for n in model.graph.node if n.op_type in kinds and reaches(n, up, set()) and reaches(n, down, set())
    ]
