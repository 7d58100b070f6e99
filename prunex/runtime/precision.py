"""The numeric precisions prunex exports and times (a user's choice, so it imports nothing heavy: ``--help`` reads
it): ``export --precision`` and ``bench --precision`` take the same words."""

from __future__ import annotations

from enum import StrEnum

from prunex.runtime.choices import parse_choice


class Precision(StrEnum):
    """fp32 and fp16 run the network's own arithmetic in that float type; int8 is post-training static
    quantization (symmetric Q/DQ, calibrated on the run's data) and runs only on ONNX Runtime and TensorRT."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


def parse_precision(value: Precision | str) -> Precision:
    """The precision ``value`` spells; ValueError listing the choices otherwise."""
    return parse_choice(Precision, value, "precision")
