"""The cost of a training step of each family's gated network next to its plain twin.

A step is exactly what ``prunex train`` runs (:class:`~prunex.train.step.TrainStep`: fused gates, the resource
constraint while DGConv gates learn, SGD, mask projection). For each case the gated network and its twin are
measured in the same run, so their ratio is what to read (absolute times drift with the machine):

- time per step: CUDA events around synchronised steps (bf16 autocast, channels-last) or wall clock on the CPU
  (fp32), median of the timed steps; with ``compile``, the same for the step under ``torch.compile``;
- ops per step at the ATen dispatcher (:mod:`prunex.runtime.dispatch_count`): all ops, kernel ops and host syncs,
  and on CUDA the kernels the profiler saw;
- peak memory of a step (CUDA: ``max_memory_allocated``; CPU: the peak of tensor storages the step created);
- the same ops and time in a user's own loop (:func:`user_loop_step`): the model as prunex builds it and a standard
  ``torch.optim.SGD`` step, nothing else from prunex (no resource term, one parameter group).

A case names its twin and how it is built (``benchmarks/train_speed.py`` holds the papers' cases: G-ResNeXt-50 ↔
the same network with dense ``nn.Conv2d`` 3×3 convolutions; MaskConnect ↔ the ResNeXt of the same depth, width
and cardinality; Multi-ResNet and SparseNet, which have no gates to learn, ↔ the network ``prunex compress`` makes
of them, trained as a plain network).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunex.models import create_model
from prunex.nn.dgconv import DGConv2d
from prunex.runtime.dispatch_count import DispatchCounter, DispatchCounts
from prunex.runtime.timing import summarise, time_callable
from prunex.train.step import TrainStep, param_groups, sgd


def dense_twin(model: nn.Module) -> nn.Module:
    """``model`` with every DGConv2d replaced by a fresh dense ``nn.Conv2d`` of the same geometry."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, DGConv2d):
                setattr(module, name, child.conv_like())
    return model


@dataclass(frozen=True)
class TrainingCase:
    """A family's paper configuration and its plain twin, at one batch size and resolution."""

    name: str
    model: str
    kwargs: dict[str, Any]
    twin: str  # what the twin is, in words
    build_twin: Callable[[TrainingCase], nn.Module]
    batch_size: int
    image_size: int
    num_classes: int = 10
    budget_b: float | None = None  # DGConv resource constraint b (o = Σ C_in·C_out / b)
    alpha: float = -0.02

    def build(self) -> nn.Module:
        return create_model(self.model, num_classes=self.num_classes, **self.kwargs)


@dataclass
class LoopMeasurement:
    """One step of a user's own training loop (:func:`user_loop_step`)."""

    step_ms: float
    aten_ops: int
    kernel_ops: int
    host_syncs: int


@dataclass
class StepMeasurement:
    """One network's training step (see the module docstring)."""

    step_ms: float
    step_cov: float
    aten_ops: int
    kernel_ops: int
    host_syncs: int
    host_sync_ops: dict[str, int]
    peak_memory_bytes: int
    cuda_kernels: int | None = None
    compiled_step_ms: float | None = None
    compile_seconds: float | None = None
    params: int = 0
    user_loop: LoopMeasurement | None = None


@dataclass
class CaseResult:
    case: str
    model: str
    twin: str
    batch_size: int
    image_size: int
    gated: StepMeasurement
    plain: StepMeasurement
    ratios: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepSettings:
    device: torch.device
    warmup: int = 3
    iters: int = 10
    compile: bool = False
    amp: bool = True  # bf16 autocast on CUDA (no effect on the CPU)
    channels_last: bool | None = None  # None: on CUDA


