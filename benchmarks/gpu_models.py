"""Build the networks of the GPU benchmark as prunex checkpoints and compress them (random weights, gates set).

    PYTHONPATH=. python benchmarks/gpu_models.py --out runs/gpu            # the issue's models
    PYTHONPATH=. python benchmarks/gpu_models.py --out runs/gpu --smoke    # tiny versions, for a CPU check

G-ResNeXt-50 gets learned-style gates: 8 / 16 / 32 / 64 groups in its four stages (docs/design.md's paper-like
grouping) with the separating bits placed at random, so every DGConv needs permutations; MaskConnect {29,64,8}
gets random K = 1 masks (blocks nobody reads are removed); Multi-ResNet depth 14, k = 10 has nothing learned (its
k branches are merged). Then `benchmarks/gpu_bench.sh` times gated vs compressed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

from prunex.artifacts.checkpoint import save_checkpoint
from prunex.models import create_model
from prunex.nn.branch_gates import BranchGates, sample_k_of_c
from prunex.nn.dgconv import DGConv2d

STAGE_GROUPS = (8, 16, 32, 64)


def learned_style_gates(model: torch.nn.Module, generator: torch.Generator) -> None:
    """log2(G) zero gates per DGConv, G by stage, at random positions (never the contiguous pattern)."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, DGConv2d)]
    for name, m in layers:
        stage = int(name.split(".")[0].removeprefix("layer")) - 1 if name.startswith("layer") else 0
        zeros = min(STAGE_GROUPS[min(stage, 3)].bit_length() - 1, m.num_gates)
        while True:
            pattern = torch.ones(m.num_gates)
            pattern[torch.randperm(m.num_gates, generator=generator)[:zeros]] = 0
            if zeros in (0, m.num_gates) or not torch.equal(pattern, pattern.sort().values):
                break
        with torch.no_grad():
            m.gate.copy_(torch.where(pattern.bool(), 1e-8, -1e-8))


def randomise_bn(model: torch.nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=generator))


def build(smoke: bool) -> dict[str, tuple[str, dict, int]]:
    if smoke:
        return {
            "g_resnext": ("g_resnext_cifar", dict(depth=11, cardinality=4, bottleneck_width=4), 32),
            "maskconnect": ("maskconnect_cifar", dict(depth=11, bottleneck_width=4, cardinality=4, fan_in=1), 32),
            "multiresnet": ("multiresnet_cifar", dict(depth=8, k=3), 32),
        }
    return {
        "g_resnext50": ("g_resnext50", {}, 224),
        "maskconnect_29_64_8": ("maskconnect_cifar", dict(depth=29, bottleneck_width=64, cardinality=8, fan_in=1), 32),
        "multiresnet_14_10": ("multiresnet_cifar", dict(depth=14, k=10), 32),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/gpu")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    for label, (name, kwargs, size) in build(args.smoke).items():
        torch.manual_seed(0)
        model = create_model(name, **kwargs).eval()
        randomise_bn(model, g)
        learned_style_gates(model, g)
        for m in model.modules():
            if isinstance(m, BranchGates):
                m.freeze()
                m.mask = sample_k_of_c(torch.ones(m.num_blocks, m.num_inputs), m.fan_in, g)
        run = Path(args.out) / label
        save_checkpoint(
            run / "checkpoint.pt",
            {
                "spec": model.prunex_spec.to_dict(),
                "state_dict": model.state_dict(),
                "dataset": {"name": None, "num_classes": 0, "in_chans": 3, "image_size": size},
            },
        )
        subprocess.run(
            [sys.executable, "-m", "prunex", "compress", str(run), "--force", "--calibration", "8"], check=True
        )


if __name__ == "__main__":
    main()
