"""What a model family is, beside its builders in the registry: which recipes train it (:class:`Family`) and which
network a user would deploy instead (:class:`Reference`, from the family's reference function)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

TORCHVISION = "torchvision:"


class Family(StrEnum):
    """The recipe family (``prunex.train.recipes`` keeps one paper and one quick recipe per family)."""

    MASKCONNECT = "maskconnect"
    RESNEXT = "resnext"  # MaskConnect's Fixed-Full baseline: the same phases, no gates to learn
    DGCONV = "dgconv"  # also any network whose convolutions learn their grouping (--learn-groups)
    MULTIRESNET = "multiresnet"
    SPARSENET = "sparsenet"
    OTHER = "other"  # networks from outside the registry


@dataclass(frozen=True)
class Reference:
    """A network to time beside a model: a registered model, ``resnext29_cifar`` (Xie et al.'s grouped network) or
    ``torchvision:NAME``, with the keyword arguments that shape it."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``resnext_cifar(depth=20, bottleneck_width=4, cardinality=8)``: the name and what shapes it."""
        shown = [f"{k}={v}" for k, v in self.kwargs.items() if k not in ("num_classes", "in_chans")]
        return f"{self.name}({', '.join(shown)})" if shown and not self.name.startswith(TORCHVISION) else self.name


def keep(kwargs: dict[str, Any], *names: str) -> dict[str, Any]:
    """The entries of ``kwargs`` named (those present)."""
    return {k: kwargs[k] for k in names if k in kwargs}


def classes_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What a reference takes from the model it stands beside: its classes and input channels."""
    return keep(kwargs, "num_classes", "in_chans")


def torchvision_resnext(depth: int, groups: int, width: int, kwargs: dict[str, Any]) -> Reference:
    """torchvision's ResNeXt-{depth} {groups}×{width}d (built at any groups and width)."""
    return Reference(f"{TORCHVISION}resnext{depth}_{groups}x{width}d", keep(kwargs, "num_classes"))
