"""MaskConnect's real-valued-mask ablation (§4.1): the real masks weigh every branch, unsampled, clipped to [0, 1]."""

import copy

import torch

from prunex.models import create_model
from prunex.nn import gate_parameters, project_gates_
from prunex.nn.branch_gates import BranchGates, Connectivity
from prunex.passes.graph import freeze
from tests.passes.test_compress_equivalence import assert_equivalent

MODEL = {"depth": 11, "bottleneck_width": 4, "cardinality": 4, "connectivity": "real_valued", "seed": 0}


def _gates(model) -> list[BranchGates]:
    return [m for m in model.modules() if isinstance(m, BranchGates)]


def test_the_real_mask_is_what_a_block_reads_in_training_and_evaluation_with_its_own_gradient():
    gates = BranchGates(3, 5, 2, Connectivity.REAL_VALUED, torch.Generator().manual_seed(0))
    upstream = torch.randn(3, 5)
    for training in (True, False):
        gates.train(training)
        gates.weight.grad = None
        assert torch.equal(gates(), gates.weight)  # no sampling, no top-K: the values themselves
        (gates() * upstream).sum().backward()
        assert torch.equal(gates.weight.grad, upstream)  # ∂L/∂m̃, not a straight-through estimate
    assert torch.equal(gates.average(), gates.weight / 2)  # x_j = (1/K)·Σ_k m̃_jk·y_k


def test_projection_clips_without_a_floor_and_freezing_keeps_the_values():
    gates = BranchGates(2, 4, 3, Connectivity.REAL_VALUED)
    with torch.no_grad():
        gates.weight.copy_(torch.tensor([[-1.0, -0.5, -2.0, 0.25], [2.0, 0.5, -0.1, 1.0]]))
    clipped = torch.tensor([[0.0, 0.0, 0.0, 0.25], [1.0, 0.5, 0.0, 1.0]])
    assert torch.equal(gates.binary_mask(), (clipped > 0).float())  # reads project first
    assert torch.equal(gates.weight.detach(), clipped)  # a connection at 0 stays at 0: nothing raised to K
    learned = BranchGates(2, 4, 3)
    with torch.no_grad():
        learned.weight.copy_(torch.tensor([[-1.0, -0.5, -2.0, 0.25], [2.0, 0.5, -0.1, 1.0]]))
    learned.project_()
    assert int((learned.weight > 0).sum(1).min()) == 3  # the sampled masks' projection keeps K positive entries
    gates.freeze()
    assert gates.weight is None and torch.equal(gates.mask, clipped)


def test_a_training_step_moves_every_mask_entry_and_the_compressed_network_computes_the_trained_one():
    torch.manual_seed(0)
    model = create_model("maskconnect_cifar", **MODEL).train()
    masks = gate_parameters(model)
    assert len(masks) == 2 and masks == [g.weight for g in _gates(model)]
    before = [w.detach().clone() for w in masks]
    x = torch.randn(8, 3, 16, 16)
    first = model(x)
    assert torch.equal(first, model(x))  # deterministic in training: nothing is sampled
    optimizer = torch.optim.SGD(masks, lr=50.0)
    first.logsumexp(1).sum().backward()
    optimizer.step()
    reference = copy.deepcopy(model)
    project_gates_(reference)
    model(x)  # the next training forward projects the stepped masks
    for w, r, b in zip(masks, gate_parameters(reference), before, strict=True):
        w, r = w.detach(), r.detach()
        assert torch.equal(w, r) and float(w.min()) >= 0 and float(w.max()) <= 1
        assert bool((w != b).all())  # every connection's weight learned, not only K sampled ones
    assert any(bool((w == 0).any()) for w in masks)  # some connections clipped to 0: removable terms
    frozen = freeze(model)
    assert torch.equal(frozen.stages[1].gates.mask, masks[0].detach())  # frozen at its values, not at top-K
    assert_equivalent(model.eval(), x)
