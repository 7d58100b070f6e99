"""Where prunex followed the papers' code rather than its own first reading (#28): each fix, and the checkpoints of
earlier versions, which still rebuild the network they were trained as."""

import torch
from torch import nn

from prunex.models import analytic_complexity, create_model
from prunex.models.from_checkpoint import build_model
from prunex.train import build_config
from tests.models.test_paper_networks import measured_macs

# He et al.'s pre-activation ResNet-18 (fb.resnet.torch preresnet.lua), k = 1: the BatchNorm widths in order. The
# stem ends in BN-ReLU, so the first block ("no_preact") starts with its conv; every other block pre-activates
# (a stage's first block once, shared by its projection and its function); the head's BN closes.
PREACT_RESNET18_BNS = [64, 64, 64, 64, 64, 128, 128, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512]


def _bn_widths(model: nn.Module) -> list[int]:
    return [m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def test_multiresnet_imagenet_has_the_pre_activation_layout_of_he_et_al():
    model = create_model("multiresnet_imagenet", depth=18, k=1)
    assert _bn_widths(model) == PREACT_RESNET18_BNS
    first = model.blocks[0].functions[0].body
    assert isinstance(first[0], nn.Conv2d) and model.blocks[0].preact is None
    with_k = create_model("multiresnet_imagenet", depth=101, k=2)
    assert isinstance(with_k.blocks[0].functions[1].body[0], nn.Conv2d)  # 64 -> 256: functions read the stem's output
    assert with_k.blocks[0].preact is None and isinstance(with_k.blocks[3].preact, nn.Sequential)
    for depth in (18, 50):
        model = create_model("multiresnet_imagenet", depth=depth, k=2, num_classes=10)
        cx = analytic_complexity("multiresnet_imagenet", depth=depth, k=2, num_classes=10)
        assert sum(p.numel() for p in model.parameters()) == cx.params


def test_an_earlier_multiresnet_imagenet_checkpoint_rebuilds_its_extra_pre_activation():
    old = build_model({"name": "multiresnet_imagenet", "kwargs": {"depth": 18, "k": 2, "num_classes": 10}})
    assert isinstance(old.blocks[0].functions[0].body[0], nn.BatchNorm2d)
    assert _bn_widths(old)[:3] == [64, 64, 64]  # the stem's BN, then the first function's BN again
    assert create_model("multiresnet_imagenet", depth=18, k=2).prunex_spec.kwargs["first_block_preact"] is False


def test_a_cifar_bottleneck_strides_in_its_first_1x1_as_the_authors_code_does():
    model = create_model("multiresnet_cifar", depth=11, k=2, block="bottleneck", num_classes=10)
    downsampling = model.blocks[1].functions[0].body  # 64 -> 128 channels, stride 2; shares the block's BN-ReLU
    convs = [m for m in downsampling if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1)]
    cx = analytic_complexity("multiresnet_cifar", depth=11, k=2, block="bottleneck", num_classes=10)
    assert measured_macs(model.eval(), (1, 3, 32, 32)) == cx.macs
    old = build_model({"name": "multiresnet_cifar", "kwargs": {"depth": 11, "k": 2, "block": "bottleneck"}})
    assert [c.stride for c in old.blocks[1].functions[0].body if isinstance(c, nn.Conv2d)][:2] == [(1, 1), (2, 2)]
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == old(x).shape == (2, 10)


def test_the_multiresnet_imagenet_recipe_uses_the_authors_nesterov_momentum():
    cfg = build_config({"model": "multiresnet_imagenet", "dataset": "imagefolder", "pipeline": "imagenet"})
    assert cfg.nesterov is True and cfg.momentum == 0.9 and cfg.batch_size == 256
