"""Models prunex builds fuse their own gates in training: nothing to call in a loop, nothing paid outside training."""

import copy
import pickle

import pytest
import torch
from torch import nn

from prunex.models import create_model, learn_groups
from prunex.nn import DGConv2d, fuse_gates, gate_fusion_of, project_gates_, unfuse_gates
from prunex.nn.branch_gates import BranchGates
from prunex.runtime.dispatch_count import DispatchCounter

MASKCONNECT = {"depth": 11, "bottleneck_width": 4, "cardinality": 4, "fan_in": 2, "num_classes": 10}
G_RESNEXT = {"depth": 11, "cardinality": 4, "bottleneck_width": 4, "num_classes": 10}


def _masks(model):
    return [m for m in model.modules() if isinstance(m, BranchGates) and m.weight is not None]


def _push_masks_out_of_range(model) -> None:
    """An SGD step that leaves every real mask partly outside [0, 1], as a large gate LR does."""
    masks = [m.weight for m in _masks(model)]
    for w in masks:
        w.grad = torch.randn(w.shape, generator=torch.Generator().manual_seed(1)) * 4
    torch.optim.SGD(masks, lr=1.0).step()
    assert all(float(w.detach().max()) > 1 and float(w.detach().min()) < 0 for w in masks)


def test_models_prunex_builds_fuse_their_gates_and_plain_ones_get_no_hooks():
    gated = create_model("g_resnext_cifar", **G_RESNEXT)
    plain = create_model("resnext_cifar", depth=11, cardinality=4, bottleneck_width=4, num_classes=10)
    assert gate_fusion_of(gated) is not None and gate_fusion_of(plain) is None
    assert not plain._forward_pre_hooks
    learn_groups(plain)
    assert gate_fusion_of(plain) is not None
    seen = []
    for m in gated.modules():
        if isinstance(m, DGConv2d) and m.num_gates:
            m.register_forward_pre_hook(lambda mod, args: seen.append(mod.fused_weight is not None))
    gated.train()(torch.randn(2, 3, 16, 16))
    assert seen and all(seen)  # every DGConv read the U ⊙ W the model's fusion computed for all of them at once


def test_a_fused_training_step_costs_fewer_ops_and_computes_the_same_values():
    torch.manual_seed(0)
    model = create_model("g_resnext_cifar", **{**G_RESNEXT, "depth": 29}).train()
    unfused = unfuse_gates(copy.deepcopy(model))
    x = torch.randn(2, 3, 16, 16)
    model(x).sum().backward()  # the first pass builds the fusion's plans
    counts, outputs = [], []
    for net in (model, unfused):
        with DispatchCounter() as counter:
            y = net(x)
            y.sum().backward()
        counts.append(counter.counts.total)
        outputs.append(y)
    assert torch.equal(outputs[0], outputs[1])
    assert counts[0] < 0.8 * counts[1], counts


def test_the_projection_runs_when_the_masks_are_next_read_and_only_after_they_changed():
    torch.manual_seed(0)
    model = create_model("maskconnect_cifar", **MASKCONNECT).train()
    reference = copy.deepcopy(model)
    _push_masks_out_of_range(model)
    _push_masks_out_of_range(reference)
    project_gates_(reference)
    x = torch.randn(2, 3, 16, 16)
    model(x)  # the training forward projects before it samples
    assert all(torch.equal(m.weight, r.weight) for m, r in zip(_masks(model), _masks(reference), strict=True))
    with DispatchCounter() as counter:
        model(x)  # nothing wrote the masks since: no projection
    assert counter.counts.ops["clamp_"] == 0


