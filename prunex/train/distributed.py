"""torchrun / DistributedDataParallel: gloo on CPU, NCCL on GPU; rank 0 writes logs and checkpoints.

With branch parallelism the world is a 2-D device mesh, data × branch: the ranks of one branch group see the same
batches and split every multi-residual block's functions (:mod:`prunex.nn.branch_parallel`); DDP runs over the
data dimension."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from prunex.nn.branch_parallel import BranchGroup
from prunex.runtime.devices import pick_device
from prunex.train.config import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    branch: BranchGroup | None = None  # this rank's branch group (branch parallelism), else None
    data_rank: int = -1  # this rank's place along the data dimension (-1: the rank itself)
    data_size: int = 0  # ranks along the data dimension (0: the world size)
    data_group: dist.ProcessGroup | None = None  # DDP's group (None: the world)

    def __post_init__(self) -> None:
        if self.data_rank < 0:
            object.__setattr__(self, "data_rank", self.rank)
        if self.data_size == 0:
            object.__setattr__(self, "data_size", self.world_size)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def data_parallel(self) -> bool:
        return self.data_size > 1


def check_branch_parallel(branch_parallel: int, world: int) -> None:
    """Refuse a layout the world cannot hold, before any work."""
    if branch_parallel < 1:
        raise ConfigError(f"--branch-parallel takes a group size of at least 1, got {branch_parallel}")
    if branch_parallel > world:
        raise ConfigError(
            f"--branch-parallel {branch_parallel} needs at least {branch_parallel} processes, this run has {world} "
            f"(launch with torchrun --nproc-per-node {branch_parallel} or more)"
        )
    if world % branch_parallel:
        raise ConfigError(f"--branch-parallel {branch_parallel} does not divide the {world} processes into groups")


def setup(preference: str, branch_parallel: int = 1) -> DistContext:
    """Join the process group torchrun describes (WORLD_SIZE > 1), else a single-process context; with
    ``branch_parallel`` > 1, a data × branch device mesh."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    check_branch_parallel(branch_parallel, world)
    if world <= 1:
        return DistContext(0, 1, 0, pick_device(preference))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if branch_parallel == 1:
        return DistContext(rank, world, local_rank, device)
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device.type, (world // branch_parallel, branch_parallel), mesh_dim_names=("data", "branch"))
    branch = BranchGroup(mesh.get_group("branch"), mesh.get_local_rank("branch"), branch_parallel)
    return DistContext(
        rank,
        world,
        local_rank,
        device,
        branch,
        mesh.get_local_rank("data"),
        world // branch_parallel,
        mesh.get_group("data"),
    )


def teardown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(ctx: DistContext, values: list[float]) -> list[float]:
    if not ctx.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-element list when not distributed)."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()
