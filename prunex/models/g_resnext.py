"""Groupable ResNeXt (Zhang et al., DGConv): torchvision's ResNeXt with every grouped 3×3 conv a DGConv2d.

``g_resnext50`` / ``g_resnext101`` are torchvision's ``resnext50_32x4d`` / ``resnext101_32x8d``;
``g_resnext_cifar`` is Xie et al.'s CIFAR ResNeXt (3×3 stem of 64, three stages of bottlenecks with outputs
256·2^s and grouped width C·d·2^s). :func:`from_torchvision_resnext` turns a torchvision ResNeXt (e.g. with
pretrained weights read from disk) into the G-ResNeXt whose DGConvs start at its 32 contiguous groups.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from prunex.artifacts.model_spec import ModelSpec
from prunex.models import complexity as cxm
from prunex.models.complexity import Complexity
from prunex.models.family import Family, Reference, classes_of, keep, torchvision_resnext
from prunex.models.registry import register_model
from prunex.nn.classifier import ClassifierHead
from prunex.nn.dgconv import DGConv2d

DGCONV_PAPER = "Zhang et al., Differentiable Learning-to-Group Channels via Groupable ConvNets (DGConv), ICCV 2019"

# torchvision's ImageNet ResNeXt layouts: blocks per stage -> registered G-ResNeXt name
TORCHVISION_LAYOUTS = {(3, 4, 6, 3): "g_resnext50", (3, 4, 23, 3): "g_resnext101"}


def replace_grouped_convs(model: nn.Module, *, keep_weights: bool) -> nn.Module:
    """Swap every grouped ``nn.Conv2d`` for a ``DGConv2d``: an exact copy (``keep_weights``) or a fresh layer
    with dense He-initialised weights and random ±1e-8 gates."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Conv2d and child.groups > 1:
                if keep_weights:
                    layer = DGConv2d.from_conv(child)
                else:
                    layer = DGConv2d.shaped_like(child)
                    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                setattr(module, child_name, layer)
    return model


