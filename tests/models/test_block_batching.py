"""Multi-branch modules train as one grouped computation: the same function, gradients and BN statistics as block
by block, in both memory formats, for every kind of connectivity."""

import copy

import pytest
import torch

from prunex.models import create_model
from prunex.nn import fuse_gates, unfuse_gates
from prunex.nn.branch_gates import sample_k_of_c

SMALL = {"depth": 11, "bottleneck_width": 4, "cardinality": 4, "num_classes": 10}


def _pair(name, **kwargs):
    torch.manual_seed(0)  # weights independent of the tests run before (a ReLU input at 0 ± 1e-7 flips a gradient)
    model = unfuse_gates(create_model(name, **{**SMALL, **kwargs}))  # each module draws its own mask
    reference = copy.deepcopy(model)
    return model.train(), reference.train()


def _compare(model, reference, forward_reference, channels_last):
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    if channels_last:
        model, reference = model.to(memory_format=torch.channels_last), reference.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(5)
    y = model(x)
    torch.manual_seed(5)
    expected = forward_reference(reference, x)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    y.square().sum().backward()
    expected.square().sum().backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        scale = q.grad.abs().max().clamp_min(1e-12)
        torch.testing.assert_close(p.grad / scale, q.grad / scale, rtol=0, atol=2e-5, msg=name)
    for (name, b), c in zip(model.named_buffers(), reference.buffers(), strict=True):
        torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-6, msg=name)


def _block_by_block(model, x):
    model.batch_blocks = False
    return model(x)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("connectivity", ["learned", "fixed_random", "fixed_full", "frozen"])
def test_maskconnect_trains_batched_exactly_as_block_by_block(connectivity, channels_last):
    kwargs = {"connectivity": "learned" if connectivity == "frozen" else connectivity, "seed": 3}
    kwargs["fan_in"] = 4 if connectivity == "fixed_full" else 2
    model, reference = _pair("maskconnect_cifar", **kwargs)
    if connectivity == "frozen":
        for m in (model, reference):
            for module in m.stages[1:]:
                module.gates.freeze()
    _compare(model, reference, _block_by_block, channels_last)


def _paper_maskconnect(model, x):
    """MaskConnect as the paper writes it: per block, x_j = (1/K)·Σ_k m_jk·y_k summed term by term, with masks drawn
    by torch.multinomial and a straight-through gradient."""
    ys = [model.stem(x)]
    for module in model.stages:
        if module.gates is None:
            s = module.shortcut(ys[0])
            ys = [torch.relu(s + block(ys[0])) for block in module.blocks]
            continue
        g = module.gates
        idx = torch.multinomial(g.weight.detach().double(), g.fan_in, replacement=False)
        mask = torch.zeros_like(g.weight).scatter(1, idx, 1.0) + (g.weight - g.weight.detach())
        xs = []
        for j in range(len(module.blocks)):
            total = mask[j, 0] * ys[0]
            for k in range(1, len(ys)):
                total = total + mask[j, k] * ys[k]
            xs.append(total * (1.0 / g.fan_in))
        ys = [torch.relu(module.shortcut(xj) + block(xj)) for xj, block in zip(xs, module.blocks, strict=True)]
    z = sum(ys[1:], ys[0]) * (1.0 / len(ys))
    return model.head(z)


def test_maskconnect_outputs_and_mask_gradients_are_the_papers_for_a_fixed_generator():
    """Batched blocks, fused sampling of every module's masks and the new sampler: same values as the paper's
    formulation drawn with torch.multinomial from the same generator state (modules sample in order); the paper's
    shortcut as the per-block projection writes it."""
    model, reference = _pair("maskconnect_cifar", fan_in=2, seed=3, projection="per_block")
    fuse_gates(model)
    _compare(model, reference, _paper_maskconnect, channels_last=False)


def test_fused_sampling_draws_each_module_from_its_own_mask():
    model, _ = _pair("maskconnect_cifar", fan_in=2, seed=3)
    with torch.no_grad():
        model.stages[1].gates.weight.zero_()
        model.stages[1].gates.weight[:, 0] = 1.0
        model.stages[1].gates.weight[:, 2] = 1.0
    seen = {}
    fuse_gates(model)  # its hook runs before the one registered next
    model.register_forward_pre_hook(lambda m, args: seen.update(mask=m.stages[1].gates().clone()))
    model(torch.randn(2, 3, 16, 16))
    assert model.stages[1].gates.fused_mask is None  # released after the forward
    assert torch.equal(seen["mask"], torch.tensor([[1.0, 0, 1, 0]] * 4))
    assert sample_k_of_c(torch.tensor([[1.0, 0, 1, 0]]), 2).tolist() == [[1.0, 0, 1, 0]]


def _without_batching(module, check):
    """A reference forward with ``module.<check>`` answering False: the block-by-block path."""

    def forward(model, x):
        batched = getattr(module, check)
        setattr(module, check, lambda blocks: False)
        try:
            return model(x)
        finally:
            setattr(module, check, batched)

    return forward


@pytest.mark.parametrize("channels_last", [False, True])
def test_resnext_trains_batched_exactly_as_branch_by_branch(channels_last):
    import prunex.models.resnext_cifar as module

    model, reference = _pair("resnext_cifar")
    _compare(model, reference, _without_batching(module, "can_batch_bottlenecks"), channels_last)


def test_a_resnext_retrained_from_learned_groups_trains_batched_exactly_as_branch_by_branch():
    """``--structure-from``: each branch conv has the group count its DGConv learned, and they differ."""
    import prunex.models.resnext_cifar as module
    from prunex.models.learn_groups import learn_groups
    from prunex.models.structure import apply_structure

    model, _ = _pair("resnext_cifar")
    learn_groups(model, "stages.*.branches.*.conv2")
    names = [n for n, m in model.named_modules() if n.endswith("conv2")]
    apply_structure(model, {n: (2, 4)[i % 2] if i > 1 else 2 for i, n in enumerate(names)})
    reference = copy.deepcopy(model)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    y, expected = model(x), _without_batching(module, "can_batch_bottlenecks")(reference, x)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    y.square().sum().backward()
    expected.square().sum().backward()
    grads = [torch.cat([p.grad.flatten() for p in m.parameters()]) for m in (model, reference)]
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-5 * float(grads[1].abs().max()))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_multiresnet_trains_batched_exactly_as_function_by_function(block, channels_last):
    model = create_model("multiresnet_cifar", depth=8 if block == "basic" else 11, k=3, block=block, num_classes=10)
    reference = copy.deepcopy(model)
    import prunex.nn.multi_residual as module

    _compare(model.train(), reference.train(), _without_batching(module, "can_batch_sequentials"), channels_last)
