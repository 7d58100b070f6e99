"""On a CUDA device: a training step (bf16 autocast, channels-last) never synchronises the host with the device,
and the fused DGConv masking matches the Kronecker formulation there too."""

import copy

import pytest
import torch

from prunex.models import create_model
from prunex.train.step import TrainStep, param_groups, sgd
from tests.train.test_step import FAMILIES

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize(("name", "kwargs", "budget"), FAMILIES, ids=[f"{f[0]}-{i}" for i, f in enumerate(FAMILIES)])
def test_a_cuda_training_step_never_synchronises(name, kwargs, budget):
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = create_model(name, num_classes=10, **kwargs).to(dev).to(memory_format=torch.channels_last).train()
    optimizer = sgd(param_groups(model, lr=0.1, gate_lr=0.1, weight_decay=5e-4, momentum=0.9, nesterov=True))
    step = TrainStep(model, amp=True, budget=budget, alpha=-0.5)
    x = torch.randn(8, 3, 32, 32, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,), device=dev)
    for _ in range(2):  # caches (plans, coefficients) filled outside the checked step
        step(x, y, optimizer)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss, _ = step(x, y, optimizer)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss).item()


def test_fused_dgconv_on_cuda_matches_the_layers_own_computation():
    torch.manual_seed(0)
    model = create_model("g_resnext_cifar", depth=11, cardinality=4, bottleneck_width=8, num_classes=10).cuda()
    from prunex.nn import gate_fusion_of, unfuse_gates

    assert gate_fusion_of(model) is not None  # fused by default
    reference = unfuse_gates(copy.deepcopy(model))
    x = torch.randn(4, 3, 32, 32, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = model(x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        expected = reference(x)
    torch.testing.assert_close(y, expected)
    y.float().square().sum().backward()
    expected.float().square().sum().backward()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-4)
