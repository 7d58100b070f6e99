"""The branch-parallel benchmark: the paper's layouts, and the communication it counts."""

import pytest
import torch

from prunex.nn.multi_residual import MultiResidualBlock
from prunex.train.branch_parallel_cost import Layout, StepSettings, _model, paper_layouts, simulate_branch_rank


def test_the_paper_layouts_compare_with_the_resnet_of_the_same_layer_count():
    names = [(layout.data, layout.branch, layout.depth, layout.k) for layout in paper_layouts(110, 4)]
    assert names == [(1, 1, 110, 4), (2, 1, 110, 4), (1, 2, 110, 4), (2, 2, 110, 4), (2, 1, 434, 1)]  # Table V
    assert all(layout.branch == 1 for layout in paper_layouts(110, 3))  # k = 3 does not split over two ranks


def test_one_simulated_branch_rank_counts_each_block_output_forward_and_its_input_gradient_backward():
    settings = StepSettings(batch=4, steps=1, warmup=0, image_size=8)
    layout = Layout("t", 1, 2, 8, 2)
    sizes = []
    model = _model(layout, settings)
    hooks = [
        b.register_forward_hook(lambda m, i, o: sizes.append(i[0].numel() + o.numel()))
        for b in model.modules()
        if isinstance(b, MultiResidualBlock)
    ]
    model(torch.zeros(4, 3, 8, 8))
    for h in hooks:
        h.remove()
    result = simulate_branch_rank(layout, settings, link_gb_per_s=1.0)
    assert result["allreduce_bytes"] == 4 * sum(sizes)  # fp32: every block, both directions, once per step
    assert result["communication_s"] == pytest.approx(result["allreduce_bytes"] * 2 * (2 - 1) / 2 / 1e9)
    assert result["estimated_step_s"] == pytest.approx(result["compute_s"] + result["communication_s"])