def test_every_reader_of_a_stepped_mask_sees_it_projected():
    """Evaluation, the binary mask, the state dict and freezing read the projected masks without a forward."""
    torch.manual_seed(0)
    model = create_model("maskconnect_cifar", **MASKCONNECT)
    reference = copy.deepcopy(model)
    _push_masks_out_of_range(reference)
    project_gates_(reference)
    x = torch.randn(2, 3, 16, 16)
    expected = reference.eval()(x)
    readers = {
        "eval": lambda m: torch.equal(m.eval()(x), expected),
        "binary_mask": lambda m: all(
            torch.equal(a.binary_mask(), b.binary_mask()) for a, b in zip(_masks(m), _masks(reference), strict=True)
        ),
        "state_dict": lambda m: all(
            torch.equal(v, reference.state_dict()[k]) for k, v in m.state_dict().items() if k.endswith("gates.weight")
        ),
    }
    for name, reads_projected in readers.items():
        stepped = copy.deepcopy(model)
        _push_masks_out_of_range(stepped)
        assert reads_projected(stepped), name
    frozen, frozen_reference = copy.deepcopy(model), copy.deepcopy(reference)
    _push_masks_out_of_range(frozen)
    for a, b in zip(_masks(frozen), _masks(frozen_reference), strict=True):
        a.freeze()
        b.freeze()
        assert torch.equal(a.mask, b.mask)


def test_evaluation_and_a_compressed_model_pay_nothing_for_the_fusion():
    from prunex.passes import compress

    torch.manual_seed(0)
    model = create_model("maskconnect_cifar", **MASKCONNECT).eval()
    unfused = unfuse_gates(copy.deepcopy(model))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad(), DispatchCounter() as fused_count:
        model(x)
    with torch.no_grad(), DispatchCounter() as own_count:
        unfused(x)
    assert fused_count.counts.ops == own_count.counts.ops
    compressed, _ = compress(model, x)
    assert gate_fusion_of(compressed) is None and not compressed._forward_pre_hooks


def test_copies_and_pickles_carry_their_own_fusion():
    model = create_model("maskconnect_cifar", **MASKCONNECT).train()
    model(torch.randn(2, 3, 16, 16))  # the fusion's groups exist now
    twin = copy.deepcopy(model)
    assert gate_fusion_of(twin).model is twin
    restored = pickle.loads(pickle.dumps(model))
    assert gate_fusion_of(restored).model is restored
    torch.manual_seed(3)
    y = twin(torch.ones(2, 3, 16, 16))
    torch.manual_seed(3)
    assert torch.equal(y, restored(torch.ones(2, 3, 16, 16)))


def test_unfuse_and_fuse_again_leave_one_pair_of_hooks():
    model = create_model("maskconnect_cifar", **MASKCONNECT)
    fuse_gates(model)
    assert len(model._forward_pre_hooks) == 1 and len(model._forward_hooks) == 1
    unfuse_gates(model)
    assert gate_fusion_of(model) is None and not model._forward_pre_hooks and not model._forward_hooks


def test_under_cpu_autocast_the_fused_forward_matches_the_layers_own():
    torch.manual_seed(0)
    model = create_model("g_resnext_cifar", **G_RESNEXT).train()
    unfused = unfuse_gates(copy.deepcopy(model))
    x = torch.randn(2, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    model, unfused = model.to(memory_format=torch.channels_last), unfused.to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, expected = model(x), unfused(x)
    assert torch.equal(y, expected)


@pytest.mark.slow  # torch.compile (eager backend) of a small MaskConnect (~4 s)
def test_under_torch_compile_the_masks_are_still_projected():
    torch.manual_seed(0)
    model = create_model("maskconnect_cifar", **MASKCONNECT).train()
    compiled = torch.compile(model, backend="eager")
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0)  # a step that leaves [0, 1]
    x, y = torch.randn(2, 3, 16, 16), torch.tensor([0, 1])
    for _ in range(2):
        nn.functional.cross_entropy(compiled(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
    compiled(x)
    for m in _masks(model):
        assert not m.stale and float(m.weight.detach().min()) >= 0 and float(m.weight.detach().max()) <= 1
