"""A training step as prunex train runs it never waits for the device."""

import pytest
import torch

from prunex.models import create_model
from prunex.runtime.dispatch_count import DispatchCounter
from prunex.train.step import TrainStep, param_groups, sgd

FAMILIES = [
    ("g_resnext_cifar", {"depth": 11, "cardinality": 4, "bottleneck_width": 4}, 4.0),
    ("maskconnect_cifar", {"depth": 11, "bottleneck_width": 4, "cardinality": 4, "fan_in": 2}, None),
    ("maskconnect_cifar", {"depth": 11, "bottleneck_width": 4, "cardinality": 4, "connectivity": "fixed_random"}, None),
    ("resnext_cifar", {"depth": 11, "bottleneck_width": 4, "cardinality": 4}, None),
    ("multiresnet_cifar", {"depth": 8, "k": 2}, None),
    ("sparsenet_cifar", {"depth": 10, "growth": 4}, None),
]


@pytest.mark.parametrize(("name", "kwargs", "budget"), FAMILIES, ids=[f"{f[0]}-{i}" for i, f in enumerate(FAMILIES)])
def test_a_training_step_reads_nothing_back_from_the_device(name, kwargs, budget):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, **kwargs).train()
    groups = param_groups(model, lr=0.1, gate_lr=0.1, weight_decay=5e-4, momentum=0.9, nesterov=True)
    optimizer = sgd(groups)
    step = TrainStep(model, budget=budget, alpha=-0.5)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    step(x, y, optimizer)
    before = [p.detach().clone() for p in model.parameters()]
    with DispatchCounter() as counter:
        loss, logits = step(x, y, optimizer)
    assert counter.counts.syncs == 0, counter.counts.host_syncs
    assert loss.requires_grad and logits.shape == (4, 10)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_the_budget_term_moves_dgconv_gates_towards_fewer_weights():
    torch.manual_seed(0)
    model = create_model("g_resnext_cifar", depth=11, cardinality=4, bottleneck_width=4, num_classes=10).train()
    for m in model.modules():
        if hasattr(m, "gate"):
            torch.nn.init.constant_(m.gate, 1e-3)  # every gate merging: ζ is dense, far over budget
    optimizer = sgd(param_groups(model, lr=0.0, gate_lr=1.0, weight_decay=0.0, momentum=0.0, nesterov=False))
    step = TrainStep(model, budget=1.0, alpha=-0.5)
    step(torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,)), optimizer)
    gates = torch.cat([m.gate.detach() for m in model.modules() if hasattr(m, "gate")])
    assert torch.all(gates < 1e-3)  # the constraint's gradient pushes every gate towards separating
