#!/usr/bin/env bash
# The GPU benchmark of issue 5 in one command (for a lent GPU machine: no install, run from the repository root).
#   bash benchmarks/gpu_bench.sh [OUT_DIR]
# Builds the models (benchmarks/gpu_models.py), then times gated vs compressed with eager PyTorch, CUDA graphs and
# torch.compile at batch 1 and 32, fp32 and fp16, and copies bench.json to benchmarks/results/.
set -euo pipefail
out=${1:-runs/gpu}
export PYTHONPATH=.
python benchmarks/gpu_models.py --out "$out"
for model in g_resnext50 maskconnect_29_64_8 multiresnet_14_10; do
  python -m prunex bench "$out/$model" --device cuda --batch 1,32 --dtype fp32,fp16 \
    --backend eager,cuda-graphs,compile,onnxruntime,tensorrt --warmup 20 --iters 200 --out "$out/bench-$model"
  gpu=$(python -c "import torch; print(torch.cuda.get_device_name().replace(' ', '_'))")
  mkdir -p benchmarks/results
  cp "$out/bench-$model/bench.json" "benchmarks/results/gpu_${gpu}_${model}.json"
done
