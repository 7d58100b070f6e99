"""One SGD step of Multi-ResNet under each parallel layout of the paper's Table V, with what it communicates.

    python benchmarks/branch_parallel.py --quick       # this CPU: depth 20, k = 4, batch 32 (gloo), a few minutes
    python benchmarks/branch_parallel.py               # the paper's size: depth 110, k = 4, batch 32
    python benchmarks/branch_parallel.py --device cuda # NCCL with one GPU per rank; with fewer GPUs, simulated

Layouts (all with the same global batch per step): one process; data parallel (DDP) ×2; branch parallel ×2 (each
rank k/2 functions of every block on the same batch); data ×2 × branch ×2 (4 processes); the ResNet of the same
layer count, (depth − 2)·k + 2 with k = 1, under DDP ×2 — what Table V compares against. On a machine with fewer
cores than ranks the processes share them, so read the communication columns and the one-process row, not the
wall-clock ratios. Writes benchmarks/results/branch_parallel_<device>_depth<D>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from prunex.runtime.environment import environment
from prunex.train.branch_parallel_cost import StepSettings, paper_layouts, simulate_branch_rank, time_layout

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="depth 20 instead of the paper's 110")
    parser.add_argument("--depth", type=int, default=None)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--link-gbps", type=float, default=16.0, help="GB/s for the simulation (paper: PCIe 3)")
    args = parser.parse_args()
    depth = args.depth or (20 if args.quick else 110)
    settings = StepSettings(batch=args.batch, steps=args.steps, device=args.device)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cores = os.cpu_count() or 1
    layouts = paper_layouts(depth, args.k)
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    rows, simulated = [], []
    with tempfile.TemporaryDirectory(prefix="prunex-branch-") as work:
        for layout in layouts:
            if args.device == "cuda" and layout.processes > gpus:
                if layout.branch > 1:
                    simulated.append(simulate_branch_rank(layout, settings, args.link_gbps))
                continue
            rows.append(time_layout(layout, settings, Path(work), cores))
    table = Table(title=f"one SGD step, global batch {args.batch}, {args.device} ({cores} cores)")
    for col in ("layout", "processes", "median s", "img/s", "branch all-reduce MB", "in collectives s", "DDP MB"):
        table.add_column(col, justify="left" if col == "layout" else "right")
    for r in rows:
        table.add_row(
            r["name"],
            str(r["processes"]),
            f"{r['median_step_s']:.3f}",
            f"{r['images_per_s']:.0f}",
            f"{r['branch_allreduce_bytes'] / 1e6:.1f}",
            f"{r['branch_allreduce_s']:.3f}",
            f"{r['ddp_allreduce_bytes'] / 1e6:.1f}",
        )
    console = Console()
    console.print(table)
    for s in simulated:
        console.print(
            f"simulated {s['name']}: one rank computes in {s['compute_s']:.4f} s, all-reduces "
            f"{s['allreduce_bytes'] / 1e6:.1f} MB ≈ {s['communication_s']:.4f} s at {s['link_gb_per_s']:g} GB/s → "
            f"≈ {s['estimated_step_s']:.4f} s per step (fewer GPUs than ranks here: an estimate)"
        )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"branch_parallel_{args.device}_depth{depth}.json"
    data = {"command": "python benchmarks/branch_parallel.py " + " ".join(sys.argv[1:]), "settings": vars(args)}
    data |= {"environment": environment(torch.device(args.device)), "rows": rows, "simulated": simulated}
    path.write_text(json.dumps(data, indent=2) + "\n")
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
