"""Peak memory and time of ``prunex.compress`` at scale, against the gated model's own eval forward.

    python benchmarks/compress_memory.py [--batch 8] [--out benchmarks/results/compress_memory_cpu.json]

For each network (random weights; every k×k conv learns its grouping, with random gates, as a trained network
would have them), two fresh processes build the same gated model: one runs an eval forward at ``--batch``, the
other ``prunex.compress`` with a calibration batch of that size (no tuning). Each reports its peak resident set
(``ru_maxrss``, the model's own weights included) and seconds; the table gives compress / eval. Goal (#25):
peak ≤ 2× the eval peak, and ≤ 60 s for resnext101_64x4d on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

NETWORKS = ("torchvision:resnext101_64x4d", "g_resnext101")
IMAGE = (3, 224, 224)


def gated_model(name: str):
    """The network with random DGConv gates (torchvision ones: ``learn_groups`` on every k×k conv first)."""
    import torch

    from prunex.models import create_model, learn_groups
    from prunex.nn.dgconv import DGConv2d

    if name.startswith("torchvision:"):
        import torchvision

        model = getattr(torchvision.models, name.split(":", 1)[1])(weights=None)
        learn_groups(model)
    else:
        model = create_model(name)
    generator = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, DGConv2d):
            m.reset_gates(generator)
    return model.eval()


def measure(mode: str, name: str, batch: int) -> dict:
    """In this process: build the model, then run ``mode`` (eval | compress); peak RSS in MB and seconds."""
    import torch

    torch.set_num_threads(2)
    model = gated_model(name)
    x = torch.randn(batch, *IMAGE, generator=torch.Generator().manual_seed(1))
    built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tic = time.perf_counter()
    if mode == "eval":
        with torch.no_grad():
            model(x)
        extra = {}
    else:
        from prunex.passes import compress

        _, report = compress(model, x[:1], calibration=x)
        extra = {"end_to_end_max_rel_err": report.totals.end_to_end_max_rel_err}
    seconds = time.perf_counter() - tic
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "model_mb": round(built), "peak_mb": round(peak), "seconds": round(seconds, 1), **extra}


def in_subprocess(mode: str, name: str, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--measure", mode, "--network", name, "--batch", str(batch)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--out", default="benchmarks/results/compress_memory_cpu.json")
    parser.add_argument("--measure", choices=("eval", "compress"), help=argparse.SUPPRESS)
    parser.add_argument("--network", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.network, args.batch)))
        return
    rows = []
    print(f"{'network':32} {'eval peak MB':>12} {'compress peak MB':>16} {'ratio':>6} {'compress s':>10}")
    for name in args.networks.split(","):
        ev, co = in_subprocess("eval", name, args.batch), in_subprocess("compress", name, args.batch)
        row = {"network": name, "batch": args.batch, "eval": ev, "compress": co}
        row["peak_ratio"] = round(co["peak_mb"] / ev["peak_mb"], 2)
        rows.append(row)
        print(f"{name:32} {ev['peak_mb']:12} {co['peak_mb']:16} {row['peak_ratio']:6} {co['seconds']:10}")
    result = {
        "command": "python benchmarks/compress_memory.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, 2 threads",
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
