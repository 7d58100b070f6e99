"""``report.json`` of a compressed model: its typed form (:class:`CompressionReport`) and reading what older runs
wrote.

Every reader goes through :meth:`CompressionReport.from_json`; nothing else reads the file by key.

Migration: reports written before prunex 0.2 name multiply-accumulate counts ``flops`` (per pass) and
``flops_before`` / ``flops_after`` (totals), and may list the remaining gathers as bare names; they are read as
``macs`` / ``macs_before`` / ``macs_after`` and ``KeptGather(name, forced_by=None)``. Reports written before the
output scale was recorded read it as None. The file itself is left as it is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prunex.artifacts.records import from_fields, read_record

T = TypeVar("T")
RENAMED = {"flops": "macs", "flops_before": "macs_before", "flops_after": "macs_after"}


@dataclass
class PassRecord:
    """One pass as the runner verified it: errors against the network before it (relative to that network's output
    scale), top-1 agreement, size after it, and the layers it added, removed and changed."""

    name: str
    max_abs_err: float
    max_rel_err: float
    top1_agreement: float
    params: int
    macs: int
    seconds: float = 0.0
    output_scale: float = 0.0  # max |output| of the network before the pass: what max_rel_err is relative to
    modified: bool = True  # the pass's PassResult.modified (the frozen graph: True)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Totals:
    """The whole compilation: size before and after, and the compressed network against the frozen one."""

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    end_to_end_max_abs_err: float
    end_to_end_top1_agreement: float
    end_to_end_max_rel_err: float | None = None  # None: written before relative errors were
    end_to_end_output_scale: float | None = None


@dataclass
class LearnedGroups:
    """One DGConv layer: its gates, the groups it learned and the groups the deployed network runs it with."""

    layer: str
    channels: list[int]
    gates: list[int]
    learned_groups: int
    groups_before: int = 1
    contiguous: bool = True  # its learned channel orders are the identity
    groups_after: int | None = None


@dataclass(frozen=True)
class LoweringDecision:
    """A realisation chosen by measurement (``--tune``): what was learned, what was chosen, the times in ms."""

    kind: str  # conv, branches or network (prunex.passes.tuning.DecisionKind)
    layer: str
    learned: str
    chosen: str
    times_ms: dict[str, float]
    from_cache: bool


@dataclass(frozen=True)
class KeptGather:
    """A channel gather the layout pass could not remove, and the node whose order it serves."""

    gather: str
    forced_by: str | None  # None: read from a report written before the reason was recorded

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True)
class TargetRecord:
    """The tuning target (``--target-*``) a report's lowering decisions were measured on."""

    device: str
    dtype: str
    batch: int
    channels_last: bool
    backend: str

    def describe(self) -> str:
        return f"{self.device} {self.backend} {self.dtype} batch {self.batch}"


@dataclass(frozen=True)
class CompressSettings:
    """The options the network was compressed with."""

    fold_bn: bool = True
    merge_branches: bool = True
    stack_blocks: bool = True
    tolerance: float = 1e-4
    tune: str = "off"
    target: TargetRecord | None = None  # only when tuned


@dataclass(frozen=True)
class ReferenceRecord:
    """What the network ``prunex bench`` times beside the compressed one costs for one image."""

    name: str
    params: int
    macs: int


@dataclass(kw_only=True)
class CompressionReport:
    """What ``prunex compress`` did and verified; ``report.json`` is :meth:`to_json` of it."""

    model: dict[str, Any]  # the model spec the network was built from
    input_shape: list[int | None]
    calibration_samples: int
    options: CompressSettings
    network: str  # which whole network was kept: the passes' (tuned) or, with --tune, a faster one
    lowering: list[LoweringDecision] = field(default_factory=list)
    passes: list[PassRecord]
    groups: list[LearnedGroups] = field(default_factory=list)
    blocks_removed: dict[str, list[int]] = field(default_factory=dict)
    gathers_remaining: list[KeptGather] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    totals: Totals
    reference: ReferenceRecord | None = None
    checkpoint: str | None = None
    calibration: str | None = None  # what the calibration images were, in words

    def to_json(self) -> dict[str, Any]:
        """The report as ``report.json`` holds it (the three run fields only once a run has set them)."""
        out = asdict(self)
        for key in ("reference", "checkpoint", "calibration"):
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompressionReport:
        """A report as any prunex version wrote it, in the current form (see the module docstring)."""
        options = dict(data.get("options") or {})
        target = options.get("target")
        return _field(
            cls,
            data,
            options=_field(CompressSettings, options, target=_field(TargetRecord, target) if target else None),
            lowering=[_field(LoweringDecision, d) for d in data.get("lowering", [])],
            passes=[_field(PassRecord, p) for p in data["passes"]],
            groups=[_field(LearnedGroups, g) for g in data.get("groups", [])],
            gathers_remaining=[_kept(g) for g in data.get("gathers_remaining", [])],
            totals=_field(Totals, data["totals"]),
            reference=_field(ReferenceRecord, data["reference"]) if data.get("reference") else None,
        )

    def write(self, path: Path) -> Path:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return Path(path)

    @property
    def input_chw(self) -> tuple[int, ...]:
        """The input's (C, H, W)."""
        return tuple(int(d) for d in self.input_shape[1:])  # type: ignore[arg-type]


def _field(kind: type[T], data: dict[str, Any], **typed: Any) -> T:
    """``kind`` from ``data`` under the current key names (the 0.2 migration)."""
    return from_fields(kind, data, RENAMED, **typed)


def _kept(entry: dict[str, Any] | str) -> KeptGather:
    return KeptGather(entry, None) if isinstance(entry, str) else _field(KeptGather, entry)


def read_report(path: Path) -> CompressionReport | None:
    """The report at ``path`` in the current form, or None if there is none or it cannot be read."""
    return read_record(path, CompressionReport.from_json)
