#!/usr/bin/env bash
# The GPU benchmark in one command (for a lent GPU machine: no install, run from the repository root).
#   bash benchmarks/gpu_bench.sh [OUT_DIR]
# Builds the models (benchmarks/gpu_models.py), compresses G-ResNeXt-50 a second time tuned for the compile backend
# at batch 32 fp16, then times gated, compressed, tuned and the reference users would deploy instead (torchvision
# ResNeXt-50 for G-ResNeXt-50; the plain zoo network of the same depth for the CIFAR families) with eager PyTorch,
# CUDA graphs, torch.compile as deployed (freezing + CUDA graphs), ONNX Runtime and TensorRT where present, at batch
# 1 and 32 in fp32 and fp16, with each row's share of the GPU's peak. Copies every bench.json to benchmarks/results/.
set -euo pipefail
out=${1:-runs/gpu}
export PYTHONPATH=.
python benchmarks/gpu_models.py --out "$out"
python -m prunex compress "$out/g_resnext50" --out "$out/g_resnext50/compressed-tuned" --force --calibration 8 \
  --tune full --target-device cuda --target-dtype fp16 --target-batch 32 --channels-last --target-backend compile
gpu=$(python -c "import torch; print(torch.cuda.get_device_name().replace(' ', '_'))")
mkdir -p benchmarks/results
for model in g_resnext50 maskconnect_29_64_8 multiresnet_14_10; do
  python -m prunex bench "$out/$model" --device cuda --batch 1,32 --dtype fp32,fp16 \
    --backend eager,cuda-graphs,compile,onnxruntime,tensorrt --warmup 20 --iters 200 --out "$out/bench-$model"
  cp "$out/bench-$model/bench.json" "benchmarks/results/gpu_${gpu}_${model}.json"
done
