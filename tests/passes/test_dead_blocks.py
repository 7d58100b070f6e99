import torch

from prunex.models import create_model
from prunex.nn.branch_gates import BranchGates, sample_k_of_c
from prunex.passes import compress
from tests.passes.helpers import randomise_batchnorm


def test_k1_removes_exactly_the_blocks_nobody_reads_and_their_parameters():
    torch.manual_seed(0)
    model = randomise_batchnorm(
        create_model("maskconnect_cifar", depth=29, bottleneck_width=4, cardinality=6, fan_in=1)
    ).eval()
    g = torch.Generator().manual_seed(5)
    for m in model.modules():
        if isinstance(m, BranchGates):
            m.freeze()
            m.mask = sample_k_of_c(torch.ones(6, 6), 1, g)
    expected = {
        f"stages.{i}.blocks": [j for j, on in enumerate(active) if not on]
        for i, active in enumerate(model.active_blocks())
        if not all(active)
    }
    assert expected, "the seed should leave some blocks unread"
    _, report = compress(model, torch.randn(4, 3, 16, 16))
    assert report.blocks_removed == expected
    block_params = {
        (i, j): sum(p.numel() for p in model.stages[i].blocks[j].parameters())
        for i, js in ((int(k.split(".")[1]), v) for k, v in expected.items())
        for j in js
    }
    by_pass = {r.name: r for r in report.passes}
    dropped = by_pass["fold_gate_constants"].params - by_pass["eliminate_dead_blocks"].params
    assert dropped == sum(block_params.values())
    assert by_pass["frozen"].params == by_pass["fold_gate_constants"].params  # folding removes no weights
