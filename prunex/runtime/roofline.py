"""How close a measurement comes to the hardware: achieved TFLOP/s = 2 × MACs × batch / time, over the device's
peak for the dtype.

The peak comes from a table of published dense (no structured sparsity) figures for known GPUs; on a GPU the
table lacks, and on every CPU, it is measured at the start of the run with large matrix multiplications. A
measured peak is only a lower bound of the true one, so the run's best achieved rate raises it: the share of the
peak never exceeds 100 %.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

# (name fragment, fp16/bf16 tensor-core TFLOP/s with fp32 accumulation, TF32 tensor-core TFLOP/s or None, fp32
# TFLOP/s), dense, from the vendors' data sheets; the first fragment found in the device name wins.
KNOWN_GPUS: tuple[tuple[str, float, float | None, float], ...] = (
    ("H100 PCIe", 756.0, 378.0, 51.2),
    ("H100 NVL", 835.0, 418.0, 60.0),
    ("H100", 989.4, 494.7, 66.9),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("H200", 989.4, 494.7, 66.9),
    ("GH200", 989.4, 494.7, 66.9),
    ("A100", 312.0, 156.0, 19.5),
    ("L40S", 362.0, 183.0, 91.6),
    ("L4", 121.0, 60.0, 30.3),
    ("A10", 125.0, 62.5, 31.2),
    ("RTX 4090", 165.2, 82.6, 82.6),
    ("V100", 125.0, None, 15.7),
    ("T4", 65.0, None, 8.1),
)


@dataclass(frozen=True)
class Peak:
    tflops: float
    source: str  # where the figure comes from, in words
    measured: bool = False  # measured here (a lower bound) rather than from a data sheet

    def as_dict(self) -> dict:
        return asdict(self)


def table_peak(device_name: str, dtype: torch.dtype, tf32: bool) -> Peak | None:
    """The published peak of a known GPU for ``dtype`` (fp32 counts TF32 tensor cores when cuDNN may use them, as
    it does by default for convolutions); None for a device the table lacks."""
    for fragment, half, tf32_peak, fp32 in KNOWN_GPUS:
        if fragment.lower() in device_name.lower():
            if dtype in (torch.float16, torch.bfloat16):
                return Peak(half, f"data sheet: {fragment} dense fp16 tensor cores")
            if tf32 and tf32_peak is not None:
                return Peak(tf32_peak, f"data sheet: {fragment} dense TF32 tensor cores (cuDNN allows TF32)")
            return Peak(fp32, f"data sheet: {fragment} fp32")
    return None


def measure_peak(device: torch.device, dtype: torch.dtype, seconds: float = 0.5) -> Peak:
    """The best rate of square matrix multiplications (n = 4096 on a GPU, 1024 on a CPU) over about ``seconds``."""
    n = 4096 if device.type == "cuda" else 1024
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(device, dtype) for _ in range(2))
    best = float("inf")
    start = time.perf_counter()
    for i in range(1000):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first multiplication warms up
            best = min(best, time.perf_counter() - tic)
        if i >= 3 and time.perf_counter() - start > seconds:
            break
    return Peak(2 * n**3 / best / 1e12, f"measured: best {n}×{n} matmul in this run", measured=True)


def device_peak(device: torch.device, dtype: torch.dtype) -> Peak:
    """The table's figure for a known GPU, else a measured one."""
    if device.type == "cuda":
        known = table_peak(torch.cuda.get_device_name(device), dtype, torch.backends.cudnn.allow_tf32)
        if known is not None:
            return known
    return measure_peak(device, dtype)


def achieved_tflops(flops_per_sample: int, batch: int, median_ms: float) -> float:
    """2 × MACs × batch / time, in TFLOP/s (``flops_per_sample`` already counts a MAC as two)."""
    return flops_per_sample * batch / (median_ms / 1e3) / 1e12


def raised_to(peak: Peak, best_achieved: float) -> Peak:
    """A measured peak raised to the best rate seen in the run (a data-sheet peak is left as it is)."""
    if peak.measured and best_achieved > peak.tflops:
        return Peak(best_achieved, f"{peak.source}, raised to the best rate a model achieved in this run", True)
    return peak
