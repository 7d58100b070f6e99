"""Multi-ResNet for CIFAR (Abdi & Nahavandi): pre-activation ResNet whose blocks hold k residual functions.

Depth 6n + 2 with basic blocks (two 3×3 convs) or 9n + 2 with bottleneck blocks (1×1, 3×3, 1×1; 4× expansion);
stage widths 16, 32, 64 (× the widening factor, × 4 at the bottleneck outputs); 3×3 stem of 16; the head is
BN-ReLU-average pool-linear. A CIFAR bottleneck strides in its first 1×1, as the authors' code (He et al.'s
pre-activation ResNet code) does; the ImageNet networks stride in the 3×3 and their first block does not
pre-activate the stem's already activated output (He et al.'s "no_preact").

NOTE: Table III's networks were trained at batch 64; the family's CIFAR recipe keeps the batch of Tables I and II
(128), one recipe per family: give ``--batch-size 64`` to train Table III's as the paper did.
"""

from __future__ import annotations

from torch import Tensor, nn

from prunex.models import complexity as cxm
from prunex.models.complexity import Complexity
from prunex.models.family import Family, Reference
from prunex.models.registry import register_model
from prunex.models.stems import imagenet_stem, imagenet_stem_complexity
from prunex.nn.classifier import ClassifierHead
from prunex.nn.init import he_init_
from prunex.nn.multi_residual import BLOCK_KINDS, MultiResidualBlock

MULTIRESNET_PAPER = (
    "Abdi & Nahavandi, Multi-Residual Networks: Improving the Speed and Accuracy of Residual Networks, 2016"
)
STEM_WIDTH = 16


def multiresnet_blocks(depth: int, block: str, blocks_per_stage: tuple[int, ...] | None) -> tuple[int, ...]:
    """Blocks per stage: n = (depth − 2)/6 (basic) or (depth − 2)/9 (bottleneck), or given explicitly."""
    if block not in BLOCK_KINDS:
        raise ValueError(f"block must be one of {BLOCK_KINDS}, got {block!r}")
    if blocks_per_stage is not None:
        if len(blocks_per_stage) != 3 or min(blocks_per_stage) < 1:
            raise ValueError(f"blocks_per_stage needs three positive counts, got {blocks_per_stage}")
        return tuple(blocks_per_stage)
    layers = 2 if block == "basic" else 3
    if (depth - 2) % (3 * layers) or depth < 2 + 3 * layers:
        raise ValueError(f"depth must be {3 * layers}n + 2 for {block} blocks, got {depth}")
    n = (depth - 2) // (3 * layers)
    return (n, n, n)


def multiresnet_stages(depth: int, block: str, widen: int, blocks_per_stage: tuple[int, ...] | None):
    """(in, out, stride) of every block."""
    expansion = 1 if block == "basic" else 4
    specs, c = [], STEM_WIDTH
    for stage, n in enumerate(multiresnet_blocks(depth, block, blocks_per_stage)):
        out = (16 << stage) * widen * expansion
        for i in range(n):
            specs.append((c, out, 2 if stage > 0 and i == 0 else 1))
            c = out
    return specs


class MultiResNet(nn.Module):
    """stem → multi-residual blocks → BN-ReLU → average pool → linear; subclasses build the stem and blocks."""

    stem: nn.Module
    blocks: nn.Sequential
    head: ClassifierHead

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


