"""He initialisation where the papers state it (Multi-ResNet §V, SparseNet §4, MaskConnect E.1/E.2 "as ResNeXt"),
and the Multi-ResNet schedule of the authors' code."""

import math

import pytest
import torch
from torch import nn

from prunex.models import create_model
from prunex.train import build_config
from prunex.train.schedule import lr_factor


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("multiresnet_cifar", {"depth": 14, "k": 2}),
        ("multiresnet_imagenet", {"depth": 18, "k": 2}),
        ("sparsenet_cifar", {"depth": 40, "growth": 12}),
        ("sparsenet_plus_cifar", {"depth": 29}),
        ("sparsenet_imagenet", {"depth": 121, "growth": 16}),
        ("maskconnect_cifar", {"depth": 20, "bottleneck_width": 4}),
        ("resnext_cifar", {"depth": 20, "bottleneck_width": 4}),
        ("maskconnect_imagenet", {"depth": 50, "cardinality": 4}),
    ],
)
def test_he_initialisation_of_the_families_that_state_it(name, kwargs):
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.numel() >= 2000]
    assert convs
    for conv in convs:
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        std = float(conv.weight.detach().std())
        assert std == pytest.approx(math.sqrt(2 / fan_out), rel=0.1)  # PyTorch's default is ~2.4× smaller
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all()) and bool((m.bias == 0).all()) for m in norms)
    assert float(model.head.fc.bias.detach().abs().max()) == 0.0


def test_multiresnet_paper_recipe_steps_at_epochs_81_and_122_with_nesterov():
    cfg = build_config({"model": "multiresnet_cifar", "dataset": "cifar10", "recipe": "paper"})
    (phase,) = cfg.phases
    assert phase.epochs == 200 and cfg.nesterov and cfg.weight_decay == 1e-4 and cfg.batch_size == 128
    lrs = {e: phase.lr * lr_factor(phase, e, 0, 10) for e in (0, 80, 81, 121, 122, 199)}
    assert lrs == pytest.approx({0: 0.1, 80: 0.1, 81: 0.01, 121: 0.01, 122: 0.001, 199: 0.001})
