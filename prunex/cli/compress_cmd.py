"""``prunex compress``: compile a trained gated checkpoint into a verified network of standard layers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from prunex.artifacts import InputError, atomic_directory, atomic_write_text, check_writable_parent
from prunex.cli.errors import handle_errors, warn
from prunex.inspection.summary import PICTURE_NAMES

MODEL_FILES = ("model.json", "model.safetensors", "report.json")


def calibration_inputs(ckpt: dict[str, Any], n: int) -> tuple[torch.Tensor, str]:
    """Up to ``n`` real test images of the checkpoint's dataset plus ``n`` random ones, and where they came from."""
    from prunex.data import image_shape, readable_test_images

    info = ckpt.get("dataset") or {}
    shape = image_shape(info)
    noise = torch.randn(n, *shape, generator=torch.Generator().manual_seed(0))
    real, source = readable_test_images(info, n)
    if real is None:
        return noise, f"random ({source})"
    return torch.cat([real, noise[: len(real)]]), f"{len(real)} {source} test images + {len(real)} random"


def check_output_dir(out: Path, force: bool) -> bool:
    """Whether ``out`` holds a compressed model (it may be replaced only with ``force``). Anything in ``out`` that
    ``prunex compress`` did not write is never replaced, with or without ``force``."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a directory")
    if not out.exists():
        return False
    ours = set(MODEL_FILES) | {"failure.json"} | {f"{p}.{ext}" for p in PICTURE_NAMES for ext in ("svg", "png")}
    others = sorted(f.name for f in out.iterdir() if f.name not in ours)
    if others:
        raise InputError(
            f"{out} holds files prunex compress did not write ({', '.join(others[:5])}); choose another --out"
        )
    taken = [f for f in MODEL_FILES if (out / f).exists()]
    if taken and not force:
        raise InputError(f"{out} already holds a compressed model ({', '.join(taken)}); pass --force to replace it")
    return bool(taken)


def write_failure(out: Path, holds_model: bool, report: dict[str, Any]) -> Path:
    """The diff report of a failed verification: in ``out`` when it holds no model, else beside it (the model in
    ``out`` stays as it was)."""
    text = json.dumps(report, indent=2) + "\n"
    if holds_model:
        return atomic_write_text(out.parent / f"{out.name}.failure.json", text)
    with atomic_directory(out, replace=True) as tmp:
        atomic_write_text(tmp / "failure.json", text)
    return out / "failure.json"


def compress(
    checkpoint: Path = typer.Argument(..., help="A checkpoint from `prunex train` (file or run directory)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output directory (default: RUN_DIR/compressed)."),
    force: bool = typer.Option(False, "--force", help="Replace a compressed model already in the output directory."),
    fold_bn: bool = typer.Option(True, "--fold-bn/--no-fold-bn", help="Fold BatchNorm into the preceding convs."),
    merge: bool = typer.Option(True, "--merge/--no-merge", help="Merge parallel branches into wide / grouped convs."),
    tolerance: float = typer.Option(
        1e-4, "--tolerance", min=0.0, help="Accepted max |Δ| per pass, relative to the output scale."
    ),
    calibration: int = typer.Option(
        32, "--calibration", min=1, help="Real test images to verify on (plus as many random)."
    ),
    tune: str = typer.Option(
        "off",
        "--tune",
        help="off: keep the learned structure; cache: choose each grouped conv's "
        "realisation and merged-or-separate branches by measured time, reusing cached timings; "
        "full: measure everything again.",
    ),
    target_device: str = typer.Option("cpu", "--target-device", help="Device to tune for: cpu or cuda[:N]."),
    target_batch: int = typer.Option(1, "--target-batch", min=1, help="Batch size to tune for."),
    target_dtype: str = typer.Option("fp32", "--target-dtype", help="fp32 or fp16 (fp16 needs CUDA)."),
    target_backend: str = typer.Option("eager", "--target-backend", help="eager or cuda-graphs."),
    channels_last: bool = typer.Option(False, "--channels-last", help="Tune for NHWC inputs."),
    plots: bool = typer.Option(False, "--plots", help="Also draw what was learned (as `prunex inspect`) into --out."),
    tuning_cache: Path = typer.Option(
        None,
        "--tuning-cache",
        help="Timing cache (default ~/.cache/prunex/tuning.json, or $PRUNEX_CACHE_DIR/tuning.json).",
    ),
) -> None:
    """Compile the learned structure away and verify every pass; writes model.json + model.safetensors (standard
    layers, no pickle) and report.json.

    Passes: fold gate constants → remove dead blocks → CSE → fold BN → merge branches → DGConv to grouped convs →
    fold permutations → remove no-ops. A pass that changes the output beyond the tolerance stops the run (exit 3)
    and writes failure.json instead (beside OUT, as OUT.failure.json, when OUT already holds a model).

    Nothing is written until the whole compilation has succeeded: a failed or interrupted run leaves OUT as it
    was, and --force replaces an earlier compressed model only then.
    """
    from prunex.passes import CompressOptions, PassVerificationError
    from prunex.passes import compress as run_compress
    from prunex.passes.pipeline import default_passes
    from prunex.passes.serialization import save_compressed
    from prunex.passes.tuning import MODES, TuneTarget
    from prunex.train.checkpoint import model_from_checkpoint
    from prunex.train.config import ConfigError
    from prunex.train.distributed import pick_device

    console = Console()
    with handle_errors(console):
        if tune not in MODES:
            raise ConfigError(f"--tune must be one of {', '.join(MODES)}, got {tune!r}")
        try:
            target = TuneTarget(target_device, target_dtype, target_batch, channels_last, target_backend)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if tune != "off":
            pick_device(target_device)  # a missing CUDA device is reported before any work
        model, ckpt = model_from_checkpoint(checkpoint)
        run_dir = checkpoint if checkpoint.is_dir() else checkpoint.parent
        out = out or run_dir / "compressed"
        holds_model = check_output_dir(out, force)
        check_writable_parent(out)
        x, source = calibration_inputs(ckpt, calibration)
        options = CompressOptions(
            fold_bn=fold_bn,
            merge_branches=merge,
            tolerance=tolerance,
            tune=tune,
            target=target,
            tuning_cache=str(tuning_cache) if tuning_cache else None,
        )
        console.print(f"compressing {ckpt['spec']['name']} from {checkpoint}; verifying on {source}")
        progress = Progress(TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), console=console)
        total = len(default_passes(options)) + 1 + (options.tune != "off")  # + freeze, + realisation choice
        task = progress.add_task("freeze + trace", total=total)

        def advance(record) -> None:
            progress.update(task, advance=1, description=record.name)

        with atomic_directory(out, replace=True) as tmp:
            try:
                with progress:
                    gm, report = run_compress(model, x[:1], calibration=x, options=options, on_pass=advance)
            except PassVerificationError as err:
                path = write_failure(out, holds_model, err.report)
                kept = f"; the compressed model in {out} is unchanged" if holds_model else ""
                raise PassVerificationError(f"{err}\ndiff report: {path}{kept}", err.report) from None
            for warning in report.get("warnings", []):
                warn(console, warning)
            report["checkpoint"] = str(checkpoint)
            report["calibration"] = source
            save_compressed(
                gm,
                tmp,
                {
                    "source": ckpt["spec"],
                    "input_shape": report["input_shape"],
                    "dataset": ckpt.get("dataset"),
                    "totals": report["totals"],
                },
            )
            (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            print_report(console, report)
            if plots:
                from prunex.cli.inspect_cmd import write_pictures

                pictures = write_pictures(console, model, tmp, report, ("svg", "png"))
                if pictures:
                    console.print(f"pictures: {', '.join(p.name for p in pictures)}")
        console.print(
            f"compressed model: [bold]{out}[/bold] (model.json, model.safetensors)   report: {out / 'report.json'}"
        )


def print_report(console: Console, report: dict[str, Any]) -> None:
    table = Table(
        title="passes, each verified against the graph before it (rel |Δ| = max |Δ| / max |output|)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("pass", no_wrap=True)
    for col in ("rel |Δ|", "top-1", "params", "MMACs", "layers"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in report["passes"]:
        layers = len(r["added"]) + len(r["removed"]) + len(r["changed"])
        table.add_row(
            r["name"],
            f"{r['max_rel_err']:.1e}",
            f"{100 * r['top1_agreement']:.0f}%",
            f"{r['params']:,}",
            f"{r['flops'] / 1e6:,.2f}",
            str(layers),
        )
    console.print(table)
    t = report["totals"]
    console.print(
        f"params {t['params_before']:,} → {t['params_after']:,} ({t['params_after'] / t['params_before']:.1%}), "
        f"MACs {t['flops_before']:,} → {t['flops_after']:,} ({t['flops_after'] / max(t['flops_before'], 1):.1%}); "
        f"compressed vs frozen: max |Δ| {t['end_to_end_max_abs_err']:.1e}, "
        f"top-1 agreement {100 * t['end_to_end_top1_agreement']:.1f}%"
    )
    if report["blocks_removed"]:
        removed = "; ".join(f"{k}: {v}" for k, v in report["blocks_removed"].items())
        console.print(f"blocks removed: {removed}")
    if report["groups"]:
        groups = ", ".join(str(g["learned_groups"]) for g in report["groups"])
        console.print(f"DGConv groups (dense before): {groups}")
    if report.get("lowering"):
        t = report["options"]["target"]
        console.print(f"latency-aware lowering for {t['device']} {t['backend']} {t['dtype']} batch {t['batch']}:")
        for d in report["lowering"]:
            times = ", ".join(f"{k} {v:.3f}" for k, v in sorted(d["times_ms"].items(), key=lambda kv: kv[1]))
            source = "cached" if d["from_cache"] else "measured"
            console.print(f"  {d['layer']} ({d['learned']}): [bold]{d['chosen']}[/bold]  ({source} ms: {times})")
    for kept in report["gathers_remaining"]:
        console.print(
            f"[yellow]channel gather kept:[/yellow] {kept['gather']} (no single order serves {kept['forced_by']})"
        )
