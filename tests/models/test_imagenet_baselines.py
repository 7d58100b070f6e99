"""The papers' ImageNet baselines prunex builds compute what torchvision's networks compute."""

import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models.densenet import DenseNet

from prunex.models import analytic_complexity, create_model
from tests.passes.helpers import randomise_batchnorm

WEIGHTED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def _most_recent_first(segments: list[int]) -> torch.Tensor:
    """Channel order of a concatenation of outputs with these widths, reversed (prunex reads the newest first)."""
    bounds = torch.tensor([0, *segments]).cumsum(0).tolist()
    return torch.cat([torch.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)][::-1])


def _torchvision_layers_with_input_order(net: DenseNet, growth: int) -> list[tuple[nn.Module, torch.Tensor | None]]:
    """torchvision's weighted layers in order, each with the permutation of its input channels that prunex uses."""
    layers, concat = [], None
    for name, child in net.features.named_children():
        if name.startswith("denseblock"):
            first = next(iter(child.children())).norm1.num_features
            for i, layer in enumerate(child.children()):
                order = _most_recent_first([first] + [growth] * i)
                layers += [(layer.norm1, order), (layer.conv1, order), (layer.norm2, None), (layer.conv2, None)]
            concat = _most_recent_first([first] + [growth] * len(child))
        elif name.startswith("transition"):
            layers += [(child.norm, concat), (child.conv, concat)]
        elif isinstance(child, WEIGHTED):
            layers.append((child, concat if name == "norm5" else None))
    return layers + [(net.classifier, concat)]


@torch.no_grad()
def _copy(source: nn.Module, target: nn.Module, order: torch.Tensor | None) -> None:
    assert type(source) is type(target)
    for key, value in source.state_dict().items():
        if order is not None and key != "num_batches_tracked" and not (isinstance(source, nn.Linear) and key == "bias"):
            value = value.index_select(1 if value.dim() > 1 else 0, order)
        target.state_dict()[key].copy_(value)


def test_densenet_imagenet_is_torchvisions_densenet_with_its_input_channels_reordered():
    torch.manual_seed(0)
    theirs = randomise_batchnorm(DenseNet(growth_rate=8, block_config=(2, 3, 4, 2), num_init_features=16)).eval()
    ours = create_model("densenet_imagenet", growth=8, block_layers=(2, 3, 4, 2)).eval()
    pairs = _torchvision_layers_with_input_order(theirs, 8)
    mine = [m for m in ours.modules() if isinstance(m, WEIGHTED)]
    assert len(mine) == len(pairs)
    for (source, order), target in zip(pairs, mine, strict=True):
        _copy(source, target, order)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("depth", [121, 169, 201])
def test_densenet_imagenet_counts_are_torchvisions(depth):
    meta = tvm.get_model_weights(f"densenet{depth}").DEFAULT.meta
    cx = analytic_complexity("densenet_imagenet", depth=depth)
    assert cx.params == meta["num_params"]
    assert round(cx.macs / 1e9, 3) == meta["_ops"]


@pytest.mark.parametrize(
    ("kwargs", "torchvision_name"),
    [(dict(depth=50, groups=32, width_per_group=4), "resnext50_32x4d"), (dict(depth=50), "resnet50")],
)
def test_resnet_imagenet_is_torchvisions_network_at_depths_it_builds(kwargs, torchvision_name):
    torch.manual_seed(0)
    ours = create_model("resnet_imagenet", **kwargs).eval()
    theirs = randomise_batchnorm(tvm.get_model(torchvision_name)).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(ours(x), theirs(x))
    assert (
        analytic_complexity("resnet_imagenet", **kwargs).params
        == tvm.get_model_weights(torchvision_name).DEFAULT.meta["num_params"]
    )


def test_resnet_200_has_he_et_al_s_blocks_per_stage():
    with torch.device("meta"):
        model = create_model("resnet_imagenet", depth=200)
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 24, 36, 3]
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 1 + 3 * 66 + 4  # stem, 66 blocks, 4 projections
