import torch

from prunex.nn.multi_residual import MultiResidualBlock
from prunex.nn.sparse_aggregation import SparseAggregation, aggregated_channels, exponential_offsets


def test_exponential_offsets_match_the_reference_fetch():
    # depth-40 SparseNet, first stage: 12 layers, outputs 0..12, stage output = layers [12, 11, 9, 5]
    assert exponential_offsets(13) == [12, 11, 9, 5]
    assert exponential_offsets(1) == [0]
    assert exponential_offsets(10, base=3) == [9, 7, 1]


def test_sparse_aggregation_concat_and_sum():
    ys = [torch.full((1, 2, 3, 3), float(i)) for i in range(6)]
    cat = SparseAggregation(2, "concat")(ys)
    assert cat.shape[1] == 6 and cat[0, :, 0, 0].tolist() == [5, 5, 4, 4, 2, 2]
    assert aggregated_channels([2] * 6) == 6
    total = SparseAggregation(2, "sum")(ys)
    assert torch.all(total == 11)


def test_multi_residual_block_is_identity_plus_sum_of_functions():
    torch.manual_seed(0)
    block = MultiResidualBlock(8, 8, k=3).eval()
    x = torch.randn(2, 8, 6, 6)
    expected = x + sum(f(x) for f in block.functions)
    torch.testing.assert_close(block(x), expected)


def test_dimension_increasing_block_preactivates_once_and_projects():
    torch.manual_seed(0)
    block = MultiResidualBlock(8, 16, k=2, stride=2, kind="bottleneck").eval()
    x = torch.randn(2, 8, 6, 6)
    h = block.preact(x)
    expected = block.shortcut(h) + sum(f(h) for f in block.functions)
    torch.testing.assert_close(block(x), expected)
    assert block(x).shape == (2, 16, 3, 3)
