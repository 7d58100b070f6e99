"""Time one SGD step of Multi-ResNet under each parallel layout (Abdi & Nahavandi §V-D, Table V): one process,
data parallel (DDP), branch parallel (each rank k/N of every block's functions on the same batch), hybrid
(data × branch), and the deeper ResNet of the same layer count under DDP, which the paper compares against.

Every layout processes the same global batch per step. Each runs in its own processes (gloo on CPU, NCCL on GPUs
when there is one per rank) and reports the median step time and what it communicates per step: branch
parallelism all-reduces each block's output forward and its input gradient backward (counted as it happens,
with the time spent in the collectives); DDP all-reduces every gradient once (counted from the parameters).

With fewer GPUs than ranks, :func:`simulate_branch_rank` measures one branch rank's compute alone (its k/N
functions and the shared layers, the collectives replaced by copies) so that a multi-GPU step can be estimated
as compute + bytes / link bandwidth.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from prunex.models import create_model
from prunex.nn.branch_parallel import BranchGroup, Traffic, shard_branches


@dataclass(frozen=True)
class Layout:
    name: str
    data: int  # ranks along the data dimension
    branch: int  # ranks per branch group
    depth: int
    k: int

    @property
    def processes(self) -> int:
        return self.data * self.branch


@dataclass(frozen=True)
class StepSettings:
    batch: int  # the global batch of one step
    steps: int = 5
    warmup: int = 2
    image_size: int = 32
    num_classes: int = 10
    device: str = "cpu"


def paper_layouts(depth: int, k: int, ranks: int = 2) -> list[Layout]:
    """Table V's comparison for one Multi-ResNet: one process, DDP, branch parallel, hybrid, and the ResNet with
    the same number of layers, (depth − 2)·k + 2, under DDP."""
    deeper = (depth - 2) * k + 2
    out = [
        Layout(f"multi-resnet {depth}/{k}, one process", 1, 1, depth, k),
        Layout(f"multi-resnet {depth}/{k}, data parallel ×{ranks}", ranks, 1, depth, k),
        Layout(f"multi-resnet {depth}/{k}, branch parallel ×{ranks}", 1, ranks, depth, k),
        Layout(f"multi-resnet {depth}/{k}, data ×{ranks} × branch ×{ranks}", ranks, ranks, depth, k),
        Layout(f"resnet {deeper}/1, data parallel ×{ranks}", ranks, 1, deeper, 1),
    ]
    return [layout for layout in out if layout.k % layout.branch == 0]


def _model(layout: Layout, settings: StepSettings) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("multiresnet_cifar", depth=layout.depth, k=layout.k, num_classes=settings.num_classes)


def _step_times(net, model, x, y, settings: StepSettings, device: torch.device) -> list[float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for i in range(settings.warmup + settings.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= settings.warmup:
            times.append(time.perf_counter() - tic)
    return times


def _batch(settings: StepSettings, per_rank: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(per_rank, 3, settings.image_size, settings.image_size, generator=g).to(device)
    return x, torch.randint(0, settings.num_classes, (per_rank,), generator=g).to(device)


def _worker(rank: int, layout: Layout, settings: StepSettings, init: str, out: str, threads: int) -> None:
    torch.set_num_threads(threads)
    cuda = settings.device == "cuda"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if cuda else "gloo", init_method=f"file://{init}", rank=rank, world_size=layout.processes
    )
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device.type, (layout.data, layout.branch), mesh_dim_names=("data", "branch"))
    model = _model(layout, settings)
    group = BranchGroup(mesh.get_group("branch"), mesh.get_local_rank("branch"), layout.branch)
    if layout.branch > 1:
        shard_branches(model, group)
    model.to(device)
    net = model
    if layout.data > 1:
        net = DistributedDataParallel(model, process_group=mesh.get_group("data"), device_ids=[rank] if cuda else None)
    x, y = _batch(settings, settings.batch // layout.data, device)
    times = _step_times(net, model, x, y, settings, device)
    runs = settings.warmup + settings.steps
    if rank == 0:
        grads = sum(p.numel() * p.element_size() for p in model.parameters()) if layout.data > 1 else 0
        torch.save(
            {
                "times": times,
                "branch_bytes": group.traffic.bytes // runs,
                "branch_seconds": group.traffic.seconds / runs,
                "ddp_bytes": grads,
            },
            out,
        )
    dist.barrier()
    dist.destroy_process_group()


def time_layout(layout: Layout, settings: StepSettings, work: Path, cores: int) -> dict[str, Any]:
    """Median seconds per step of ``layout`` and its communication per step, on this rank 0."""
    stem = f"{layout.depth}-{layout.k}-{layout.data}x{layout.branch}"
    out, init = work / f"{stem}.pt", work / f"{stem}.init"
    if layout.processes == 1:
        device = torch.device(settings.device)
        model = _model(layout, settings).to(device)
        x, y = _batch(settings, settings.batch, device)
        result = {"times": _step_times(model, model, x, y, settings, device), "branch_bytes": 0, "branch_seconds": 0.0}
        result["ddp_bytes"] = 0
    else:
        threads = max(1, cores // layout.processes)
        mp.spawn(_worker, args=(layout, settings, str(init), str(out), threads), nprocs=layout.processes, join=True)
        result = torch.load(out, weights_only=True)
    median = statistics.median(result["times"])
    return {
        **asdict(layout),
        "processes": layout.processes,
        "median_step_s": median,
        "images_per_s": settings.batch / median,
        "branch_allreduce_bytes": result["branch_bytes"],
        "branch_allreduce_s": result["branch_seconds"],
        "ddp_allreduce_bytes": result["ddp_bytes"],
    }


class _LocalBranchGroup(BranchGroup):
    """A branch group whose collectives are copies: one rank's compute, with the bytes it would send counted."""

    def all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        out = t.contiguous().clone()
        self.traffic.add(out, 0.0)
        return out


def simulate_branch_rank(layout: Layout, settings: StepSettings, link_gb_per_s: float) -> dict[str, Any]:
    """One branch rank's step measured alone on this device, and the multi-device step it predicts: compute +
    communication, the latter the counted bytes at ``link_gb_per_s`` (a ring all-reduce over N ranks moves
    2(N − 1)/N of each tensor per rank)."""
    device = torch.device(settings.device)
    traffic = Traffic()
    model = shard_branches(_model(layout, settings), _LocalBranchGroup(None, 0, layout.branch, traffic)).to(device)
    x, y = _batch(settings, settings.batch // layout.data, device)
    times = _step_times(model, model, x, y, settings, device)
    compute = statistics.median(times)
    per_step = traffic.bytes / (settings.warmup + settings.steps)
    moved = per_step * 2 * (layout.branch - 1) / layout.branch
    comm = moved / (link_gb_per_s * 1e9)
    return {
        **asdict(layout),
        "compute_s": compute,
        "allreduce_bytes": per_step,
        "link_gb_per_s": link_gb_per_s,
        "communication_s": comm,
        "estimated_step_s": compute + comm,
    }
