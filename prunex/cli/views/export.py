"""How ``prunex export`` says what an INT8 export did."""

from __future__ import annotations

from typing import Any


def int8_lines(details: dict[str, Any]) -> list[str]:
    """What an INT8 export did, for the console (nothing for other precisions)."""
    int8 = details.get("int8")
    if not int8:
        return []
    done = len(int8["quantized_layers"])
    lines = [f"int8: {done} layers quantized ({int8['observer']} observer, {int8['calibration_images']} images)"]
    tuning = int8.get("tuning")
    if tuning:
        ms = ", ".join(f"{k} {v:.3f}" for k, v in tuning["network_ms"].items())
        kept = int8["kept_float"]
        faster = sum(layer["int8"] for layer in tuning["layers"])
        lines.append(f"int8 tuning: {faster} of {len(tuning['layers'])} layers ran faster in int8 on their own")
        lines.append(f"int8 tuning: networks timed end to end (ms at the target batch): {ms}; kept {tuning['network']}")
        if kept and not done:
            lines.append("no int8 network was faster than fp32 end to end: the model is written in floating point")
        elif kept:
            lines.append(f"left in floating point (not faster in int8): {', '.join(kept)}")
    return lines
