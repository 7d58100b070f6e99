"""ResNeXt for CIFAR as the MaskConnect paper specifies it (Table 5): the Fixed-Full baseline.

Each module holds C parallel bottleneck residual functions on one input: y = ReLU(P(x) + Σ_j F_j(x)), with P
the identity or a 1×1 conv + BN projection where width or stride changes. D = 9n + 2 (3 stages of n modules
of 3-layer blocks, plus stem and classifier). Training runs each module's C residual functions as one grouped
computation (:mod:`prunex.nn.block_batching`), i.e. as the grouped-convolution ResNeXt it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing

from prunex.models import complexity as cxm
from prunex.models.complexity import Complexity
from prunex.models.family import Family
from prunex.models.registry import register_model
from prunex.nn.block_batching import bottlenecks, can_batch_bottlenecks, sum_blocks
from prunex.nn.classifier import ClassifierHead
from prunex.nn.init import he_init_
from prunex.nn.residual import BottleneckFunction, shortcut

MASKCONNECT_PAPER = "Ahmed & Torresani, Connectivity Learning in Multi-Branch Networks (MaskConnect), 2017"


@dataclass(frozen=True)
class ModuleSpec:
    in_ch: int
    width: int
    out_ch: int
    stride: int


def multibranch_modules(depth: int, bottleneck_width: int, stem_width: int | None, out_width: int | None):
    """(stem width, module specs) of a {D, w} network of Table 5.

    NOTE: Table 5 uses a 16-wide stem with 64/128/256 outputs for w ∈ {4, 8}, and a 64-wide stem with
    256/512/1024 outputs for w = 64 (Xie et al.'s ResNeXt-29). Widths it does not list follow the w < 64 rule.
    """
    if depth < 11 or (depth - 2) % 9:
        raise ValueError(f"depth must be 9n + 2 with n >= 1 (e.g. 20, 29), got {depth}")
    n = (depth - 2) // 9
    large = bottleneck_width >= 64
    stem = stem_width or (64 if large else 16)
    base_out = out_width or (256 if large else 64)
    specs, c = [], stem
    for stage in range(3):
        for i in range(n):
            out = base_out << stage
            specs.append(ModuleSpec(c, bottleneck_width << stage, out, 2 if stage > 0 and i == 0 else 1))
            c = out
    return stem, specs


def stem(in_chans: int, width: int, pool: bool = False) -> nn.Sequential:
    """conv3×3 → BN → ReLU, and with ``pool`` a 3×3/2 max-pool (the Mini-ImageNet models of MaskConnect Table 6)."""
    layers = [nn.Conv2d(in_chans, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    return nn.Sequential(*layers, *([nn.MaxPool2d(3, stride=2, padding=1)] if pool else []))


class ResNeXtModule(nn.Module):
    """y = ReLU(P(x) + Σ_{j=1..C} F_j(x))."""

    def __init__(self, spec: ModuleSpec, cardinality: int) -> None:
        super().__init__()
        self.shortcut = shortcut(spec.in_ch, spec.out_ch, spec.stride)
        self.branches = nn.ModuleList(
            BottleneckFunction(spec.in_ch, spec.width, spec.out_ch, spec.stride) for _ in range(cardinality)
        )
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        if self.training and not is_fx_symbolic_tracing() and can_batch_bottlenecks(self.branches):
            f = bottlenecks(self.branches, x, shared_input=True)
            return self.relu(self.shortcut(x) + sum_blocks(f, len(self.branches)))
        y = self.shortcut(x)
        for branch in self.branches:
            y = y + branch(x)
        return self.relu(y)


class ResNeXtCifar(nn.Module):
    """stem → modules of C parallel residual functions → global average pool → linear."""

    def __init__(
        self,
        *,
        depth: int,
        bottleneck_width: int,
        cardinality: int,
        num_classes: int,
        in_chans: int,
        stem_width: int | None,
        out_width: int | None,
        stem_pool: bool,
    ) -> None:
        super().__init__()
        stem_ch, specs = multibranch_modules(depth, bottleneck_width, stem_width, out_width)
        self.stem = stem(in_chans, stem_ch, stem_pool)
        self.stages = nn.Sequential(*(ResNeXtModule(s, cardinality) for s in specs))
        self.head = ClassifierHead(specs[-1].out_ch, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.head(x)


def modules_complexity(
    cx: Complexity,
    specs: list[ModuleSpec],
    cardinality: int,
    *,
    gates_per_module: int = 0,
    projection_per_block: bool = False,
) -> Complexity:
    """Counts of modules of C bottleneck residual functions from ``cx`` on.

    ``gates_per_module`` counts the mask entries of modules 2…L; ``projection_per_block`` applies a module's
    (shared) projection to each block's own input, as MaskConnect does from module 2 on.
    """
    for i, s in enumerate(specs):
        at = cx.fresh()
        b = cxm.batchnorm2d(cxm.conv2d(at, s.in_ch, s.width, 1), s.width)
        b = cxm.batchnorm2d(cxm.conv2d(b, s.width, s.width, 3, stride=s.stride), s.width)
        b = cxm.batchnorm2d(cxm.conv2d(b, s.width, s.out_ch, 1), s.out_ch)
        module = b.scaled(cardinality)
        if s.in_ch != s.out_ch or s.stride != 1:
            proj = cxm.batchnorm2d(cxm.conv2d(at, s.in_ch, s.out_ch, 1, stride=s.stride), s.out_ch)
            if projection_per_block and i > 0:
                proj = proj.add(macs=(cardinality - 1) * proj.macs)
            module = module.plus(proj)
        cx = cx.then(module.add(gates=gates_per_module if i > 0 else 0))
    return cx


def multibranch_complexity(
    *,
    depth: int,
    bottleneck_width: int,
    cardinality: int,
    num_classes: int,
    in_chans: int,
    stem_width: int | None,
    out_width: int | None,
    stem_pool: bool = False,
    gates_per_module: int = 0,
    projection_per_block: bool = False,
    image_size: int = 32,
) -> Complexity:
    """Counts of the Table 5 network (Table 6 with ``stem_pool``)."""
    stem_ch, specs = multibranch_modules(depth, bottleneck_width, stem_width, out_width)
    cx = Complexity(image_size, image_size)
    cx = cxm.batchnorm2d(cxm.conv2d(cx, in_chans, stem_ch, 3), stem_ch)
    if stem_pool:
        cx = cxm.pool(cx, 3, 2, padding=1)
    cx = modules_complexity(
        cx, specs, cardinality, gates_per_module=gates_per_module, projection_per_block=projection_per_block
    )
    return cxm.linear(cxm.global_pool(cx), specs[-1].out_ch, num_classes)


@register_model(
    paper=MASKCONNECT_PAPER + " (Fixed-Full baseline; Xie et al. ResNeXt)",
    complexity=multibranch_complexity,
    family=Family.RESNEXT,
    mini_imagenet_stem=True,
)
def resnext_cifar(
    *,
    depth: int = 29,
    bottleneck_width: int = 8,
    cardinality: int = 8,
    num_classes: int = 10,
    in_chans: int = 3,
    stem_width: int | None = None,
    out_width: int | None = None,
    stem_pool: bool = False,
) -> ResNeXtCifar:
    """ResNeXt {D, w, C} of MaskConnect's Table 5 (Table 6, Mini-ImageNet, with ``stem_pool``): modules
    y = ReLU(P(x) + Σ_j F_j(x))."""
    model = ResNeXtCifar(
        depth=depth,
        bottleneck_width=bottleneck_width,
        cardinality=cardinality,
        num_classes=num_classes,
        in_chans=in_chans,
        stem_width=stem_width,
        out_width=out_width,
        stem_pool=stem_pool,
    )
    return he_init_(model)  # Xie et al. train with He et al.'s initialisation (fb.resnet.torch)
