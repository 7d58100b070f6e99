"""The papers' parameter counts next to prunex's analytic counts (``prunex models --papers``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from prunex.models.g_resnext import resnext_imagenet_complexity
from prunex.models.registry import analytic_complexity

TOLERANCE = 0.025  # the papers print two or three significant digits


@dataclass(frozen=True)
class PaperRow:
    paper: str
    table: str
    label: str
    printed: str  # the count as the paper prints it, in millions
    model: str | None  # registered model whose training-time weight count is compared
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    deployed_groups: int | None = None  # compare the G-ResNeXt deployed at these contiguous groups instead

    def count(self) -> int | None:
        if self.model is None:
            return None
        if self.deployed_groups is not None:
            layers = (3, 4, 6, 3) if self.model == "g_resnext50" else (3, 4, 23, 3)
            cx = resnext_imagenet_complexity(
                layers, self.deployed_groups, self.kwargs["width_per_group"], num_classes=1000, dgconv=False
            )
            return cx.params
        return analytic_complexity(self.model, **self.kwargs).params


def compare(printed: str, count: int) -> tuple[str, float]:
    """(verdict, relative difference): ``rounds`` if the paper's digits are our count rounded, ``truncates``
    if they are our count cut off, ``within 2.5%``, or ``differs``."""
    value = float(printed)
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    millions = count / 1e6
    rel = millions / value - 1
    if round(millions, decimals) == value:
        return "rounds", rel
    if math.floor(millions * 10**decimals) / 10**decimals == value:
        return "truncates", rel
    if abs(rel) <= TOLERANCE:
        return "within 2.5%", rel
    return "differs", rel


MC, MR, SN, DG = "MaskConnect", "Multi-ResNet", "SparseNet", "DGConv"
C100 = {"num_classes": 100}
SPARSE_NOTE = "CIFAR-100, stem 2x growth (the reference README's counts)"

PAPER_ROWS: list[PaperRow] = [
    PaperRow(MC, "Table 1", "{29,8,8}", "0.86", "maskconnect_cifar", {"depth": 29, "bottleneck_width": 8, **C100}),
    PaperRow(MC, "Table 1", "{29,64,8}", "34.4", "maskconnect_cifar", {"depth": 29, "bottleneck_width": 64, **C100}),
    PaperRow(MC, "Fig. 2", "{20,4,8}", "0.28", "maskconnect_cifar", {"depth": 20, "bottleneck_width": 4, **C100}),
    PaperRow(
        MC,
        "Table 1",
        "{29,8,8} Learned K=1, test",
        "0.65",
        None,
        note="depends on the connectivity learned in training",
    ),
    PaperRow(MR, "Table I", "depth 8, k=23", "1.7", "multiresnet_cifar", {"depth": 8, "k": 23}),
    PaperRow(MR, "Table I", "depth 14, k=10", "1.7", "multiresnet_cifar", {"depth": 14, "k": 10}),
    PaperRow(MR, "Table II", "depth 8, k=4", "0.29", "multiresnet_cifar", {"depth": 8, "k": 4}),
    PaperRow(MR, "Table II", "depth 20, k=4", "1.0", "multiresnet_cifar", {"depth": 20, "k": 4}),
    PaperRow(
        MR,
        "Table II",
        "depth 30, k=4",
        "1.7",
        None,
        note="30 is not 6n+2; the paper removes an unspecified block to match ResNet-110",
    ),
    PaperRow(
        MR, "Table III", "depth 200, k=5", "10.2", "multiresnet_cifar", {"depth": 200, "k": 5, "block": "bottleneck"}
    ),
    PaperRow(
        MR, "Table III", "depth 398, k=5", "20.4", "multiresnet_cifar", {"depth": 398, "k": 5, "block": "bottleneck"}
    ),
    PaperRow(MR, "Table III", "depth 26, k=2, w=10", "72", "multiresnet_cifar", {"depth": 26, "k": 2, "widen": 10}),
    PaperRow(MR, "Table III", "depth 26, k=4, w=10", "145", "multiresnet_cifar", {"depth": 26, "k": 4, "widen": 10}),
    PaperRow(
        SN,
        "Table 2",
        "40, k=12 (README: 40-24)",
        "0.8",
        "sparsenet_cifar",
        {"depth": 40, "growth": 24, "stem_width": 48, **C100},
        note=SPARSE_NOTE + "; the table's k=12 is k=24 in the reference README (0.76M)",
    ),
    PaperRow(
        SN,
        "Table 2",
        "100, k=24",
        "2.5",
        "sparsenet_cifar",
        {"depth": 100, "growth": 24, "stem_width": 48, **C100},
        note=SPARSE_NOTE,
    ),
    PaperRow(
        SN,
        "Table 2",
        "100, k=36",
        "5.7",
        "sparsenet_cifar",
        {"depth": 100, "growth": 36, "stem_width": 72, **C100},
        note=SPARSE_NOTE,
    ),
    PaperRow(
        SN,
        "Table 2",
        "100, k={16,32,64}",
        "7.2",
        "sparsenet_cifar",
        {"depth": 100, "growth": (16, 32, 64), "stem_width": 32, **C100},
        note=SPARSE_NOTE,
    ),
    PaperRow(
        SN,
        "Table 2",
        "100, k={32,64,128}",
        "27.7",
        "sparsenet_cifar",
        {"depth": 100, "growth": (32, 64, 128), "stem_width": 64, **C100},
        note=SPARSE_NOTE + "; the paper does not give what makes its count 3.5% smaller",
    ),
    PaperRow(
        SN,
        "Table 2",
        "BC-100, k=24",
        "1.5",
        "sparsenet_cifar",
        {"depth": 100, "growth": 24, "bottleneck": True, "stem_width": 48, **C100},
        note=SPARSE_NOTE,
    ),
    PaperRow(
        SN,
        "Table 2",
        "BC-100, k=36",
        "3.3",
        "sparsenet_cifar",
        {"depth": 100, "growth": 36, "bottleneck": True, "stem_width": 72, **C100},
        note=SPARSE_NOTE,
    ),
    PaperRow(
        SN,
        "Table 2",
        "BC-100, k={16,32,64}",
        "4.4",
        "sparsenet_cifar",
        {"depth": 100, "growth": (16, 32, 64), "bottleneck": True, "stem_width": 32, **C100},
        note=SPARSE_NOTE,
    ),
    PaperRow(
        SN,
        "Table 2",
        "BC-100, k={32,64,128}",
        "16.7",
        "sparsenet_cifar",
        {"depth": 100, "growth": (32, 64, 128), "bottleneck": True, "stem_width": 64, **C100},
        note=SPARSE_NOTE + "; the paper does not give what makes its count 3.7% smaller",
    ),
    PaperRow(
        DG,
        "Table 2",
        "ResNeXt50 32x4d (= G-ResNeXt50 at 32 groups)",
        "25",
        "g_resnext50",
        {"width_per_group": 4},
        deployed_groups=32,
    ),
    PaperRow(
        DG,
        "Table 2",
        "ResNeXt101 32x4d (= G-ResNeXt101 at 32 groups)",
        "44",
        "g_resnext101",
        {"width_per_group": 4},
        deployed_groups=32,
    ),
    PaperRow(DG, "Table 2", "G-ResNeXt50 b=32", "25", None, note="depends on the groups learned in training"),
]
