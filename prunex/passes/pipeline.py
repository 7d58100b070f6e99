"""``compress``: freeze → trace → passes (each verified) → a plain network of standard layers + a report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import fx, nn

from prunex.artifacts.compression_report import CompressionReport, CompressSettings, LearnedGroups, TargetRecord, Totals
from prunex.artifacts.errors import NotEquivalentError
from prunex.artifacts.model_spec import ModelSpec
from prunex.artifacts.tuning_cache import TuningCache
from prunex.nn.dgconv import DGConv2d
from prunex.passes.channel_ops import CanonicalChannelOps
from prunex.passes.choose_realisations import ChooseConvRealisations
from prunex.passes.conv_realisations import ConvRealisation
from prunex.passes.cse import EliminateCommonSubexpressions
from prunex.passes.dead_code import EliminateDeadBlocks
from prunex.passes.fold_batchnorm import FoldBatchNorm
from prunex.passes.fold_constants import FoldGateConstants
from prunex.passes.graph import count_macs, count_params, freeze, trace
from prunex.passes.lower_dgconv import LowerDGConv
from prunex.passes.merge_branches import MergeParallelBranches
from prunex.passes.network_choice import DENSE, SEPARATE, TUNED, UNTUNED, NetworkRealisation, choose_network, densified
from prunex.passes.permutations import is_identity
from prunex.passes.propagate_permutations import PropagatePermutations, gather_report
from prunex.passes.protocol import GraphPass
from prunex.passes.remove_noops import RemoveNoops
from prunex.passes.runner import PassRecord, PassRunner
from prunex.passes.stack_blocks import StackBlocks
from prunex.passes.tuning import DecisionKind, Timer, Tuner, TuneTarget
from prunex.runtime.choices import TuneMode, parse_choice
from prunex.runtime.comparison import comparable, compare, exact_float32, scale_of, scale_warning


class NonFiniteOutputError(NotEquivalentError):
    """The model's own output is not finite, so no compression of it can be verified."""


@dataclass(frozen=True)
class CompressOptions:
    fold_bn: bool = True
    merge_branches: bool = True
    stack_blocks: bool = True  # blocks on slices of one tensor run stacked (needs merge_branches)
    tolerance: float = 1e-4
    tune: TuneMode = TuneMode.OFF  # off: keep the learned structure; cache / full: choose realisations by measurement
    target: TuneTarget = TuneTarget()
    tuning_cache: str | None = None  # default ~/.cache/prunex/tuning.json (PRUNEX_CACHE_DIR)
    timer: Timer | None = None  # injected by tests; None measures on the target

    def __post_init__(self) -> None:
        object.__setattr__(self, "tune", parse_choice(TuneMode, self.tune, "tune mode"))

    def tuner(self) -> Tuner | None:
        if self.tune is TuneMode.OFF:
            return None
        return Tuner(self.target, mode=self.tune, cache=TuningCache(self.tuning_cache), timer=self.timer)


def default_passes(
    options: CompressOptions, tuner: Tuner | None = None, example_shape: tuple[int, ...] | None = None
) -> list[GraphPass]:
    """The passes ``compress`` runs, in order (``example_shape`` is the input's (C, H, W))."""
    passes: list[GraphPass] = [FoldGateConstants(), EliminateDeadBlocks(), EliminateCommonSubexpressions()]
    passes.append(LowerDGConv())  # first: every pass after it runs (and is verified on) grouped convs, not dense
    if options.fold_bn:
        passes.append(FoldBatchNorm())
    stack = options.merge_branches and options.stack_blocks and example_shape is not None
    if options.merge_branches:
        passes.append(MergeParallelBranches(tuner, example_shape, leave_sums=stack))
    if example_shape is not None:
        passes.append(CanonicalChannelOps(example_shape))
    passes += [PropagatePermutations(example_shape), RemoveNoops(example_shape)]
    if stack:
        passes.append(StackBlocks(example_shape, tuner))
    if tuner is not None:
        passes.append(ChooseConvRealisations(tuner, example_shape))
    return passes


def _dgconv_groups(model: nn.Module) -> list[LearnedGroups]:
    return [
        LearnedGroups(
            layer=name,
            channels=[m.in_channels, m.out_channels],
            gates=m.gate_list(),
            learned_groups=m.num_groups,
            contiguous=bool(is_identity(m.in_order()) and is_identity(m.out_order())),
        )
        for name, m in model.named_modules()
        if isinstance(m, DGConv2d)
    ]


KEPT = ("remove_noops", "stack_blocks")  # the untuned networks the tuned one is timed against


def _whole_network(
    tuner: Tuner, runner: PassRunner, tuned: fx.GraphModule, example_shape: tuple[int, ...]
) -> tuple[NetworkRealisation, fx.GraphModule]:
    """The fastest of the tuned network and the untuned, dense and separate-block ones, timed end to end."""
    untuned = runner.kept.get("stack_blocks", runner.kept.get("remove_noops", tuned))
    candidates = {TUNED: tuned, UNTUNED: untuned, DENSE: densified(untuned)}
    if "remove_noops" in runner.kept:
        candidates[SEPARATE] = runner.kept["remove_noops"]
    chosen = choose_network(tuner, candidates, example_shape)
    return chosen, candidates[chosen]


