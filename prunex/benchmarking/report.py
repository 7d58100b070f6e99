"""The benchmark as a table (rich), JSON, and a latency-vs-batch plot (PNG, if matplotlib is installed)."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.table import Table

from prunex.artifacts.bench_report import BenchReport, speedup_by_case
from prunex.runtime.precision import Precision

WIDE = 118  # columns from which the statistics columns (CoV, img/s, rate, % peak, set-up) are shown too


def results_tables(result: BenchReport, width: int = WIDE) -> list[Table]:
    """One table per model group (a run's gated and compressed models and their reference side by side);
    unmeasured cases are left out (the caller lists each unavailable backend once, with its reason). Narrower than
    :data:`WIDE`, only model, backend, batch, median and the two speed-ups are shown (whole); the rest is in
    bench.json."""
    speed, versus = speedup_by_case(result.speedups), speedup_by_case(result.vs_reference)
    precision = speedup_by_case(result.vs_fp32)
    tables = []
    for group in dict.fromkeys(r.group for r in result.results):
        rows = [r for r in result.measured if r.group == group]
        if not rows:
            continue
        reference = next((r.model for r in rows if r.kind == "reference"), None)
        table = Table(
            title=f"{rows[0].model} ({group}) on {result.device_name}"
            + (f"; reference {reference}" if reference else "")
            + "; p90/p95/p99 in bench.json",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        giga = max(r.tflops for r in rows) < 1  # a CPU: GFLOP/s reads better
        rate = "GFLOP/s" if giga else "TFLOP/s"
        wide = width >= WIDE
        extra = ("CoV", "img/s", rate, "% peak", "setup s") if wide else ()
        versus_fp32 = ("vs fp32",) if any(r.dtype != Precision.FP32 for r in rows) else ()
        for col in ("model", "backend", "batch", "median ms", *extra, "vs gated", "vs ref", *versus_fp32):
            table.add_column(col, justify="left" if col in ("model", "backend") else "right", no_wrap=True)
        for r in rows:
            k = r.case
            cov = f"{100 * r.cov:.1f}%" + ("[yellow]![/yellow]" if r.cov_warning else "")
            stats = (
                cov,
                f"{r.throughput:.0f}",
                f"{r.tflops * (1000 if giga else 1):.1f}",
                f"{100 * r.peak_share:.1f}%",
                f"{r.setup_s:.1f}",
            )
            table.add_row(
                r.kind,
                f"{r.backend} {r.dtype}",
                str(r.batch),
                f"{r.median_ms:.3f}",
                *(stats if wide else ()),
                f"{speed[k]:.2f}×" if k in speed else "",
                f"{versus[k]:.2f}×" if k in versus else "",
                *((f"{precision[k]:.2f}×" if k in precision else "",) if versus_fp32 else ()),
            )
        tables.append(table)
    return tables


def peak_lines(result: BenchReport) -> list[str]:
    """Where each dtype's peak comes from, one line each."""
    return [f"peak {name}: {p.tflops:.3g} TFLOP/s ({p.source})" for name, p in result.peaks.items()]


def unstable_rows(result: BenchReport) -> list[str]:
    return [f"{r.describe()}: CoV {100 * r.cov:.1f}%" for r in result.measured if r.cov_warning]


def plot_latency(result: BenchReport, path: Path) -> Path | None:
    """Median latency against batch size, one line per model / backend / dtype; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    lines: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in result.measured:
        lines.setdefault((r.kind, r.backend, r.dtype), []).append((r.batch, r.median_ms))
    if not lines:
        return None
    # colour: which model (gated / compressed / reference); line style and marker: how it ran (backend, dtype)
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    kinds = list(dict.fromkeys(kind for kind, _, _ in lines))
    runs = list(dict.fromkeys((backend, dtype) for _, backend, dtype in lines))
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v"]
    for (kind, backend, dtype), points in lines.items():
        points.sort()
        k, h = kinds.index(kind), runs.index((backend, dtype))
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            styles[h % len(styles)],
            marker=markers[h % len(markers)],
            color=palette[k % len(palette)],
            label=f"{kind}, {backend} {dtype}",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("median latency (ms)")
    ax.set_title(f"prunex bench on {result.device_name}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside, not over, the curves
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