class CifarResNeXt(nn.Module):
    """Xie et al.'s CIFAR ResNeXt: conv3×3(64)-BN-ReLU → 3 stages of bottlenecks → average pool → linear."""

    def __init__(self, *, depth: int, cardinality: int, bottleneck_width: int, num_classes: int, in_chans: int):
        super().__init__()
        if depth < 11 or (depth - 2) % 9:
            raise ValueError(f"depth must be 9n + 2 (e.g. 29), got {depth}")
        n = (depth - 2) // 9
        self.stem = nn.Sequential(nn.Conv2d(in_chans, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        blocks, c = [], 64
        for stage in range(3):
            planes = 64 << stage
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                down = None
                if stride != 1 or c != planes * 4:
                    down = nn.Sequential(
                        nn.Conv2d(c, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4)
                    )
                blocks.append(
                    tv_resnet.Bottleneck(c, planes, stride, down, groups=cardinality, base_width=bottleneck_width)
                )
                c = planes * 4
        self.stages = nn.Sequential(*blocks)
        self.head = ClassifierHead(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.head(x)


def _bottleneck_stage_complexity(
    cx: Complexity, c_in: int, planes: int, blocks: int, stride: int, groups: int, width_per_group: int, dgconv: bool
) -> tuple[Complexity, int]:
    """torchvision Bottleneck stage; a DGConv counts its dense weight and K gates (``groups`` unused)."""
    width = planes * width_per_group // 64 * groups
    out = planes * 4
    for i in range(blocks):
        s = stride if i == 0 else 1
        at = cx.fresh()
        b = cxm.batchnorm2d(cxm.conv2d(at, c_in, width, 1), width)
        if dgconv:
            b = cxm.conv2d(b, width, width, 3, stride=s).add(gates=cxm.dgconv_gates(width, width))
        else:
            b = cxm.conv2d(b, width, width, 3, stride=s, groups=groups)
        b = cxm.batchnorm2d(cxm.conv2d(cxm.batchnorm2d(b, width), width, out, 1), out)
        if s != 1 or c_in != out:
            b = b.plus(cxm.batchnorm2d(cxm.conv2d(at, c_in, out, 1, stride=s), out))
        cx = cx.then(b)
        c_in = out
    return cx, c_in


def resnext_imagenet_complexity(
    layers: tuple[int, ...], groups: int, width_per_group: int, *, num_classes: int, dgconv: bool, image_size: int = 224
) -> Complexity:
    """torchvision ResNeXt: 7×7/2 stem, 3×3/2 max pool, four bottleneck stages, linear."""
    cx = cxm.batchnorm2d(cxm.conv2d(Complexity(image_size, image_size), 3, 64, 7, stride=2), 64)
    cx, c = cxm.pool(cx, 3, 2, padding=1), 64
    for stage, n in enumerate(layers):
        cx, c = _bottleneck_stage_complexity(
            cx, c, 64 << stage, n, 1 if stage == 0 else 2, groups, width_per_group, dgconv
        )
    return cxm.linear(cxm.global_pool(cx), c, num_classes)


def g_resnext_cifar_complexity(*, depth, cardinality, bottleneck_width, num_classes, in_chans, image_size=32):
    n = (depth - 2) // 9
    cx = cxm.batchnorm2d(cxm.conv2d(Complexity(image_size, image_size), in_chans, 64, 3), 64)
    c = 64
    for stage in range(3):
        cx, c = _bottleneck_stage_complexity(
            cx, c, 64 << stage, n, 1 if stage == 0 else 2, cardinality, bottleneck_width, True
        )
    return cxm.linear(cxm.global_pool(cx), c, num_classes)


def g_resnext50_complexity(*, num_classes: int, groups: int, width_per_group: int) -> Complexity:
    return resnext_imagenet_complexity((3, 4, 6, 3), groups, width_per_group, num_classes=num_classes, dgconv=True)


def g_resnext101_complexity(*, num_classes: int, groups: int, width_per_group: int) -> Complexity:
    return resnext_imagenet_complexity((3, 4, 23, 3), groups, width_per_group, num_classes=num_classes, dgconv=True)


def _imagenet_g_resnext(layers: list[int], num_classes: int, groups: int, width_per_group: int) -> tv_resnet.ResNet:
    model = tv_resnet.ResNet(
        tv_resnet.Bottleneck, layers, num_classes=num_classes, groups=groups, width_per_group=width_per_group
    )
    return replace_grouped_convs(model, keep_weights=False)


def _resnext29(kwargs: dict[str, Any]) -> Reference:
    """Xie et al.'s grouped ResNeXt-29 of the same depth, cardinality and width."""
    return Reference(
        "resnext29_cifar", {**keep(kwargs, "depth", "cardinality", "bottleneck_width"), **classes_of(kwargs)}
    )


def _torchvision_twin(depth: int, width: int) -> Callable[[dict[str, Any]], Reference]:
    """torchvision's ResNeXt-{depth} of the same groups and width."""
    return lambda kwargs: torchvision_resnext(
        depth, kwargs.get("groups", 32), kwargs.get("width_per_group", width), kwargs
    )


@register_model(paper=DGCONV_PAPER, complexity=g_resnext_cifar_complexity, family=Family.DGCONV, reference=_resnext29)
def g_resnext_cifar(
    *, depth: int = 29, cardinality: int = 8, bottleneck_width: int = 16, num_classes: int = 10, in_chans: int = 3
) -> CifarResNeXt:
    """G-ResNeXt for CIFAR: Xie et al.'s ResNeXt-29 (C × d) with DGConv 3×3 convs."""
    model = CifarResNeXt(
        depth=depth,
        cardinality=cardinality,
        bottleneck_width=bottleneck_width,
        num_classes=num_classes,
        in_chans=in_chans,
    )
    return replace_grouped_convs(model, keep_weights=False)


@register_model(
    paper=DGCONV_PAPER,
    complexity=g_resnext50_complexity,
    image_size=224,
    family=Family.DGCONV,
    reference=_torchvision_twin(50, 4),
)
def g_resnext50(*, num_classes: int = 1000, groups: int = 32, width_per_group: int = 4) -> tv_resnet.ResNet:
    """G-ResNeXt-50: torchvision resnext50_32x4d with DGConv 3×3 convs (dense weights while training)."""
    return _imagenet_g_resnext([3, 4, 6, 3], num_classes, groups, width_per_group)


@register_model(
    paper=DGCONV_PAPER,
    complexity=g_resnext101_complexity,
    image_size=224,
    family=Family.DGCONV,
    reference=_torchvision_twin(101, 8),
)
def g_resnext101(*, num_classes: int = 1000, groups: int = 32, width_per_group: int = 8) -> tv_resnet.ResNet:
    """G-ResNeXt-101: torchvision resnext101_32x8d (the paper's is 32×4d) with DGConv 3×3 convs."""
    return _imagenet_g_resnext([3, 4, 23, 3], num_classes, groups, width_per_group)


def from_torchvision_resnext(model: tv_resnet.ResNet) -> tv_resnet.ResNet:
    """The G-ResNeXt equal to a torchvision ResNeXt (resnext50_32x4d, resnext101_32x8d, …): each grouped 3×3
    conv becomes a DGConv at its contiguous groups. The input is not modified. The result carries the
    ``prunex_spec`` of ``g_resnext50`` / ``g_resnext101`` with the source's groups and width.
    """
    layers = tuple(len(getattr(model, f"layer{i}", ())) for i in range(1, 5))
    conv = model.layer1[0].conv2 if layers[0] else None
    if layers not in TORCHVISION_LAYOUTS or conv is None or conv.groups == 1:
        raise ValueError(
            f"not a torchvision ResNeXt-50/101: blocks per stage {layers}, "
            f"{getattr(conv, 'groups', 'no')} groups in layer1's 3x3 conv"
        )
    width_per_group = conv.out_channels // conv.groups  # layer1 planes are 64, so width = groups·width_per_group
    converted = replace_grouped_convs(copy.deepcopy(model), keep_weights=True)
    kwargs = {"num_classes": model.fc.out_features, "groups": conv.groups, "width_per_group": width_per_group}
    converted.prunex_spec = ModelSpec(TORCHVISION_LAYOUTS[layers], kwargs)
    return converted
