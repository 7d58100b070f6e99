"""DGConv's masked weight in constant ops: exactly the Kronecker formulation, for one layer and for many at once."""

import copy

import pytest
import torch
from torch import nn

from prunex.nn import DGConv2d, binarize_gates, dgconv_complexity, fuse_gates, relation_matrix
from prunex.runtime.dispatch_count import DispatchCounter

# (C_in, C_out): K from 1 to 10, C_in ≠ C_out, r_in / r_out > 1
SHAPES = [(2, 2), (6, 12), (12, 8), (24, 40), (16, 16), (96, 32), (128, 128), (256, 512), (512, 512), (1024, 1024)]


def kronecker_forward(layer: DGConv2d, x: torch.Tensor) -> torch.Tensor:
    """The paper's U = ⊗_k (g_k·1 + (1 − g_k)·I) ⊗ 1 with straight-through gates, differentiated by autograd."""
    u = relation_matrix(binarize_gates(layer.gate), layer.r_out, layer.r_in).to(layer.weight.dtype)
    return layer._conv_forward(x, layer.weight * u[:, :, None, None], layer.bias)


def random_gates(layer: DGConv2d, generator: torch.Generator) -> None:
    with torch.no_grad():
        layer.gate.copy_(torch.randn(layer.num_gates, generator=generator) * 1e-3)


def assert_gate_grads_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    scale = expected.abs().max().clamp_min(1e-12)
    torch.testing.assert_close(actual / scale, expected / scale, rtol=0, atol=2e-5)


@pytest.mark.parametrize(("c_in", "c_out"), SHAPES)
def test_forward_and_gradients_equal_the_kronecker_formulation(c_in, c_out):
    gen = torch.Generator().manual_seed(c_in * 7 + c_out)
    layer = DGConv2d(c_in, c_out, 3, padding=1, bias=True)
    assert layer.num_gates == min((c_in & -c_in).bit_length(), (c_out & -c_out).bit_length()) - 1
    x = torch.randn(2, c_in, 5, 5, generator=gen)
    for _ in range(3):
        random_gates(layer, gen)
        y, reference = layer(x), kronecker_forward(layer, x)
        assert torch.equal(y, reference)  # bit for bit
        grad = torch.randn(y.shape, generator=gen)
        gw, gg, gb = torch.autograd.grad(y, [layer.weight, layer.gate, layer.bias], grad)
        rw, rg, rb = torch.autograd.grad(reference, [layer.weight, layer.gate, layer.bias], grad)
        assert torch.equal(gw, rw) and torch.equal(gb, rb)
        assert_gate_grads_close(gg, rg)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_under_autocast_the_values_and_gradients_are_the_kronecker_ones(dtype):
    gen = torch.Generator().manual_seed(1)
    layer = DGConv2d(24, 48, 3, padding=1)
    random_gates(layer, gen)
    x = torch.randn(2, 24, 6, 6, generator=gen)
    with torch.autocast("cpu", dtype=dtype):
        y, reference = layer(x), kronecker_forward(layer, x)
    assert y.dtype == dtype and torch.equal(y, reference)
    grad = torch.randn(y.shape, generator=gen).to(dtype)
    gw, gg = torch.autograd.grad(y, [layer.weight, layer.gate], grad)
    rw, rg = torch.autograd.grad(reference, [layer.weight, layer.gate], grad)
    assert torch.equal(gw, rw)
    assert_gate_grads_close(gg, rg)


def test_channels_last_layer_computes_the_same():
    gen = torch.Generator().manual_seed(2)
    layer = DGConv2d(16, 32, 3, padding=1)
    random_gates(layer, gen)
    x = torch.randn(2, 16, 6, 6, generator=gen)
    reference = kronecker_forward(layer, x)
    layer_cl = copy.deepcopy(layer).to(memory_format=torch.channels_last)
    y = layer_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y, reference, rtol=1e-5, atol=1e-5)
    grad = torch.randn(y.shape, generator=gen)
    gg = torch.autograd.grad(y, layer_cl.gate, grad)[0]
    assert_gate_grads_close(gg, torch.autograd.grad(reference, layer.gate, grad)[0])


def _op_count(layer: DGConv2d, x: torch.Tensor) -> int:
    with DispatchCounter() as counter:
        layer(x).sum().backward()
    return counter.counts.total


