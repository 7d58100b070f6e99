"""How an INT8 activation's range is read from calibration images (a user's choice, so it imports nothing heavy:
``--help`` reads it). :mod:`prunex.runtime.onnx_int8` maps it to ONNX Runtime's calibration methods."""

from __future__ import annotations

from enum import StrEnum


class Observer(StrEnum):
    """How an activation's range is read from the calibration images. minmax is the default: on the digits run it
    kept 100 % top-1 agreement, as entropy did, percentile 99.44 % (benchmarks/results/int8_quantizers.json)."""

    MINMAX = "minmax"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"
