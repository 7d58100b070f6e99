"""Rows the papers print as a multiple of another network's complexity (DGConv's Table 4: "2× ResNet101"), against
prunex's analytic multiply-adds (``prunex models --papers``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prunex.models.complexity import Complexity
from prunex.models.registry import analytic_complexity


@dataclass(frozen=True)
class RelativeRow:
    """``model(**kwargs)`` printed as ``printed`` × the complexity of ``baseline(**baseline_kwargs)``."""

    paper: str
    table: str
    label: str
    printed: str  # the multiple as printed ("2" for "2× ResNet101")
    model: str
    kwargs: dict[str, Any]
    baseline_label: str
    baseline: str
    baseline_kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def complexity(self) -> Complexity:
        return analytic_complexity(self.model, **self.kwargs)

    def ratio(self, complexity: Complexity | None = None) -> float:
        """The model's multiply-adds over the baseline's (the complexity measure of Xie et al.'s Table 4)."""
        macs = (complexity or self.complexity()).macs
        return macs / analytic_complexity(self.baseline, **self.baseline_kwargs).macs


DGCONV_TABLE4_NOTE = (
    "the paper prints no counts: every row is '2× ResNet101', the complexity of Xie et al.'s Table 4 (multiply-adds; "
    "ResNet-101 1×64d: 7.80 G). Built by resnet_imagenet (torchvision's layout at any depth, groups and width); "
    "G-ResNeXt101 b=2, constrained to ResNeXt-101 2×64d's size, depends on the groups learned in training"
)
RELATIVE_ROWS: list[RelativeRow] = [
    RelativeRow(
        "DGConv",
        "Table 4",
        label,
        "2",
        "resnet_imagenet",
        kwargs,
        "ResNet101",
        "resnet_imagenet",
        {"depth": 101},
        note=DGCONV_TABLE4_NOTE,
    )
    for label, kwargs in (
        ("ResNet200 (depth) 1×64d", {"depth": 200}),
        ("ResNet101 (wider) 1×100d", {"depth": 101, "width_per_group": 100}),
        ("ResNeXt101 (card.) 64×4d", {"depth": 101, "groups": 64, "width_per_group": 4}),
        ("ResNeXt101 (card.) 2×64d", {"depth": 101, "groups": 2, "width_per_group": 64}),
    )
]