class MultiResNetCifar(MultiResNet):
    """stem → multi-residual blocks y = x + Σ_i f_i(x) → BN-ReLU → average pool → linear."""

    def __init__(
        self,
        *,
        depth: int,
        k: int,
        block: str,
        widen: int,
        blocks_per_stage: tuple[int, ...] | None,
        num_classes: int,
        in_chans: int,
        stride_first: bool = True,
    ) -> None:
        super().__init__()
        specs = multiresnet_stages(depth, block, widen, blocks_per_stage)
        self.stem = nn.Conv2d(in_chans, STEM_WIDTH, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(
            *(MultiResidualBlock(i, o, k=k, stride=s, kind=block, stride_first=stride_first) for i, o, s in specs)
        )
        width = specs[-1][1]
        self.head = ClassifierHead(width, num_classes, norm=True)


def _function_complexity(
    cx: Complexity, c_in: int, c_out: int, stride: int, block: str, preact: bool, stride_first: bool
) -> Complexity:
    if preact:
        cx = cxm.batchnorm2d(cx, c_in)
    if block == "basic":
        cx = cxm.batchnorm2d(cxm.conv2d(cx, c_in, c_out, 3, stride=stride), c_out)
        return cxm.conv2d(cx, c_out, c_out, 3)
    w = c_out // 4
    first, middle = (stride, 1) if stride_first else (1, stride)
    cx = cxm.batchnorm2d(cxm.conv2d(cx, c_in, w, 1, stride=first), w)
    cx = cxm.batchnorm2d(cxm.conv2d(cx, w, w, 3, stride=middle), w)
    return cxm.conv2d(cx, w, c_out, 1)


def preact_blocks_and_head_complexity(
    cx: Complexity,
    specs,
    block: str,
    k: int,
    num_classes: int,
    *,
    stride_first: bool = False,
    first_preact: bool = True,
) -> Complexity:
    """Multi-residual blocks (k functions; a dimension-increasing block's shared BN and 1×1 projection; the first
    block without pre-activation unless ``first_preact``), then the BN-ReLU-pool-linear head."""
    for i, (c_in, c_out, stride) in enumerate(specs):
        increases = c_in != c_out or stride != 1
        preact = first_preact or i > 0
        at = cx.fresh()
        own = preact and not increases
        unit = _function_complexity(at, c_in, c_out, stride, block, own, stride_first).scaled(k)
        if increases:
            unit = unit.plus(cxm.conv2d(cxm.batchnorm2d(at, c_in) if preact else at, c_in, c_out, 1, stride=stride))
        cx = cx.then(unit)
    width = specs[-1][1]
    return cxm.linear(cxm.global_pool(cxm.batchnorm2d(cx, width)), width, num_classes)


def multiresnet_cifar_complexity(
    *, depth, k, block, widen, blocks_per_stage, num_classes, in_chans, stride_first=True, image_size: int = 32
) -> Complexity:
    cx = cxm.conv2d(Complexity(image_size, image_size), in_chans, STEM_WIDTH, 3)
    specs = multiresnet_stages(depth, block, widen, blocks_per_stage)
    return preact_blocks_and_head_complexity(cx, specs, block, k, num_classes, stride_first=stride_first)


@register_model(
    paper=MULTIRESNET_PAPER,
    complexity=multiresnet_cifar_complexity,
    family=Family.MULTIRESNET,
    reference=lambda kwargs: Reference("multiresnet_cifar", {**kwargs, "k": 1}),
    legacy_defaults={"stride_first": False},  # prunex before 0.8 strode in a bottleneck's 3×3
)
def multiresnet_cifar(
    *,
    depth: int = 14,
    k: int = 10,
    block: str = "basic",
    widen: int = 1,
    blocks_per_stage: tuple[int, ...] | None = None,
    num_classes: int = 10,
    in_chans: int = 3,
    stride_first: bool = True,
) -> MultiResNetCifar:
    """Multi-ResNet (depth, k): pre-activation blocks y = x + Σ_{i=1..k} f_i(x) (``stride_first``: a bottleneck
    strides in its first 1×1, as the authors' code does)."""
    model = MultiResNetCifar(
        depth=depth,
        k=k,
        block=block,
        widen=widen,
        blocks_per_stage=tuple(blocks_per_stage) if blocks_per_stage is not None else None,
        num_classes=num_classes,
        in_chans=in_chans,
        stride_first=stride_first,
    )
    return he_init_(model)  # "initialized as in [9]" (§V): He et al.


# Pre-activation ResNets of He et al. for ImageNet: block kind and blocks per stage by depth.
IMAGENET_LAYOUTS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}


def multiresnet_imagenet_stages(depth: int) -> list[tuple[int, int, int]]:
    """(in, out, stride) of every block: stage widths 64, 128, 256, 512 (× 4 at bottleneck outputs)."""
    if depth not in IMAGENET_LAYOUTS:
        raise ValueError(f"depth must be one of {sorted(IMAGENET_LAYOUTS)} (He et al.'s ImageNet ResNets), got {depth}")
    block, blocks = IMAGENET_LAYOUTS[depth]
    expansion = 1 if block == "basic" else 4
    specs, c = [], 64
    for stage, n in enumerate(blocks):
        out = (64 << stage) * expansion
        for i in range(n):
            specs.append((c, out, 2 if stage > 0 and i == 0 else 1))
            c = out
    return specs


class MultiResNetImageNet(MultiResNet):
    """conv7×7/2 → BN-ReLU → max-pool 3×3/2 → multi-residual blocks → BN-ReLU → average pool → linear."""

    def __init__(self, *, depth: int, k: int, num_classes: int, in_chans: int, first_block_preact: bool) -> None:
        super().__init__()
        specs = multiresnet_imagenet_stages(depth)
        block = IMAGENET_LAYOUTS[depth][0]
        self.stem = imagenet_stem(in_chans)
        self.blocks = nn.Sequential(
            *(
                MultiResidualBlock(i, o, k=k, stride=s, kind=block, preact=first_block_preact or n > 0)
                for n, (i, o, s) in enumerate(specs)
            )
        )
        width = specs[-1][1]
        self.head = ClassifierHead(width, num_classes, norm=True)


def multiresnet_imagenet_complexity(
    *, depth, k, num_classes, in_chans, first_block_preact=False, image_size: int = 224
) -> Complexity:
    block = IMAGENET_LAYOUTS[depth][0] if depth in IMAGENET_LAYOUTS else "basic"
    cx = imagenet_stem_complexity(image_size, in_chans)
    specs = multiresnet_imagenet_stages(depth)
    return preact_blocks_and_head_complexity(cx, specs, block, k, num_classes, first_preact=first_block_preact)


@register_model(
    paper=MULTIRESNET_PAPER,
    complexity=multiresnet_imagenet_complexity,
    image_size=224,
    family=Family.MULTIRESNET,
    reference=lambda kwargs: Reference("multiresnet_imagenet", {**kwargs, "k": 1}),
    legacy_defaults={"first_block_preact": True},  # prunex before 0.8 pre-activated the stem's output again
)
def multiresnet_imagenet(
    *, depth: int = 18, k: int = 2, num_classes: int = 1000, in_chans: int = 3, first_block_preact: bool = False
) -> MultiResNetImageNet:
    """Multi-ResNet for ImageNet (Table IV: depth 18 and 101 with k = 2): He et al.'s pre-activation ResNet whose
    blocks hold k residual functions; the first block reads the stem's BN-ReLU output as it is
    (``first_block_preact``: pre-activate it again, as prunex before 0.8 did)."""
    model = MultiResNetImageNet(
        depth=depth, k=k, num_classes=num_classes, in_chans=in_chans, first_block_preact=first_block_preact
    )
    return he_init_(model)  # "initialized as in [9]" (§V): He et al.
