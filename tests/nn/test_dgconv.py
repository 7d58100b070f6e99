import itertools

import pytest
import torch
from torch import nn

from prunex.nn.dgconv import DGConv2d, group_order, relation_matrix

torch.manual_seed(0)


def set_gates(layer: DGConv2d, gates) -> None:
    with torch.no_grad():
        layer.gate.copy_(torch.tensor([1e-8 if g else -1e-8 for g in gates]))


def reference_u(gates, r_out, r_in):
    """U[o, i] = ∏_{k: g_k = 0} [b_k(o) = b_k(i)], channel c = b·r + ρ (independent of the Kronecker code)."""
    k = len(gates)
    u = torch.ones(r_out << k, r_in << k)
    for o in range(r_out << k):
        for i in range(r_in << k):
            bo, bi = o // r_out, i // r_in
            for pos, g in enumerate(gates):
                shift = k - 1 - pos
                if not g and (bo >> shift) & 1 != (bi >> shift) & 1:
                    u[o, i] = 0
    return u


SHAPES = [(8, 8), (12, 12), (8, 24), (16, 8), (6, 10)]  # 2^K, r·2^K, C_in ≠ C_out, rectangular r factors


@pytest.mark.parametrize(("c_in", "c_out"), SHAPES)
def test_every_gate_pattern_equals_dense_conv_with_masked_weight(c_in, c_out):
    layer = DGConv2d(c_in, c_out, 3, padding=1, bias=True)
    x = torch.randn(2, c_in, 7, 7)
    for gates in itertools.product([0, 1], repeat=layer.num_gates):
        set_gates(layer, gates)
        u = reference_u(gates, layer.r_out, layer.r_in)
        assert torch.equal(layer.relation_matrix().detach(), u)
        expected = nn.functional.conv2d(x, layer.weight * u[:, :, None, None], layer.bias, padding=1)
        torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-5)
        zeros = len(gates) - sum(gates)
        assert layer.num_groups == 2**zeros
        assert layer.complexity().item() == u.sum().item()
        assert u.sum().item() == c_in * c_out / layer.num_groups


@pytest.mark.parametrize(("c_in", "c_out"), SHAPES)
def test_grouped_conv_realisation_is_exact_for_every_pattern(c_in, c_out):
    layer = DGConv2d(c_in, c_out, 3, stride=2, padding=1, bias=True)
    x = torch.randn(3, c_in, 9, 9)
    for gates in itertools.product([0, 1], repeat=layer.num_gates):
        set_gates(layer, gates)
        conv, in_order, out_order = layer.to_grouped_conv()
        assert conv.groups == layer.num_groups
        # P U Pᵀ is block diagonal with all-ones blocks: I_G ⊗ 1
        u = layer.relation_matrix().detach()[out_order][:, in_order]
        blocks = torch.block_diag(*[torch.ones(c_out // conv.groups, c_in // conv.groups)] * conv.groups)
        assert torch.equal(u, blocks)
        y = torch.empty(3, c_out, 5, 5)
        y[:, out_order] = conv(x[:, in_order])
        torch.testing.assert_close(y, layer(x), rtol=0, atol=1e-5)
        assert conv.weight.numel() == layer.complexity().item() * 9


def test_group_order_is_a_permutation_and_contiguous_patterns_need_none():
    for k in range(1, 5):
        for gates in itertools.product([0, 1], repeat=k):
            order = group_order(gates, r=3)
            assert sorted(order.tolist()) == list(range(3 << k))
            contiguous = list(gates) == sorted(gates)  # zeros first: separating bits are already leading
            assert torch.equal(order, torch.arange(3 << k)) == contiguous


def test_complexity_gradient_is_the_product_rule_not_two_to_the_power():
    layer = DGConv2d(16, 16, 3)
    gates = [1, 0, 1, 1]
    set_gates(layer, gates)
    layer.complexity().backward()
    g = torch.tensor(gates, dtype=torch.float32)
    expected = torch.stack([16 * torch.prod(torch.cat([1 + g[:k], 1 + g[k + 1 :]])) for k in range(4)])
    torch.testing.assert_close(layer.gate.grad, expected)


def test_gates_start_at_plus_minus_1e8_and_receive_gradients():
    torch.manual_seed(3)
    layer = DGConv2d(32, 32, 3, padding=1)
    assert torch.all(layer.gate.abs() == 1e-8)
    signs = set(torch.sign(DGConv2d(1024, 1024, 1).gate.detach()).tolist())
    assert signs == {-1.0, 1.0}
    layer(torch.randn(2, 32, 5, 5)).square().sum().backward()
    assert layer.gate.grad is not None and torch.all(layer.gate.grad != 0)


def test_gate_signs_survive_a_cast_to_half():
    layer = DGConv2d(8, 8, 1)
    set_gates(layer, [0, 1, 0])
    assert layer.half().gate_list() == [0, 1, 0]


@pytest.mark.parametrize(("c_in", "c_out", "groups"), [(8, 8, 1), (8, 8, 2), (16, 16, 8), (12, 24, 4), (64, 64, 32)])
def test_from_conv_is_an_exact_copy_of_a_grouped_conv(c_in, c_out, groups):
    conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, groups=groups, bias=True)
    layer = DGConv2d.from_conv(conv)
    assert layer.num_groups == groups
    assert torch.equal(layer.in_order(), torch.arange(c_in))  # contiguous groups need no permutation
    x = torch.randn(2, c_in, 8, 8)
    torch.testing.assert_close(layer(x), conv(x), rtol=0, atol=1e-5)
    grouped, _, _ = layer.to_grouped_conv()
    assert torch.equal(grouped.weight, conv.weight)


def test_from_conv_rejects_group_counts_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="power of two"):
        DGConv2d.from_conv(nn.Conv2d(12, 12, 3, groups=3))
    with pytest.raises(ValueError, match="power of two"):
        DGConv2d.from_conv(nn.Conv2d(24, 24, 3, groups=6))


def test_relation_matrix_is_kronecker_of_factors():
    g = torch.tensor([1.0, 0.0])
    u = relation_matrix(g, r_out=2, r_in=1)
    expected = torch.kron(torch.kron(torch.ones(2, 2), torch.eye(2)), torch.ones(2, 1))
    assert torch.equal(u, expected)


def test_straight_through_values_are_exactly_binary_for_any_gate_magnitude():
    layer = DGConv2d(16, 16, 1)
    with torch.no_grad():
        layer.gate.copy_(torch.tensor([0.37, -2.5, 1e3, -1e-3]))
    u = layer.relation_matrix()
    assert set(u.detach().unique().tolist()) == {0.0, 1.0}
