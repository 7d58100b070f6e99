"""Train one model of each family on the embedded digits with `prunex train`, compress it with
`prunex compress`, and tabulate parameters / MACs before → after and the end-to-end error.

    python benchmarks/digits_compress.py [--out runs/digits]   # ~17 min on 2 CPU cores

Writes benchmarks/results/digits_compress.json and .md (the markdown table it prints). Trained runs are reused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from prunex.artifacts.compression_report import read_report

RUNS = {  # run directory name: (label, `prunex train` arguments)
    "maskconnect-k4": ("MaskConnect {20,4,8}, K=4 (the default: shared projection)", []),
    "maskconnect-k4-per-block": (
        "MaskConnect {20,4,8}, K=4, per-block projection",
        ["--model", "maskconnect_cifar", *("-a", "depth=20", "-a", "bottleneck_width=4", "-a", "cardinality=8")]
        + ["-a", "projection=per_block"],
    ),
    "maskconnect-k1": (
        "MaskConnect {20,4,8}, K=1",
        [
            "--model",
            "maskconnect_cifar",
            "-a",
            "depth=20",
            "-a",
            "bottleneck_width=4",
            "-a",
            "cardinality=8",
            "-a",
            "fan_in=1",
        ],
    ),
    "resnext": (
        "ResNeXt {20,4,8} (Fixed-Full)",
        ["--model", "resnext_cifar", "-a", "depth=20", "-a", "bottleneck_width=4", "-a", "cardinality=8"],
    ),
    "multiresnet": ("Multi-ResNet depth 14, k=4", ["--model", "multiresnet_cifar", "-a", "depth=14", "-a", "k=4"]),
    "sparsenet": ("SparseNet depth 40, k=12", ["--model", "sparsenet_cifar", "-a", "depth=40", "-a", "growth=12"]),
    "g-resnext": (
        "G-ResNeXt depth 11, 4×8d, b=8",
        ["--model", "g_resnext_cifar", "-a", "depth=11", "-a", "cardinality=4", "-a", "bottleneck_width=8"],
    ),
}


def prunex(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "prunex", *args], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/digits")
    args = parser.parse_args()
    rows = []
    for slug, (label, train_args) in RUNS.items():
        run = Path(args.out) / slug
        if not (run / "checkpoint.pt").exists():
            prunex("train", *train_args, "--out", str(run), "--quiet")
        prunex("compress", str(run), "--force")
        report = read_report(run / "compressed" / "report.json")
        metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        rows.append(
            {
                "model": label,
                "train_command": "prunex train " + " ".join(train_args + ["--out", str(run)]),
                "compress_command": f"prunex compress {run}",
                "test_acc": metrics[-1]["test_acc"],
                "train_seconds": round(sum(m["seconds"] for m in metrics), 1),
                **asdict(report.totals),
                "blocks_removed": report.blocks_removed,
                "groups": [g.learned_groups for g in report.groups],
            }
        )
        print(f"done: {label}", file=sys.stderr)
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/results/digits_compress.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "| model | test acc | params before → after | MACs before → after | max abs err | top-1 agree |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {100 * r['test_acc']:.1f}% | {r['params_before']:,} → {r['params_after']:,} "
            f"({r['params_after'] / r['params_before']:.0%}) | {r['macs_before']:,} → {r['macs_after']:,} "
            f"({r['macs_after'] / r['macs_before']:.0%}) | {r['end_to_end_max_abs_err']:.1e} | "
            f"{100 * r['end_to_end_top1_agreement']:.0f}% |"
        )
    Path("benchmarks/results/digits_compress.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
