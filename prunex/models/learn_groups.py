"""Learn the grouping of any CNN's convolutions: chosen ``nn.Conv2d`` layers become DGConv2d layers that compute
exactly the same function at the start.

A conv with G groups (G = 1: dense) over C_in → C_out channels becomes a DGConv with K = min(ν₂(C_in), ν₂(C_out))
gates (ν₂: the power of two dividing a count), log₂ G of them separating and the rest merging, so U ⊙ W is the
conv's block-diagonal weight (:meth:`DGConv2d.from_conv`). Training then moves the gates; ``prunex compress``
folds them into real grouped convolutions. A conv whose G is not a power of two, or whose channel counts share
no factor of two, cannot be expressed and is skipped (and reported).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

from torch import nn

from prunex.artifacts.model_spec import ModelSpec
from prunex.nn.conv_geometry import is_plain_conv
from prunex.nn.dgconv import DGConv2d
from prunex.nn.fused_gates import fuse_gates


class ConvKind(StrEnum):
    SPATIAL = "spatial"  # k×k (k > 1), not depthwise: learned by default
    POINTWISE = "pointwise"  # 1×1: only when asked
    DEPTHWISE = "depthwise"  # one group per channel: only when asked


def conv_kind(conv: nn.Conv2d) -> ConvKind:
    if conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels:
        return ConvKind.DEPTHWISE
    return ConvKind.POINTWISE if conv.kernel_size == (1, 1) else ConvKind.SPATIAL


@dataclass(frozen=True)
class GroupLearning:
    """Which convolutions learn their grouping, and the DGConv budget b to train them with (None: none)."""

    where: tuple[str, ...] = ()  # fnmatch patterns on module names ("layer3.*"); empty: every conv of the kinds
    pointwise: bool = False
    depthwise: bool = False
    budget: float | None = None

    @classmethod
    def parse(cls, text: str) -> GroupLearning:
        """``spatial`` / ``pointwise`` / ``depthwise`` and name patterns, comma-separated (``spatial,layer4.*``)."""
        items = [t.strip() for t in text.split(",") if t.strip()]
        kinds = {k.value for k in ConvKind}
        return cls(tuple(t for t in items if t not in kinds), "pointwise" in items, "depthwise" in items)

    def kinds(self) -> set[ConvKind]:
        chosen = {ConvKind.SPATIAL: True, ConvKind.POINTWISE: self.pointwise, ConvKind.DEPTHWISE: self.depthwise}
        return {kind for kind, wanted in chosen.items() if wanted}

    def as_dict(self) -> dict:
        return {**asdict(self), "where": list(self.where)}


@dataclass(frozen=True)
class ReplacedConv:
    name: str
    groups: int  # the conv's groups when it was replaced
    gates: int  # K


@dataclass
class LearnedGroups:
    plan: GroupLearning
    replaced: list[ReplacedConv] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (module name, why)


OWN_FORWARD = (
    "computes more than its convolution in its own forward (as timm's Conv2dSame pads from the input size and "
    "StdConv2d standardises its weight), so no DGConv2d is the same function"
)


def learn_groups(
    model: nn.Module,
    where: str | Sequence[str] | None = None,
    *,
    pointwise: bool = False,
    depthwise: bool = False,
    budget: float | None = None,
) -> LearnedGroups:
    """Replace the chosen convolutions of ``model`` (in place) by exactly equivalent DGConv2d layers.

    ``where``: module-name patterns (default: every conv of the chosen kinds); k×k convs always, 1×1 with
    ``pointwise``, depthwise with ``depthwise``. ``budget``: the DGConv resource constraint b that ``prunex train``
    applies (recorded in the model's spec). Raises ValueError when nothing can learn its grouping. The model then
    fuses its gates in training (:func:`~prunex.nn.fuse_gates`).
    """
    patterns = (where,) if isinstance(where, str) else tuple(where or ())
    plan = GroupLearning(patterns, pointwise, depthwise, budget)
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be >= 1 (o = Σ C_in·C_out / b), got {budget}")
    result = LearnedGroups(plan)
    chosen = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
        and not isinstance(m, DGConv2d)
        and conv_kind(m) in plan.kinds()
        and (not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns))
    ]
    if not chosen:
        what = f"matching {', '.join(patterns)}" if patterns else f"of the kinds {', '.join(sorted(plan.kinds()))}"
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d {what}")
    for name, conv in chosen:
        if not is_plain_conv(conv):
            result.skipped.append((name, f"{type(conv).__name__} {OWN_FORWARD}"))
            continue
        try:
            layer = DGConv2d.from_conv(conv)
        except ValueError as err:
            result.skipped.append((name, str(err)))
            continue
        if layer.num_gates == 0:
            result.skipped.append((name, f"{conv.in_channels}->{conv.out_channels} channels share no factor of two"))
            continue
        layer.to(conv.weight.device, conv.weight.dtype)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, layer)
        result.replaced.append(ReplacedConv(name, conv.groups, layer.num_gates))
    if not result.replaced:
        reasons = "; ".join(f"{n}: {why}" for n, why in result.skipped[:3])
        raise ValueError(f"no convolution of {type(model).__name__} can learn its grouping ({reasons})")
    spec = getattr(model, "prunex_spec", None)
    if isinstance(spec, ModelSpec):
        model.prunex_spec = replace(spec, learn_groups=plan.as_dict())
    fuse_gates(model)
    return result
