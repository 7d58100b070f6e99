"""Which INT8 quantizer prunex uses, by measurement: ONNX Runtime's ``quantize_static`` (each observer) against
torchao's PT2E flow exported through torch.onnx, on a trained run's compressed model (default: the digits run).

    python benchmarks/int8_quantizers.py [RUN]      # torchao is optional: PYTHONPATH=DIR_WITH_TORCHAO to include it

Both are symmetric int8 with zero-point 0 (weights per output channel, activations per tensor), calibrated on the
same 512 training images and judged on the test split against the fp32 model: top-1 agreement, accuracy, the
error as a share of the output scale, and ONNX Runtime latency at batch 1 and 32 against fp32, timed in
alternating rounds. Writes benchmarks/results/int8_quantizers.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from prunex.data import labelled_images
from prunex.exporters.sources import load_model
from prunex.runtime.int8_observer import Observer
from prunex.runtime.onnx_int8 import QuantizeSpec, quantize_int8, zero_points
from prunex.runtime.onnx_program import export_onnx
from prunex.runtime.timing import summarise, time_interleaved

ROOT = Path(__file__).resolve().parent


def torchao_int8(module: torch.nn.Module, calibration: torch.Tensor, path: Path) -> Path | None:
    """torchao's PT2E flow with a symmetric configuration (HistogramObserver activations, per-channel symmetric
    weights), exported with a dynamic batch; None when torchao is not importable."""
    try:
        from torchao.quantization.pt2e import HistogramObserver, PerChannelMinMaxObserver
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import QuantizationConfig, QuantizationSpec
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import X86InductorQuantizer
    except ImportError:
        return None
    act = QuantizationSpec(
        dtype=torch.int8,
        quant_min=-128,
        quant_max=127,
        qscheme=torch.per_tensor_symmetric,
        observer_or_fake_quant_ctr=HistogramObserver.with_args(eps=2**-12),
    )
    weight = QuantizationSpec(
        dtype=torch.int8,
        quant_min=-64,
        quant_max=63,
        qscheme=torch.per_channel_symmetric,
        ch_axis=0,
        observer_or_fake_quant_ctr=PerChannelMinMaxObserver.with_args(eps=2**-12),
    )
    quantizer = X86InductorQuantizer().set_global(QuantizationConfig(act, act, weight, None))
    example = calibration[:2]
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(module.eval(), (example,), dynamic_shapes=({0: batch},)).module()
    prepared = prepare_pt2e(program, quantizer)
    for i in range(0, len(calibration), 32):
        prepared(calibration[i : i + 32])
    converted = convert_pt2e(prepared)
    onnx_program = torch.onnx.export(
        converted,
        (example,),
        dynamo=True,
        dynamic_shapes=({0: batch},),
        input_names=["input"],
        output_names=["logits"],
        opset_version=20,
    )
    onnx_program.save(str(path))
    return path


def judge(path: Path, fp32_logits: np.ndarray, images: np.ndarray, labels: np.ndarray) -> dict:
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": images})[0]
    points = zero_points(onnx.load(str(path)))
    return {
        "top1_agreement": float((out.argmax(1) == fp32_logits.argmax(1)).mean()),
        "accuracy": float((out.argmax(1) == labels).mean()),
        "max_rel_err": float(np.abs(out - fp32_logits).max() / np.abs(fp32_logits).max()),
        "quantize_nodes": len(points),
        "symmetric": bool(points) and all(zp.dtype == np.int8 and not zp.any() for zp in points.values()),
    }


def latencies(paths: dict[str, Path], batch: int, shape: tuple[int, ...]) -> dict[str, float]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    runs = []
    for path in paths.values():
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        runs.append(lambda s=session: s.run(None, {"input": x}))
    samples = time_interleaved(runs, cuda=False, warmup=10, iters=200 if batch == 1 else 60)
    return {name: summarise(s, batch).median_ms for name, s in zip(paths, samples, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", nargs="?", default="runs/maskconnect_cifar-digits")
    parser.add_argument("--out", default=str(ROOT / "results" / "int8_quantizers.json"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    loaded = load_model(Path(args.run) / "compressed")
    calibration, _ = labelled_images(loaded.dataset, "train", 512)
    images, labels = labelled_images(loaded.dataset, "test", 1000)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp32 = export_onnx(loaded.module, torch.zeros(1, *loaded.input_shape), tmp / "fp32.onnx")
        with torch.no_grad():
            logits = loaded.module(images).numpy()
        rows, paths = {}, {"fp32": fp32}
        for observer in Observer:
            name = f"onnxruntime quantize_static ({observer.value})"
            paths[name] = quantize_int8(
                fp32, tmp / f"{observer.value}.onnx", calibration.numpy(), QuantizeSpec(observer)
            )
        torchao = torchao_int8(loaded.module, calibration, tmp / "torchao.onnx")
        if torchao is not None:
            paths["torchao PT2E (histogram, symmetric)"] = torchao
        for name, path in paths.items():
            rows[name] = (
                judge(path, logits, images.numpy(), labels.numpy())
                if name != "fp32"
                else {"accuracy": float((logits.argmax(1) == labels.numpy()).mean())}
            )
        for batch in (1, 32):
            for name, ms in latencies(paths, batch, loaded.input_shape).items():
                rows[name][f"ort_b{batch}_ms"] = ms
    for row in rows.values():
        for batch in (1, 32):
            row[f"vs_fp32_b{batch}"] = rows["fp32"][f"ort_b{batch}_ms"] / row[f"ort_b{batch}_ms"]
    result = {
        "command": "python benchmarks/int8_quantizers.py " + args.run,
        "model": str(Path(args.run) / "compressed"),
        "calibration_images": len(calibration),
        "test_images": len(images),
        "threads": torch.get_num_threads(),
        "onnxruntime": ort.__version__,
        "torchao": None if torchao is None else __import__("torchao").__version__,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| quantizer | top-1 agreement | accuracy | max rel err | ORT b1 vs fp32 | ORT b32 vs fp32 |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        agree = f"{100 * r['top1_agreement']:.2f} %" if "top1_agreement" in r else "—"
        err = f"{r['max_rel_err']:.3f}" if "max_rel_err" in r else "—"
        print(
            f"| {name} | {agree} | {100 * r['accuracy']:.2f} % | {err} | {r['vs_fp32_b1']:.2f}× | "
            f"{r['vs_fp32_b32']:.2f}× |"
        )


if __name__ == "__main__":
    main()