def test_op_count_of_a_layer_does_not_grow_with_the_number_of_gates():
    counts = {}
    for channels in (4, 32, 256):  # K = 2, 5, 8
        layer = DGConv2d(channels, channels, 3, padding=1)
        x = torch.randn(1, channels, 4, 4)
        _op_count(layer, x)  # warm-up
        counts[layer.num_gates] = _op_count(layer, x)
    assert len(set(counts.values())) == 1, counts


class Stack(nn.Module):
    """Several DGConv layers of different shapes (K = 1 … 6, r > 1), as a model."""

    def __init__(self, channels=(8, 16, 48, 64, 64, 12), generator=None):
        super().__init__()
        layers, c = [], 3
        for width in channels:
            layers += [nn.Conv2d(c, width, 1), DGConv2d(width, width, 3, padding=1), nn.ReLU()]
            c = width
        self.body = nn.Sequential(*layers)
        gen = generator or torch.Generator().manual_seed(0)
        for m in self.modules():
            if isinstance(m, DGConv2d):
                random_gates(m, gen)

    def forward(self, x):
        return self.body(x).mean((2, 3))


def test_fusion_computes_what_the_layers_compute_for_every_layer_at_once():
    torch.manual_seed(0)
    model = Stack()
    fused = copy.deepcopy(model)
    x = torch.randn(2, 3, 8, 8)
    reference = model(x)
    fusion = fuse_gates(fused)
    y = fused(x)
    zeta = fusion.complexity()
    assert all(m.fused_weight is None for m in fused.modules() if isinstance(m, DGConv2d))  # released
    assert torch.equal(y, reference)
    reference_zeta = sum(m.complexity() for m in model.modules() if isinstance(m, DGConv2d))
    assert zeta.item() == reference_zeta.item()
    (y.square().sum() + 1e-4 * zeta).backward()
    (reference.square().sum() + 1e-4 * reference_zeta).backward()
    for (name, p), q in zip(fused.named_parameters(), model.parameters(), strict=True):
        if name.endswith("gate"):
            assert_gate_grads_close(p.grad, q.grad)
        else:
            assert torch.equal(p.grad, q.grad), name


def test_fusion_handles_two_forwards_before_one_backward():
    torch.manual_seed(0)
    model = Stack()
    fused = copy.deepcopy(model)
    x1, x2 = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    fuse_gates(fused)
    (fused(x1).sum() + 2 * fused(x2).sum()).backward()
    (model(x1).sum() + 2 * model(x2).sum()).backward()
    for p, q in zip(fused.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6)


def test_fusion_is_off_in_evaluation_and_without_autograd():
    model = Stack()
    seen = []
    for m in model.modules():
        if isinstance(m, DGConv2d):
            m.register_forward_pre_hook(lambda mod, args: seen.append(mod.fused_weight is not None))
    fuse_gates(model)
    model.eval()
    model(torch.randn(1, 3, 8, 8))
    model.train()
    with torch.no_grad():
        model(torch.randn(1, 3, 8, 8))
    assert not any(seen)
    model(torch.randn(1, 3, 8, 8))
    assert seen[-1] and sum(seen) == 6


def _fused_kernel_ops(channels) -> int:
    model = Stack(channels)
    x = torch.randn(1, 3, 4, 4)
    fusion = fuse_gates(model)
    model(x)  # builds the plan
    layers = [m for m in model.modules() if isinstance(m, DGConv2d)]
    grads = [torch.ones_like(m.weight) for m in layers]
    with DispatchCounter() as counter:
        fusion.before_forward()
        torch.autograd.backward([m.fused_weight for m in layers], grads)
        fusion.after_forward()
    return counter.counts.kernel_ops


def test_fused_masking_launches_as_many_kernels_for_two_layers_as_for_six():
    assert _fused_kernel_ops((8, 16)) == _fused_kernel_ops((8, 16, 48, 64, 64, 12))


def test_complexity_of_many_layers_has_the_product_rule_gradient():
    gen = torch.Generator().manual_seed(3)
    layers = [DGConv2d(c, d, 3) for c, d in [(8, 8), (12, 24), (16, 8), (64, 64)]]
    for layer in layers:
        random_gates(layer, gen)
    zeta = dgconv_complexity(layers)
    expected = sum(layer.complexity() for layer in layers)
    assert zeta.item() == expected.item()
    for a, b in zip(
        torch.autograd.grad(zeta, [m.gate for m in layers]),
        torch.autograd.grad(expected, [m.gate for m in layers]),
        strict=True,
    ):
        assert torch.equal(a, b)
