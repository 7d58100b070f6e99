"""A user's own loop with a model prunex built and a :class:`StructureSchedule` trains what ``prunex train`` trains."""

import copy

import pytest
import torch
from torch import nn

from prunex.models import create_model
from prunex.nn.branch_gates import BranchGates
from prunex.train import Phase, StructureSchedule, TrainConfig
from prunex.train.config import ConfigError
from prunex.train.recipes import build_config
from prunex.train.step import TrainStep
from tests.train.helpers import TINY_MASKCONNECT

TINY_G_RESNEXT = {"depth": 11, "cardinality": 4, "bottleneck_width": 4}
FAMILIES = [
    ("maskconnect_cifar", TINY_MASKCONNECT, None),
    ("g_resnext_cifar", TINY_G_RESNEXT, 4.0),
    ("multiresnet_cifar", {"depth": 8, "k": 2}, None),
    ("sparsenet_cifar", {"depth": 10, "growth": 4}, None),
]
TWO_PHASES = (
    Phase("learn", 1, 0.05, gate_lr=0.2, schedule="cosine"),
    Phase("fine-tune", 1, 0.05, freeze_connectivity=True),
)


def _config(name, kwargs, budget, **overrides) -> TrainConfig:
    return TrainConfig(model=name, model_kwargs=dict(kwargs), phases=TWO_PHASES, budget=budget, alpha=-0.5, **overrides)


@pytest.mark.parametrize(("name", "kwargs", "budget"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_a_user_loop_step_equals_the_train_step(name, kwargs, budget):
    """Loss, every gradient and the projected masks, step by step: the user's loop calls nothing after its
    optimiser step, TrainStep projects explicitly."""
    torch.manual_seed(0)
    theirs = create_model(name, num_classes=10, **kwargs).train()
    ours = copy.deepcopy(theirs)
    config = _config(name, kwargs, budget)
    schedule, reference = StructureSchedule(theirs, config), StructureSchedule(ours, config)
    optimizer, ours_optimizer = schedule.optimizer(), reference.optimizer()
    step = TrainStep(ours, budget=reference.budget_o, alpha=config.alpha)
    gen = torch.Generator().manual_seed(1)
    for i in range(3):
        x, y = torch.randn(4, 3, 16, 16, generator=gen), torch.randint(0, 10, (4,), generator=gen)
        torch.manual_seed(10 + i)
        loss = nn.functional.cross_entropy(theirs(x), y)
        objective = schedule.objective(loss, epoch=0)
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        torch.manual_seed(10 + i)
        expected, _ = step(x, y, ours_optimizer)
        assert torch.equal(loss, expected)
        for (key, p), q in zip(theirs.named_parameters(), ours.parameters(), strict=True):
            assert torch.equal(p.grad, q.grad), key
    for key, value in theirs.state_dict().items():  # the state dict projects the masks the last step wrote
        assert torch.equal(value, ours.state_dict()[key]), key


def test_the_schedule_is_the_recipe_prunex_train_would_use():
    model = create_model("maskconnect_cifar", num_classes=10, **TINY_MASKCONNECT)
    schedule = StructureSchedule.for_model(model, dataset="digits")
    expected = build_config({"model": "maskconnect_cifar", "dataset": "digits"})
    assert schedule.phases == expected.phases and schedule.epochs == expected.total_epochs
    assert [schedule.plan(e).phase.name for e in (0, 7, 8, 13, 14, 19)] == [
        "learn-connectivity", "learn-connectivity", "fine-tune-1", "fine-tune-1", "fine-tune-2", "fine-tune-3"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="past the schedule"):
        schedule.plan(schedule.epochs)
    grouped = create_model("g_resnext_cifar", num_classes=10, **TINY_G_RESNEXT)
    dgconv = StructureSchedule.for_model(grouped, dataset="digits", epochs=4)
    assert dgconv.budget_o is not None and dgconv.epochs == 4 and dgconv.config.alpha == -0.5
    with pytest.raises(ConfigError, match="no training phases"):
        StructureSchedule(model, TrainConfig(phases=()))


def test_a_phase_that_freezes_gives_the_optimizer_the_groups_a_new_one_would_have():
    model = create_model("maskconnect_cifar", num_classes=10, **TINY_MASKCONNECT).train()
    schedule = StructureSchedule(model, _config("maskconnect_cifar", TINY_MASKCONNECT, None))
    optimizer = schedule.optimizer()
    assert schedule.start_epoch(0, optimizer).learns_gates
    assert [g["name"] for g in optimizer.param_groups] == ["weights", "branch_masks"]
    nn.functional.cross_entropy(model(torch.randn(4, 3, 16, 16)), torch.arange(4)).backward()
    optimizer.step()
    assert optimizer.state
    plan = schedule.start_epoch(1, optimizer)
    assert plan.starts_phase and not plan.learns_gates
    assert all(m.frozen for m in model.modules() if isinstance(m, BranchGates))
    assert not optimizer.state and [g["name"] for g in optimizer.param_groups] == ["weights"]
    assert schedule.set_lr(optimizer, 1, 0, 10) == 1.0 and optimizer.param_groups[0]["lr"] == 0.05
