"""Blocks on channel slices of one tensor run stacked: a MaskConnect module compiles to a handful of ops whatever
its cardinality, computing the same function, and the rewrites each keep it exact on graphs written by hand."""

import operator

import pytest
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from prunex.models import create_model
from prunex.passes import CompressOptions, compress
from prunex.passes.stack_blocks import lift_elementwise, mix_slices
from prunex.runtime.dispatch_count import DispatchCounter
from tests.passes.helpers import randomise_batchnorm

X = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _maskconnect(cardinality, **kwargs):
    torch.manual_seed(0)
    model = create_model(
        "maskconnect_cifar", depth=20, bottleneck_width=4, cardinality=cardinality, fan_in=2, in_chans=1, **kwargs
    )
    return randomise_batchnorm(model).eval()


def _aten_ops(gm) -> int:
    with DispatchCounter() as counter, torch.no_grad():
        gm(X)
    return counter.counts.kernel_ops  # views (narrow, unflatten) launch nothing


def _convs(gm) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in gm.modules())


def _compressed_pair(cardinality, projection, separate=True):
    """The model compressed with and (unless ``separate`` is false: None) without block stacking."""
    model = _maskconnect(cardinality, projection=projection)
    stacked, report = compress(model, X)
    unstacked = compress(model, X, options=CompressOptions(stack_blocks=False))[0] if separate else None
    with torch.no_grad():
        ref = model(X)
        for gm in (stacked, unstacked):
            assert gm is None or float((gm(X) - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    assert report.passes[-1].name == "stack_blocks"
    return stacked, unstacked


@pytest.mark.slow  # two compressions of C = 4 and 8 networks, and the block-by-block one (~11 s)
def test_a_maskconnect_module_compiles_to_the_same_ops_whatever_its_cardinality():
    ops = {}
    for c in (4, 8):
        stacked, separate = _compressed_pair(c, "shared", separate=c == 8)
        ops[c] = _aten_ops(stacked)
        if separate is not None:  # block by block: every block's layers and every term of its input
            assert _aten_ops(separate) > 2 * ops[c]
        assert _convs(stacked) <= 3 * 6 + 3 + 1  # per module the three merged layers, the projections, the stem
    assert ops[8] <= ops[4] + 4  # twice the blocks, (about) the same launches


@pytest.mark.slow
def test_per_block_projections_stack_exactly_and_run_fewer_ops():
    """Blocks that read the same input keep one projection between them (CSE), so their modules stack only in
    part; the result is still exact and cheaper than block by block."""
    stacked, separate = _compressed_pair(8, "per_block")
    assert _aten_ops(stacked) < _aten_ops(separate)


def _sliced_graph(blocks: int, width: int) -> fx.GraphModule:
    """y = ReLU(x); x_j = slices of y; z_j = ReLU(x_j + s) (s: one block's channels), then two combinations."""
    graph = fx.Graph()
    root = nn.Module()
    root.relu = nn.ReLU()
    x = graph.placeholder("x")
    s = graph.placeholder("s")
    y = graph.call_module("relu", (x,))
    parts = [graph.call_function(torch.narrow, (y, 1, j * width, width)) for j in range(blocks)]
    lifted = [graph.call_module("relu", (graph.call_function(operator.add, (p, s)),)) for p in parts]
    stacked = graph.call_function(torch.cat, (lifted, 1))
    slices = [graph.call_function(torch.narrow, (stacked, 1, j * width, width)) for j in range(blocks)]
    first = graph.call_function(operator.mul, (graph.call_function(operator.add, (slices[0], slices[1])), 0.5))
    second = graph.call_function(operator.add, (graph.call_function(operator.mul, (slices[2], 3.0)), slices[1]))
    graph.output((first, second))
    return fx.GraphModule(root, graph)


def test_lift_and_mix_keep_the_function_and_leave_no_block_by_block_op():
    gm = _sliced_graph(4, 3)
    x, s = torch.randn(2, 12, 5, 5), torch.randn(2, 3, 5, 5)
    expected = gm(x, s)
    ShapeProp(gm).propagate(x, s)
    rounds = 0
    while lift_elementwise(gm):
        rounds += 1
        gm.recompile()
        ShapeProp(gm).propagate(x, s)
    assert rounds == 2  # the adds, then the ReLUs of their slices
    adds = [n for n in gm.graph.nodes if n.target is operator.add]
    assert len(adds) == 3  # the four ReLU(x_j + s) are one broadcast add; the two combinations are untouched
    assert sum(n.op == "call_module" for n in gm.graph.nodes) == 2  # ReLU(x) and the one lifted ReLU
    assert mix_slices(gm)
    gm.recompile()
    reads_a_slice = [
        n
        for n in gm.graph.nodes
        if n.target in (operator.add, operator.mul) and any(a.target is torch.narrow for a in n.all_input_nodes)
    ]
    assert not reads_a_slice
    assert sum(n.target is torch.matmul for n in gm.graph.nodes) >= 1
    for got, want in zip(gm(x, s), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_branches_on_a_sum_merge_as_they_do_without_stacking():
    torch.manual_seed(0)
    model = randomise_batchnorm(create_model("multiresnet_cifar", depth=14, k=2, in_chans=1)).eval()
    stacked, report = compress(model, X)
    separate, _ = compress(model, X, options=CompressOptions(stack_blocks=False))
    assert _convs(stacked) == _convs(separate) < _convs(model)  # its k branches merged either way, once
    assert _aten_ops(stacked) == _aten_ops(separate)
