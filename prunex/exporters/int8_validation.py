"""Validation that fits quantization: an INT8 model is not the float one to 1e-4, so it is judged as a classifier.

The fp32 model (the compressed network in PyTorch) is the reference, on held-out images of the run's dataset (its
test split, never the calibration images): top-1 agreement with it (required >= 99 % by default), the test
accuracy of both (a drop of at most 0.5 points by default), and the error as a share of the output scale,
max |Δ| / max |reference|, reported but not judged (INT8 logits move by a few per cent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from prunex.runtime.backends import Backend
from prunex.runtime.comparison import comparable, compare, exact_float32, scale_note

EVAL_BATCH = 64


@dataclass(frozen=True)
class Int8Thresholds:
    min_agreement: float = 0.99  # top-1 agreement with the fp32 model, as a fraction
    max_accuracy_drop: float = 0.5  # test accuracy, in percentage points

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_agreement <= 1.0 or not 0.0 <= self.max_accuracy_drop <= 100.0:
            raise ValueError(
                f"need 0 <= min agreement <= 1 and 0 <= max accuracy drop <= 100 points, got {self.min_agreement}, "
                f"{self.max_accuracy_drop}"
            )


@dataclass
class Int8Validation:
    target: Backend  # onnxruntime or tensorrt
    images: int  # held-out images compared on
    source: str  # where they came from, e.g. "digits test split"
    top1_agreement: float
    min_top1_agreement: float
    accuracy_fp32: float
    accuracy_int8: float
    max_accuracy_drop: float  # points
    max_abs_err: float
    max_rel_err: float  # max |Δ| / max |fp32 output|
    passed: bool
    precision: str = "int8"
    output_scale: float = 0.0  # max |fp32 output|

    @property
    def accuracy_drop(self) -> float:
        """fp32 accuracy − int8 accuracy, in percentage points."""
        return 100 * (self.accuracy_fp32 - self.accuracy_int8)

    @property
    def message(self) -> str:
        verdict = "passes" if self.passed else "FAILS"
        if not comparable(self.output_scale):
            verdict = "cannot be checked"
        return (
            f"{self.target} (int8) {verdict} against the fp32 model on {self.images} held-out {self.source} images: "
            f"top-1 agreement {100 * self.top1_agreement:.2f}% (required {100 * self.min_top1_agreement:g}%), "
            f"accuracy {100 * self.accuracy_fp32:.2f}% fp32 → {100 * self.accuracy_int8:.2f}% int8 "
            f"(drop {self.accuracy_drop:.2f} points, allowed {self.max_accuracy_drop:g}), max |Δ| "
            f"{self.max_abs_err:.3g} = {self.max_rel_err:.3g} of the output scale {self.output_scale:.3g}"
            + scale_note(self.output_scale, "the fp32 model's output")
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "accuracy_drop_points": self.accuracy_drop, "message": self.message}


def validate_int8(
    target: Backend,
    run: Callable[[np.ndarray], np.ndarray],
    module: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    thresholds: Int8Thresholds,
    source: str,
    batch: int = EVAL_BATCH,
) -> Int8Validation:
    """Compare ``run`` (numpy in, numpy logits out) with ``module`` in float32 on ``images`` with ``labels``, in
    batches of at most ``batch``."""
    module = module.eval().float()
    ref, out = [], []
    for i in range(0, len(images), batch):
        x = images[i : i + batch].float()
        with exact_float32(), torch.no_grad():
            ref.append(module(x))
        out.append(torch.from_numpy(np.asarray(run(x.numpy()))).float())
    reference, output = torch.cat(ref), torch.cat(out)
    errs = compare(reference, output)
    scale, agreement = errs["output_scale"], errs["top1_agreement"]
    acc_fp32 = float((reference.argmax(1) == labels).float().mean())
    acc_int8 = float((output.argmax(1) == labels).float().mean())
    passed = (
        comparable(scale)
        and agreement >= thresholds.min_agreement
        and 100 * (acc_fp32 - acc_int8) <= thresholds.max_accuracy_drop
    )
    return Int8Validation(
        target,
        len(images),
        source,
        agreement,
        thresholds.min_agreement,
        acc_fp32,
        acc_int8,
        thresholds.max_accuracy_drop,
        errs["max_abs_err"],
        errs["max_rel_err"],
        passed,
        output_scale=scale,
    )
