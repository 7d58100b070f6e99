"""MaskConnect (Ahmed & Torresani): ResNeXt modules whose blocks learn which K of the C branch outputs of the
previous module they read. CIFAR {D, w, C} (Table 5; Mini-ImageNet's Table 6 adds a max-pool to the stem) and
ImageNet {50 | 101, w, C} (§3.2, E.2: the ResNeXt-50 / 101 layouts of Xie et al., K = C/2).

Block j of module i computes y_j = ReLU(P(x_j) + F_j(x_j)) with x_j = (1/K)·Σ_k m_jk · y_k^(i−1); module 1 reads
the stem output; the classifier reads (1/C)·Σ_k y_k of the last module. Where width or stride changes, P is a
1×1 conv + BN projection; elsewhere P(x_j) = x_j.

NOTE: the paper leaves the projection shortcut open. ``projection="shared"`` (the default) projects the blocks'
mean input once per module, y_j = ReLU(P(x̄) + F_j(x_j)) with x̄ = (1/C)·Σ_j x_j, so a module costs what a
ResNeXt module costs (one projection) and reads nothing its blocks do not (a block no later block reads is still
removable). ``projection="per_block"`` applies one set of weights to each block's own input,
y_j = ReLU(P(x_j) + F_j(x_j)): C projections per module (0.2's only form, kept for reproduction and for its
checkpoints). Since P is linear, P(x̄) is the mean of the per-block projections: the shared form gives every
block the module's average shortcut instead of its own.

NOTE: the paper (eq. 2) sums without the 1/K and 1/C. With the sum, every module multiplies the scale of the
identity path by K going forward and the gradient by K going backward (8^5 ≈ 3·10^4 at the stem of {20,4,8} with
K = C), and the network does not train at the paper's learning rate. The constants change nothing else: each
F_j starts with conv → BN, which is scale invariant, and BN3 and the classifier absorb the factor, so the
function class is the paper's. Compression folds the constants away.

Training runs every module's C blocks as one grouped computation on block-major stacked tensors
(:mod:`prunex.nn.block_batching`): the same function, with a constant number of ops per module. Evaluation,
tracing and export use the block-by-block form.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import torch
from torch import Tensor, nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing

from prunex.models import complexity as cxm
from prunex.models.complexity import Complexity
from prunex.models.family import Family, Reference, classes_of, keep, torchvision_resnext
from prunex.models.registry import register_model
from prunex.models.resnext_cifar import (
    MASKCONNECT_PAPER,
    ModuleSpec,
    modules_complexity,
    multibranch_complexity,
    multibranch_modules,
    stem,
)
from prunex.models.stems import imagenet_stem, imagenet_stem_complexity
from prunex.nn.block_batching import (
    add_to_blocks,
    bottlenecks,
    can_batch_bottlenecks,
    can_batch_norms,
    mix_blocks,
    projection_per_block,
    sum_blocks,
)
from prunex.nn.branch_gates import BranchGates, Connectivity, aggregate_branches, aggregate_branches_stacked
from prunex.nn.classifier import ClassifierHead
from prunex.nn.init import he_init_
from prunex.nn.residual import BottleneckFunction, Projection, shortcut


def mean_of(tensors: list[Tensor]) -> Tensor:
    """(1/n)·Σ tensors, term by term (so that a traced graph shows each term, and a dead block's is removable)."""
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total * (1.0 / len(tensors))


class ProjectionShortcut(Enum):
    """Where a MaskConnect module's projection shortcut reads: once, the blocks' mean input (``shared``), or each
    block's own input (``per_block``)."""

    SHARED = "shared"
    PER_BLOCK = "per_block"


class MaskConnectModule(nn.Module):
    """C blocks y_j = ReLU(P(x̄) + F_j(x_j)) (shared projection) or ReLU(P(x_j) + F_j(x_j)) (per block, and
    wherever P is the identity); x_j = (1/K)·Σ_k m_jk·y_k (``gates``) or the single input."""

    def __init__(
        self,
        spec: ModuleSpec,
        cardinality: int,
        gates: BranchGates | None,
        projection: ProjectionShortcut = ProjectionShortcut.SHARED,
    ) -> None:
        super().__init__()
        self.gates = gates
        self.input_scale = 1.0 / gates.fan_in if gates is not None else 1.0  # x_j = (1/K)·Σ_k m_jk·y_k
        self.shortcut = shortcut(spec.in_ch, spec.out_ch, spec.stride)
        self.blocks = nn.ModuleList(
            BottleneckFunction(spec.in_ch, spec.width, spec.out_ch, spec.stride) for _ in range(cardinality)
        )
        self.relu = nn.ReLU()
        self.shared_projection = isinstance(self.shortcut, Projection) and projection is ProjectionShortcut.SHARED

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        if self.gates is None:  # first module: every block reads the stem output
            x = inputs[0]
            s = self.shortcut(x)
            return [self.relu(s + block(x)) for block in self.blocks]
        if is_fx_symbolic_tracing():  # term by term, so that the compiler sees (and folds) every gate product
            xs = [s * self.input_scale for s in aggregate_branches(self.gates(), inputs, len(self.blocks))]
        else:
            xs = aggregate_branches_stacked(self.gates.average(), inputs)
        if self.shared_projection:
            s = self.shortcut(mean_of(xs))
            return [self.relu(s + block(x)) for x, block in zip(xs, self.blocks, strict=True)]
        return [self.relu(self.shortcut(x) + block(x)) for x, block in zip(xs, self.blocks, strict=True)]

    def can_batch(self) -> bool:
        """True if :meth:`forward_batched` computes this module (its blocks' settings agree)."""
        proj = self.shortcut
        return can_batch_bottlenecks(self.blocks) and (not isinstance(proj, Projection) or can_batch_norms([proj.bn]))

    def forward_batched(self, y: Tensor) -> Tensor:
        """:meth:`forward` on block-major stacked tensors: ``y`` holds the C outputs of the previous module (the
        stem output for the first module); returns this module's C outputs stacked the same way."""
        if self.gates is None:
            return nn.functional.relu(add_to_blocks(bottlenecks(self.blocks, y, shared_input=True), self.shortcut(y)))
        x = mix_blocks(self.gates.average(), y)
        f = bottlenecks(self.blocks, x)
        if self.shared_projection:
            return nn.functional.relu(add_to_blocks(f, self.shortcut(sum_blocks(x, len(self.blocks), mean=True))))
        s = projection_per_block(self.shortcut, x, len(self.blocks)) if isinstance(self.shortcut, Projection) else x
        return nn.functional.relu(s + f)


class MaskConnectNet(nn.Module):
    """stem → modules of C gated blocks → mean of the last module's outputs → average pool → linear."""

    def __init__(
        self,
        *,
        stem: nn.Module,
        specs: list[ModuleSpec],
        cardinality: int,
        fan_in: int,
        connectivity: Connectivity | str,
        num_classes: int,
        seed: int | None,
        projection: ProjectionShortcut | str = ProjectionShortcut.SHARED,
    ) -> None:
        super().__init__()
        projection = _projection(projection)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.stem = stem
        self.stages = nn.ModuleList(
            MaskConnectModule(
                s,
                cardinality,
                None if i == 0 else BranchGates(cardinality, cardinality, fan_in, connectivity, generator),
                projection,
            )
            for i, s in enumerate(specs)
        )
        self.head = ClassifierHead(specs[-1].out_ch, num_classes)
        self.batch_blocks = True  # train through forward_batched (False: block by block, as in evaluation)

    def forward(self, x: Tensor) -> Tensor:
        if (
            self.training
            and self.batch_blocks
            and not is_fx_symbolic_tracing()
            and all(m.can_batch() for m in self.stages)
        ):
            return self._forward_batched(x)
        ys = [self.stem(x)]
        for module in self.stages:
            ys = module(ys)
        z = mean_of(ys)
        return self.head(z)

    def _forward_batched(self, x: Tensor) -> Tensor:
        y = self.stem(x)
        for module in self.stages:
            y = module.forward_batched(y)
        z = sum_blocks(y, len(self.stages[-1].blocks), mean=True)  # (1/C)·Σ_k y_k
        return self.head(z)

    @torch.no_grad()
    def active_blocks(self) -> list[list[bool]]:
        """Per module, whether each block's output reaches the classifier.

        The last module's blocks all feed the head; block k of module i is live iff a live block of module i+1
        reads it (any block, where module i+1 has a shared projection: its mean input reads every block's input),
        so dead blocks cascade backwards.
        """
        live = [True] * len(self.stages[-1].blocks)
        active = [live]
        for module in reversed(self.stages[1:]):
            mask = module.gates.binary_mask()
            readers = [True] * len(live) if module.shared_projection else live
            live_rows = torch.tensor(readers, dtype=torch.bool, device=mask.device)
            live = [bool(c) for c in (mask[live_rows].sum(0) > 0)]
            active.append(live)
        return active[::-1]


def _resolve_fan_in(cardinality: int, fan_in: int | None, connectivity: str, learned_default: int) -> int:
    if Connectivity(connectivity) is Connectivity.FIXED_FULL:
        return cardinality if fan_in is None else fan_in
    return learned_default if fan_in is None else fan_in


BEFORE_0_4 = {"projection": ProjectionShortcut.PER_BLOCK.value}  # what a spec without ``projection`` meant


def _projection(choice: ProjectionShortcut | str) -> ProjectionShortcut:
    try:
        return ProjectionShortcut(choice)
    except ValueError:
        names = ", ".join(p.value for p in ProjectionShortcut)
        raise ValueError(f"projection must be one of {names}, got {choice!r}") from None


def _gates_per_module(cardinality: int, connectivity: str) -> int:
    return cardinality * cardinality if Connectivity(connectivity).learnable else 0


def maskconnect_cifar_complexity(*, fan_in, connectivity, seed, projection="shared", **kwargs) -> Complexity:
    gates = _gates_per_module(kwargs["cardinality"], connectivity)
    per_block = _projection(projection) is ProjectionShortcut.PER_BLOCK
    return multibranch_complexity(**kwargs, gates_per_module=gates, projection_per_block=per_block)


def _resnext_of_same_widths(kwargs: dict[str, Any]) -> Reference:
    """The ResNeXt {D, w, C} of the same depth and widths (Table 5's Fixed-Full baseline)."""
    widths = keep(kwargs, "depth", "bottleneck_width", "cardinality", "stem_width", "out_width")
    return Reference("resnext_cifar", {**widths, **classes_of(kwargs)})


def _torchvision_resnext(kwargs: dict[str, Any]) -> Reference:
    """torchvision's ResNeXt of the same depth, cardinality and width (Table 2's baseline)."""
    depth, groups, width = kwargs.get("depth", 50), kwargs.get("cardinality", 32), kwargs.get("bottleneck_width", 4)
    return torchvision_resnext(depth, groups, width, kwargs)


@register_model(
    paper=MASKCONNECT_PAPER,
    complexity=maskconnect_cifar_complexity,
    legacy_defaults=BEFORE_0_4,
    family=Family.MASKCONNECT,
    reference=_resnext_of_same_widths,
    mini_imagenet_stem=True,
)
def maskconnect_cifar(
    *,
    depth: int = 29,
    bottleneck_width: int = 8,
    cardinality: int = 8,
    fan_in: int | None = None,
    connectivity: str = "learned",
    num_classes: int = 10,
    in_chans: int = 3,
    stem_width: int | None = None,
    out_width: int | None = None,
    stem_pool: bool = False,
    seed: int | None = None,
    projection: str = "shared",
) -> MaskConnectNet:
    """MaskConnect {D, w, C} with fan-in K (default 4; K = C for fixed_full): x_j = Σ_k m_jk·y_k. ``connectivity``:
    ``learned``, ``fixed_random``, ``fixed_full`` (Table 1) or ``real_valued`` (§4.1's ablation: every block reads
    all C outputs weighted by its real mask m̃_j, unsampled; K then only sets the 1/K scale). ``stem_pool``: the
    Mini-ImageNet network (Table 6), a 3×3/2 max-pool after the first conv. ``projection``: ``shared`` (one
    projection of the blocks' mean input per module) or ``per_block`` (see the module docstring)."""
    stem_ch, specs = multibranch_modules(depth, bottleneck_width, stem_width, out_width)
    model = MaskConnectNet(
        stem=stem(in_chans, stem_ch, stem_pool),
        specs=specs,
        cardinality=cardinality,
        fan_in=_resolve_fan_in(cardinality, fan_in, connectivity, min(4, cardinality)),
        connectivity=connectivity,
        num_classes=num_classes,
        seed=seed,
        projection=projection,
    )
    return he_init_(model)  # E.1: trained as Xie et al.'s ResNeXt, i.e. with He et al.'s initialisation


IMAGENET_LAYOUTS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def imagenet_modules(depth: int, bottleneck_width: int) -> list[ModuleSpec]:
    """Xie et al.'s ResNeXt-50 / 101: stage outputs 256, 512, 1024, 2048, branch widths w·2^s, stride 2 entering
    stages 2–4 (at the 3×3 conv), after a 64-wide 7×7/2 stem and a 3×3/2 max-pool."""
    if depth not in IMAGENET_LAYOUTS:
        raise ValueError(f"depth must be one of {sorted(IMAGENET_LAYOUTS)} (ResNeXt's ImageNet layouts), got {depth}")
    specs, c = [], 64
    for stage, n in enumerate(IMAGENET_LAYOUTS[depth]):
        for i in range(n):
            specs.append(ModuleSpec(c, bottleneck_width << stage, 256 << stage, 2 if stage > 0 and i == 0 else 1))
            c = 256 << stage
    return specs


def maskconnect_imagenet_complexity(
    *,
    depth,
    bottleneck_width,
    cardinality,
    fan_in,
    connectivity,
    num_classes,
    in_chans,
    seed,
    projection="shared",
    image_size: int = 224,
) -> Complexity:
    specs = imagenet_modules(depth, bottleneck_width)
    cx = imagenet_stem_complexity(image_size, in_chans)
    gates = _gates_per_module(cardinality, connectivity)
    per_block = _projection(projection) is ProjectionShortcut.PER_BLOCK
    cx = modules_complexity(cx, specs, cardinality, gates_per_module=gates, projection_per_block=per_block)
    return cxm.linear(cxm.global_pool(cx), specs[-1].out_ch, num_classes)


@register_model(
    paper=MASKCONNECT_PAPER,
    complexity=maskconnect_imagenet_complexity,
    legacy_defaults=BEFORE_0_4,
    image_size=224,
    family=Family.MASKCONNECT,
    reference=_torchvision_resnext,
)
def maskconnect_imagenet(
    *,
    depth: int = 50,
    bottleneck_width: int = 4,
    cardinality: int = 32,
    fan_in: int | None = None,
    connectivity: str = "learned",
    num_classes: int = 1000,
    in_chans: int = 3,
    seed: int | None = None,
    projection: str = "shared",
) -> MaskConnectNet:
    """MaskConnect {D, w, C} for ImageNet (Table 2: {50,4,32}, {101,4,32}, {101,4,64}) with fan-in K = C/2 by
    default (K = C for fixed_full): ResNeXt-50 / 101 whose modules' C blocks each read K of the previous C outputs."""
    model = MaskConnectNet(
        stem=imagenet_stem(in_chans),
        specs=imagenet_modules(depth, bottleneck_width),
        cardinality=cardinality,
        fan_in=_resolve_fan_in(cardinality, fan_in, connectivity, max(1, cardinality // 2)),
        connectivity=connectivity,
        num_classes=num_classes,
        seed=seed,
        projection=projection,
    )
    return he_init_(model)  # E.2: Xie et al.'s ResNeXt training, He et al.'s initialisation
