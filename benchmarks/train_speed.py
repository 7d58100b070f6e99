"""Training-step cost of each family's gated network next to its plain twin, in one run.

    python benchmarks/train_speed.py --quick          # this CPU, under 3 minutes (fp32, small batches)
    python benchmarks/train_speed.py                  # a GPU: the papers' batch sizes, bf16 autocast, channels-last
    python benchmarks/train_speed.py --compile        # also the step under torch.compile

Prints a table and writes benchmarks/results/train_speed_<device>.json (see prunex.train.step_cost for what is
measured). Read the ratios: gated and twin are measured in the same process, one after the other. "user loop ops"
counts a step of the plainest loop a user writes (the model prunex built, cross-entropy, backward, torch.optim.SGD
over model.parameters()), nothing else from prunex.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from prunex.models import create_model
from prunex.passes.pipeline import CompressOptions, compress
from prunex.runtime.environment import environment
from prunex.train.step_cost import StepSettings, TrainingCase, compare_case, dense_twin, loader_throughput

RESULTS = Path(__file__).parent / "results"


def compressed_twin(model: nn.Module, image_size: int, in_chans: int = 3) -> nn.Module:
    """The plain network ``prunex compress`` makes of ``model`` (BatchNorm kept), with trainable parameters."""
    example = torch.randn(2, in_chans, image_size, image_size)
    compressed, _ = compress(model, example, options=CompressOptions(fold_bn=False))
    for p in compressed.parameters():
        p.requires_grad_(True)
    return compressed


def _resnext_twin(case: TrainingCase) -> nn.Module:
    kw = {k: v for k, v in case.kwargs.items() if k not in ("fan_in", "connectivity", "seed")}
    return create_model("resnext_cifar", num_classes=case.num_classes, **kw)


def _dense_twin(case: TrainingCase) -> nn.Module:
    return dense_twin(case.build())


def _compressed_twin(case: TrainingCase) -> nn.Module:
    return compressed_twin(case.build(), case.image_size)


# The papers' configurations at their training batch sizes (GPU); ``quick_cases`` shrinks them for a CPU.
PAPER_CASES = (
    TrainingCase(
        "g_resnext50", "g_resnext50", {}, "same network, dense nn.Conv2d 3×3", _dense_twin, 64, 224, 1000, 32.0
    ),
    TrainingCase(
        "maskconnect_29_64_8",
        "maskconnect_cifar",
        {"depth": 29, "bottleneck_width": 64, "cardinality": 8, "fan_in": 4},
        "ResNeXt {29, 64, 8}",
        _resnext_twin,
        128,
        32,
    ),
    TrainingCase(
        "multiresnet_14_10",
        "multiresnet_cifar",
        {"depth": 14, "k": 10},
        "its compressed network",
        _compressed_twin,
        128,
        32,
    ),
    TrainingCase(
        "sparsenet_100_24", "sparsenet_cifar", {"depth": 100, "growth": 24}, "compressed", _compressed_twin, 64, 32
    ),
)

QUICK = {"g_resnext50": (8, 64, 10), "maskconnect_29_64_8": (8, 32, 10), "multiresnet_14_10": (8, 32, 10)}


def quick_cases() -> tuple[TrainingCase, ...]:
    """The cases at CPU sizes (same networks, small batches and images); SparseNet-100 is left out for time."""
    return tuple(
        replace(c, batch_size=QUICK[c.name][0], image_size=QUICK[c.name][1], num_classes=QUICK[c.name][2])
        for c in PAPER_CASES
        if c.name in QUICK
    )


def _loaders(device: torch.device, quick: bool) -> dict[str, float]:
    """Images/s of the input pipelines alone: the embedded digits and a CIFAR-shaped in-memory set (both drawn on
    the device), and, unless quick, an image folder of JPEGs on disk (DataLoader workers, pinned memory)."""
    from prunex.data import load_dataset
    from prunex.data.tensor_images import Augmentation, TensorImages

    out = {"digits (device loader, shift)": loader_throughput(load_dataset("digits").train, 64, device)}
    gen = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (10_000, 3, 32, 32), dtype=torch.uint8, generator=gen)
    cifar_like = TensorImages(raw, torch.zeros(10_000), 127.0, 64.0, Augmentation(pad=4, flip=True))
    out["CIFAR-shaped uint8 (device loader, crop+flip)"] = loader_throughput(cifar_like, 128, device)
    if not quick:
        from PIL import Image

        from prunex.data.imagefolder import load_imagefolder

        with tempfile.TemporaryDirectory() as root:
            for split in ("train", "val"):
                for c in range(2):
                    folder = Path(root) / split / f"class{c}"
                    folder.mkdir(parents=True)
                    for i in range(128 if split == "train" else 4):
                        pixels = torch.randint(0, 256, (256, 320, 3), dtype=torch.uint8, generator=gen).numpy()
                        Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
            data = load_imagefolder(Path(root), image_size=224)
            out["JPEG folder 224 px (DataLoader workers)"] = loader_throughput(data.train, 64, device, batches=8)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU sizes: small batches and images, fewer steps")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda[:N]")
    parser.add_argument("--compile", action="store_true", help="also time the step under torch.compile")
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--iters", type=int, default=None, help="timed steps per network")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: results/train_speed_<device>.json)")
    args = parser.parse_args(argv)

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    cases = quick_cases() if args.quick else PAPER_CASES
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = tuple(c for c in cases if c.name in wanted)
    iters = args.iters or (3 if args.quick else 20)
    settings = StepSettings(device, warmup=2 if args.quick else 5, iters=iters, compile=args.compile)
    console = Console(width=max(Console().width, 170))
    precision = "bf16 autocast, channels-last" if device.type == "cuda" else "fp32"
    console.print(f"[bold]training step[/bold] on {device} ({precision}); gated vs plain twin in one run")

    results = []
    for case in cases:
        with console.status(f"{case.name}: batch {case.batch_size}, {case.image_size} px"):
            results.append(compare_case(case, settings))
    loaders = _loaders(device, args.quick)

    table = Table(title=f"training step on {device}: gated / plain twin")
    columns = ("network", "batch, px", "plain twin", "step ms", "aten ops", "user loop ops", "kernel ops", "syncs")
    for col in (*columns, "peak MiB"):
        table.add_column(col, justify="left" if col in ("network", "plain twin") else "right", no_wrap=True)
    if device.type == "cuda":
        table.add_column("CUDA kernels", justify="right", no_wrap=True)
    if args.compile:
        table.add_column("compiled ms", justify="right", no_wrap=True)
    for r in results:
        g, p, q = r.gated, r.plain, r.ratios
        row = [
            r.case,
            f"{r.batch_size}, {r.image_size}",
            r.twin,
            f"{g.step_ms:.1f} / {p.step_ms:.1f} = {q['step_time']:.2f}×",
            f"{g.aten_ops} / {p.aten_ops} = {q['aten_ops']:.3f}×",
            f"{g.user_loop.aten_ops} / {p.user_loop.aten_ops} = {q['user_loop_aten_ops']:.3f}×",
            f"{g.kernel_ops} / {p.kernel_ops} = {q['kernel_ops']:.3f}×",
            f"{g.host_syncs + g.user_loop.host_syncs} / {p.host_syncs + p.user_loop.host_syncs}",
            f"{g.peak_memory_bytes / 2**20:.0f} / {p.peak_memory_bytes / 2**20:.0f} = {q['peak_memory']:.2f}×",
        ]
        if device.type == "cuda":
            row.append(f"{g.cuda_kernels} / {p.cuda_kernels} = {q.get('cuda_kernels', float('nan')):.2f}×")
        if args.compile:
            row.append(f"{g.compiled_step_ms:.1f} / {p.compiled_step_ms:.1f} = {q['compiled_step_time']:.2f}×")
        table.add_row(*row)
    console.print(table)
    for name, rate in loaders.items():
        console.print(f"input pipeline alone, {name}: {rate:,.0f} images/s")

    out = args.out or RESULTS / f"train_speed_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python benchmarks/train_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "environment": environment(device),
        "precision": precision,
        "cases": [r.as_dict() for r in results],
        "loader_images_per_second": loaders,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    console.print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