def _blocks_removed(records: list[PassRecord], model: nn.Module) -> dict[str, list[int]]:
    """Per ModuleList of blocks, the blocks dead-block elimination removed (merged blocks are not removed)."""
    dropped = {t for r in records if r.name == "eliminate_dead_blocks" for t in r.removed}
    removed: dict[str, list[int]] = {}
    for name, m in model.named_modules():
        if not isinstance(m, nn.ModuleList):
            continue
        gone = []
        for i, block in enumerate(m):
            leaves = {f"{name}.{i}.{n}" for n, sub in block.named_modules() if n and not list(sub.children())}
            if leaves and leaves <= dropped:
                gone.append(i)
        if gone:
            removed[name] = gone
    return removed


def compress(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    calibration: torch.Tensor | None = None,
    options: CompressOptions = CompressOptions(),
    on_pass: Callable[[PassRecord], None] | None = None,
) -> tuple[fx.GraphModule, CompressionReport]:
    """Compile a gated model into standard layers computing the same function.

    ``example_inputs`` fixes the input shape (a tensor, or a 1-tuple of one); ``calibration`` is the batch every
    pass is verified on (default: the example plus random inputs of its shape). Returns the compressed
    ``torch.fx.GraphModule`` and its :class:`CompressionReport`. Raises :class:`PassVerificationError` if a pass breaks
    equivalence.
    """
    example = example_inputs[0] if isinstance(example_inputs, tuple) else example_inputs
    if calibration is None:
        gen = torch.Generator().manual_seed(0)
        calibration = torch.cat([example, torch.randn(max(8, len(example)), *example.shape[1:], generator=gen)])
    frozen = freeze(model).cpu().float()
    groups = _dgconv_groups(frozen)
    gm = trace(frozen)
    tuner = options.tuner()
    keep = KEPT if tuner is not None else ()  # copies of the graph only where the whole network is chosen
    runner = PassRunner(calibration, tolerance=options.tolerance, on_pass=on_pass, keep=keep)
    with exact_float32(), torch.no_grad():
        reference = frozen(runner.x)  # now: a pass may rewrite a submodule the traced graph shares with ``frozen``
    scale = scale_of(reference)
    if not comparable(scale):
        raise NonFiniteOutputError(f"cannot verify a compression of this model: {scale_warning(scale)}")
    compressed = runner.run(gm, default_passes(options, tuner, tuple(example.shape[1:])), reference)
    warnings = [w for w in [scale_warning(scale, "the model's output on the calibration batch")] if w]
    network = TUNED
    if tuner is not None:
        network, compressed = _whole_network(tuner, runner, compressed, tuple(example.shape[1:]))
        tuner.cache.save()
        warnings += tuner.cache.warnings
    if network is not TUNED:  # another network than the passes' last was chosen: run it
        with exact_float32(), torch.no_grad():
            runner.output = compressed(runner.x)
    report = _report(model, options, tuner, runner, (frozen, compressed, network), compare(reference, runner.output))
    report.groups, report.warnings = _deployed_groups(groups, tuner, network), warnings
    return compressed, report


def _deployed_groups(
    groups: list[LearnedGroups], tuner: Tuner | None, network: NetworkRealisation
) -> list[LearnedGroups]:
    """Each DGConv's groups in the chosen network: its tuned realisation's, else what it learned (1 if dense)."""
    chosen = {}
    if network is TUNED and tuner is not None:
        chosen = {d.layer: d.choice for d in tuner.decisions if d.kind is DecisionKind.CONV}
    for g in groups:
        learned = ConvRealisation(1 if network is DENSE else g.learned_groups)
        g.groups_after = chosen.get(g.layer, learned).groups_after
    return groups


def _report(
    model: nn.Module,
    options: CompressOptions,
    tuner: Tuner | None,
    runner: PassRunner,
    networks: tuple[nn.Module, fx.GraphModule, NetworkRealisation],
    end_to_end: dict[str, float],
) -> CompressionReport:
    """What was done and verified."""
    frozen, compressed, network = networks
    example_shape = tuple(runner.x.shape[1:])
    first, last = runner.records[0], runner.records[-1]
    target = options.target.as_dict() if tuner is not None else None
    return CompressionReport(
        model=getattr(model, "prunex_spec", ModelSpec(type(model).__name__)).to_dict(),
        input_shape=[None, *example_shape],
        calibration_samples=len(runner.x),
        options=CompressSettings(
            options.fold_bn,
            options.merge_branches,
            options.stack_blocks,
            options.tolerance,
            options.tune.value,
            TargetRecord(**target) if target else None,
        ),
        network=network.label,
        lowering=[d.record() for d in tuner.decisions] if tuner is not None else [],
        passes=list(runner.records),
        blocks_removed=_blocks_removed(runner.records, frozen),
        gathers_remaining=gather_report(compressed, example_shape),
        totals=Totals(
            params_before=first.params,
            params_after=last.params if network is TUNED else count_params(compressed),
            macs_before=first.macs,
            macs_after=last.macs if network is TUNED else count_macs(compressed, runner.x),
            **{f"end_to_end_{k}": v for k, v in end_to_end.items()},
        ),
    )