def _cuda_kernels(step: Callable[[], object]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def user_loop_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, amp: bool = False) -> Callable[[], object]:
    """A step of the plainest training loop: cross-entropy (under bf16 autocast with ``amp``), ``zero_grad``,
    backward, ``SGD.step`` (foreach) over ``model.parameters()`` — what a user writes with nothing from prunex but
    the model."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, foreach=True)

    def step() -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _measure_user_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: StepSettings) -> LoopMeasurement:
    cuda = settings.device.type == "cuda"
    step = user_loop_step(model, x, y, amp=cuda and settings.amp)
    samples = time_callable(step, cuda=cuda, warmup=settings.warmup, iters=settings.iters)
    with DispatchCounter() as counter:
        step()
    counts = counter.counts
    return LoopMeasurement(summarise(samples, len(x)).median_ms, counts.total, counts.kernel_ops, counts.syncs)


def measure_step(model: nn.Module, case: TrainingCase, settings: StepSettings) -> StepMeasurement:
    """Time, count and weigh one training step of ``model`` as ``prunex train`` runs it (gates learning)."""
    dev = settings.device
    cuda = dev.type == "cuda"
    channels_last = cuda if settings.channels_last is None else settings.channels_last
    model = model.to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(case.batch_size, 3, case.image_size, case.image_size, generator=gen)
    x = x.to(dev).contiguous(memory_format=fmt)
    y = torch.randint(0, case.num_classes, (case.batch_size,), generator=gen).to(dev)

    def run(compile: bool) -> Callable[[], object]:
        groups = param_groups(model, lr=0.01, gate_lr=0.01, weight_decay=1e-4, momentum=0.9, nesterov=False)
        optimizer = sgd(groups)
        budget = None
        if case.budget_b is not None and any(isinstance(m, DGConv2d) for m in model.modules()):
            budget = sum(m.in_channels * m.out_channels for m in model.modules() if isinstance(m, DGConv2d))
            budget /= case.budget_b
        step = TrainStep(model, amp=settings.amp, budget=budget, alpha=case.alpha, compile=compile)
        return lambda: step(x, y, optimizer, learn_gates=True)

    step_fn = run(False)
    samples = time_callable(step_fn, cuda=cuda, warmup=settings.warmup, iters=settings.iters)
    stats = summarise(samples, case.batch_size)
    counts, peak, kernels = _step_counts(step_fn, dev)
    result = StepMeasurement(
        step_ms=stats.median_ms,
        step_cov=stats.cov,
        aten_ops=counts.total,
        kernel_ops=counts.kernel_ops,
        host_syncs=counts.syncs,
        host_sync_ops=dict(counts.host_syncs),
        peak_memory_bytes=peak,
        cuda_kernels=kernels,
        params=sum(p.numel() for p in model.parameters()),
    )
    result.user_loop = _measure_user_loop(model, x, y, settings)
    if settings.compile:
        compiled_fn = run(True)
        tic = time.perf_counter()
        compiled_fn()
        if cuda:
            torch.cuda.synchronize()
        result.compile_seconds = time.perf_counter() - tic
        compiled_samples = time_callable(compiled_fn, cuda=cuda, warmup=settings.warmup, iters=settings.iters)
        result.compiled_step_ms = summarise(compiled_samples, case.batch_size).median_ms
    return result


def _step_counts(step_fn: Callable[[], object], dev: torch.device) -> tuple[DispatchCounts, int, int | None]:
    """ATen ops of one step, its peak memory (CUDA: allocated; CPU: the tensors it created) and CUDA kernels."""
    with DispatchCounter() as counter:
        step_fn()
    if dev.type != "cuda":
        return counter.counts, counter.counts.peak_bytes, None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    step_fn()
    torch.cuda.synchronize()
    return counter.counts, torch.cuda.max_memory_allocated(dev) - base, _cuda_kernels(step_fn)


def compare_case(case: TrainingCase, settings: StepSettings) -> CaseResult:
    """Measure the gated network and its twin of ``case`` in this process, one after the other."""
    torch.manual_seed(0)
    gated = measure_step(case.build(), case, settings)
    torch.manual_seed(0)
    plain = measure_step(case.build_twin(case), case, settings)
    ratios = {
        "step_time": gated.step_ms / plain.step_ms,
        "aten_ops": gated.aten_ops / plain.aten_ops,
        "kernel_ops": gated.kernel_ops / plain.kernel_ops,
        "peak_memory": gated.peak_memory_bytes / max(plain.peak_memory_bytes, 1),
    }
    if gated.user_loop and plain.user_loop:
        ratios["user_loop_aten_ops"] = gated.user_loop.aten_ops / plain.user_loop.aten_ops
        ratios["user_loop_step_time"] = gated.user_loop.step_ms / plain.user_loop.step_ms
    if gated.cuda_kernels and plain.cuda_kernels:
        ratios["cuda_kernels"] = gated.cuda_kernels / plain.cuda_kernels
    if gated.compiled_step_ms and plain.compiled_step_ms:
        ratios["compiled_step_time"] = gated.compiled_step_ms / plain.compiled_step_ms
    return CaseResult(case.name, case.model, case.twin, case.batch_size, case.image_size, gated, plain, ratios)


def loader_throughput(dataset, batch_size: int, device: torch.device, *, batches: int = 50) -> float:
    """Images per second of the training input pipeline alone (no model): the device loader for in-memory sets,
    a DataLoader with workers and pinned memory otherwise."""
    from torch.utils.data import DataLoader, RandomSampler

    from prunex.data import default_workers
    from prunex.data.tensor_images import DeviceBatches, TensorImages

    if isinstance(dataset, TensorImages):
        sampler = RandomSampler(dataset, num_samples=batch_size * batches)
        loader = DeviceBatches(dataset, batch_size, device, sampler, drop_last=True)
    else:
        workers = default_workers()
        sampler = RandomSampler(dataset, num_samples=batch_size * batches)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            drop_last=True,
        )
    count, start = 0, None
    for i, (x, _) in enumerate(loader):
        x = x.to(device, non_blocking=True)
        if i == 0:  # the first batch pays for worker start-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            continue
        count += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start) if start and count else 0.0
