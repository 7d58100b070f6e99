"""Achieved FLOP/s against the device's peak: the counts, the peaks, and the share that never exceeds 1."""

import pytest
import torch
from torch import nn

from prunex.artifacts.bench_report import BenchRow, RowStatus
from prunex.benchmarking.run import add_roofline
from prunex.runtime.flop_count import forward_flops
from prunex.runtime.roofline import Peak, achieved_tflops, measure_peak, table_peak


def test_flops_count_a_multiply_add_as_two_and_grouped_convolutions_at_their_real_size():
    assert forward_flops(nn.Linear(10, 20), (10,)) == 2 * 10 * 20
    conv = nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False)
    assert forward_flops(conv, (4, 5, 5)) == 2 * (8 * (4 // 2) * 9) * 25  # half the MACs of the dense conv


def test_achieved_rate_is_two_macs_times_batch_over_time():
    # 1 GFLOP per sample, 32 samples in 4 ms: 8 TFLOP/s
    assert achieved_tflops(10**9, 32, 4.0) == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("name", "dtype", "tf32", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", torch.float16, True, 989.4),
        ("NVIDIA H100 PCIe", torch.float16, True, 756.0),  # not the SXM figure
        ("NVIDIA H200", torch.float32, True, 494.7),  # TF32 tensor cores when cuDNN may use them
        ("NVIDIA H200", torch.float32, False, 66.9),
        ("Tesla T4", torch.float32, True, 8.1),  # no TF32 on Turing
        ("NVIDIA A100-SXM4-80GB", torch.bfloat16, False, 312.0),
    ],
)
def test_known_gpus_take_their_data_sheet_peak(name, dtype, tf32, tflops):
    peak = table_peak(name, dtype, tf32)
    assert peak is not None and peak.tflops == tflops and not peak.measured


def test_an_unknown_device_has_no_table_peak_and_gets_a_measured_one():
    assert table_peak("Imaginary GPU 9000", torch.float16, True) is None
    peak = measure_peak(torch.device("cpu"), torch.float32, seconds=0.05)
    assert peak.measured and 0 < peak.tflops < 100  # a 2-core CPU, not a data centre


def _row(dtype: str, tflops: float | None, status: RowStatus = RowStatus.OK) -> BenchRow:
    return BenchRow(
        model="m", kind="gated", group="g", backend="eager", dtype=dtype, batch=1, status=status, tflops=tflops
    )


def test_a_measured_peak_is_raised_to_the_best_rate_so_no_share_exceeds_one():
    rows = [_row("fp32", 0.5), _row("fp32", 2.0), _row("fp32", None, RowStatus.UNAVAILABLE)]
    used = add_roofline(rows, {"fp32": Peak(1.0, "measured: matmul", measured=True)})
    assert used["fp32"].tflops == 2.0 and "raised" in used["fp32"].source
    assert [r.peak_share for r in rows[:2]] == [0.25, 1.0] and "peak_share" not in rows[2].to_json()


def test_a_data_sheet_peak_is_kept():
    rows = [_row("fp16", 100.0)]
    used = add_roofline(rows, {"fp16": Peak(989.4, "data sheet", measured=False)})
    assert used["fp16"].tflops == 989.4 and rows[0].peak_share == pytest.approx(100 / 989.4)
