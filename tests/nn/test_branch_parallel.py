"""Branch parallelism: Multi-ResNet's residual functions split over ranks (gloo on CPU, 2 and 4 processes, branch ×
data meshes) trains exactly like one process, and its state round-trips through the ordinary layout."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from prunex.models import create_model
from prunex.nn.block_batching import sequentials, sum_blocks
from prunex.nn.branch_parallel import (
    BranchGroup,
    BranchLayoutError,
    check_branch_layout,
    full_optimizer_state,
    full_state_dict,
    shard_branches,
    shard_optimizer_state,
    shard_state_dict,
)
from prunex.nn.multi_residual import MultiResidualBlock

STEPS, BATCH = 3, 8
KWARGS = dict(depth=8, k=4, num_classes=5)


def _model():
    torch.manual_seed(0)
    return create_model("multiresnet_cifar", **KWARGS)


def _data(dp: int):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS, dp * BATCH, 3, 16, 16, generator=g)
    return x, torch.randint(0, 5, (STEPS, dp * BATCH), generator=g)


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)  # small: rounding stays small


def _worker(rank: int, world: int, bp: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    from torch.distributed.device_mesh import init_device_mesh

    dp = world // bp
    mesh = init_device_mesh("cpu", (dp, bp), mesh_dim_names=("data", "branch"))
    group = BranchGroup(mesh.get_group("branch"), mesh.get_local_rank("branch"), bp)
    model = shard_branches(_model(), group)
    net = DistributedDataParallel(model, process_group=mesh.get_group("data")) if dp > 1 else model
    optimizer = _sgd(model)
    xs, ys = _data(dp)
    shard = slice(mesh.get_local_rank("data") * BATCH, (mesh.get_local_rank("data") + 1) * BATCH)
    losses = []
    for x, y in zip(xs, ys, strict=True):
        loss = torch.nn.functional.cross_entropy(net(x[shard]), y[shard])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    state, optim = full_state_dict(model, group), full_optimizer_state(model, optimizer, group)

    # the ordinary layout back into a fresh sharded model and optimizer gives the same state again
    again = shard_branches(_model(), group)
    again.load_state_dict(shard_state_dict(again, state))
    again_optimizer = _sgd(again)
    again_optimizer.load_state_dict(shard_optimizer_state(again, again_optimizer, optim, group))
    round_trip = full_state_dict(again, group), full_optimizer_state(again, again_optimizer, group)
    if rank == 0:
        torch.save({"losses": losses, "state": state, "optim": optim, "round_trip": round_trip}, out)
    dist.barrier()
    dist.destroy_process_group()


def _sums_in_rank_order(bp: int):
    """A block forward that adds the k functions as ``bp`` ranks do: Σ_r (Σ_{i of rank r} f_i(x)). Addition in fp32
    is not associative and three SGD steps amplify a last-bit difference ~100-fold; with this order the one-process
    run is the same arithmetic as the distributed one."""

    def forward(self, x):
        if self.increases_dim:
            x = self.preact(x)
            y = self.shortcut(x)
        else:
            y = x
        bodies, per = [f.body for f in self.functions], len(self.functions) // bp
        parts = [sum_blocks(sequentials(bodies[r * per : (r + 1) * per], x), per) for r in range(bp)]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return y + total

    return forward


def _reference(dp: int, bp: int | None = None, monkeypatch=None):
    """One process with the same data: DDP's semantics (the mean over data shards) computed shard by shard; with
    ``bp``, each block's functions added in the branch ranks' order."""
    if bp is not None:
        monkeypatch.setattr(MultiResidualBlock, "forward", _sums_in_rank_order(bp))
    model = _model()
    optimizer = _sgd(model)
    xs, ys = _data(dp)
    losses = []
    for x, y in zip(xs, ys, strict=True):
        optimizer.zero_grad()
        for s in range(dp):
            part = slice(s * BATCH, (s + 1) * BATCH)
            loss = torch.nn.functional.cross_entropy(model(x[part]), y[part])
            (loss / dp).backward()
            if s == 0:
                losses.append(loss.item())
        optimizer.step()
    return losses, model, optimizer


@pytest.mark.parametrize(
    ("world", "bp"),
    [
        pytest.param(2, 2, id="branch2"),
        pytest.param(4, 4, id="branch4", marks=pytest.mark.slow),  # four processes on two cores: ~30 s each
        pytest.param(4, 2, id="data2xbranch2", marks=pytest.mark.slow),
    ],
)
def test_branch_parallel_training_equals_one_process(world, bp, tmp_path, monkeypatch):
    out = tmp_path / "result.pt"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(world, bp, str(tmp_path / "init"), str(out)), nprocs=world, join=True)
    got = torch.load(out, weights_only=True)
    plain_losses, plain, _ = _reference(world // bp)
    torch.testing.assert_close(got["losses"], plain_losses, rtol=1e-4, atol=0)  # the same network, trained alike
    losses, model, optimizer = _reference(world // bp, bp, monkeypatch)  # … and the same arithmetic, to rounding
    torch.testing.assert_close(got["losses"], losses, rtol=1e-5, atol=1e-6)
    want = model.state_dict()
    assert list(got["state"]) == list(want)  # the ordinary, unsharded layout, in its order
    params = dict(model.named_parameters())
    for name, p in params.items():  # parameters after three steps: every gradient and momentum step agreed
        torch.testing.assert_close(got["state"][name], p.detach(), rtol=1e-5, atol=1e-6, msg=name)
    ref_optim = optimizer.state_dict()
    assert [g["params"] for g in got["optim"]["param_groups"]] == [g["params"] for g in ref_optim["param_groups"]]
    for i, s in ref_optim["state"].items():
        torch.testing.assert_close(
            got["optim"]["state"][i]["momentum_buffer"], s["momentum_buffer"], rtol=1e-5, atol=1e-6
        )
    state, optim = got["round_trip"]
    assert all(torch.equal(state[k], got["state"][k]) for k in state) and list(state) == list(got["state"])
    assert all(
        torch.equal(optim["state"][i]["momentum_buffer"], v["momentum_buffer"])
        for i, v in got["optim"]["state"].items()
    )


def test_a_single_process_checkpoint_loads_into_a_sharded_model():
    full = _model()
    group = BranchGroup(None, 1, 2)  # rank 1 of 2: functions 2 and 3 of every block (no collective is called)
    part = shard_branches(_model(), group)
    with torch.no_grad():
        for p in full.parameters():
            p.add_(torch.randn_like(p))
    part.load_state_dict(shard_state_dict(part, full.state_dict()))
    block_full, block_part = full.blocks[0], part.blocks[0]
    assert block_part.function_ids == [2, 3] and len(block_part.functions) == 2
    for mine, theirs in zip(block_part.functions, list(block_full.functions)[2:], strict=True):
        assert all(
            torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values(), strict=True)
        )
    assert torch.equal(part.head.fc.weight, full.head.fc.weight)  # shared layers are replicated


def test_layouts_that_cannot_split_the_functions_are_refused_before_any_work():
    model = _model()
    with pytest.raises(BranchLayoutError, match="3 branch ranks do not divide k = 4"):
        check_branch_layout(model, 3)
    with pytest.raises(BranchLayoutError, match="has no multi-residual blocks"):
        check_branch_layout(create_model("resnext_cifar", depth=11, cardinality=2, bottleneck_width=4), 2)
    with pytest.raises(BranchLayoutError):
        shard_branches(model, BranchGroup(None, 0, 3))
    assert len(model.blocks[0].functions) == 4  # nothing was taken away
