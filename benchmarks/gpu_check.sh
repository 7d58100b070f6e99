#!/usr/bin/env bash
# Every GPU check in one call, in at most 8 minutes on one H100 / H200 (no install; run from the repository root):
#   bash benchmarks/gpu_check.sh OUT            # on the GPU machine
#   GPU_CHECK_SMOKE=1 bash benchmarks/gpu_check.sh OUT   # the same steps, tiny, on the CPU (what the tests run)
# Writes, all under OUT:
#   pytest-gpu.xml + pytest-gpu.json   `pytest -m gpu` (JUnit XML and the counts)
#   train_speed.json                   the training-step table, short (gated vs plain twin, ops and time per step)
#   bench.json                         gated / compressed / reference: eager, CUDA graphs, torch.compile as deployed,
#                                      batch 1 and 32, fp16 (G-ResNeXt-50, MaskConnect {29,64,8}, Multi-ResNet 14×10),
#                                      one bench run
#   tuned-report.json                  G-ResNeXt-50 compressed with --tune full for CUDA graphs, fp16, batch 32
#   summary.json                       each step: exit status and seconds (a step over its time limit is cut off,
#                                      recorded, and the next one runs; the limits add up to 455 s)
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_check.sh OUT}
mkdir -p "$out"
export PYTHONPATH=.
smoke=${GPU_CHECK_SMOKE:-}
if [[ -n "$smoke" ]]; then
  device=cpu backends=eager dtype=fp32 models_args=--smoke
  models="g_resnext maskconnect multiresnet" tuned=g_resnext train_args="--quick --device cpu --cases multiresnet_14_10 --iters 2"
else
  device=cuda backends=eager,cuda-graphs,compile dtype=fp16 models_args=
  models="g_resnext50 maskconnect_29_64_8 multiresnet_14_10" tuned=g_resnext50 train_args="--iters 10"
fi
steps=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, record status and duration
  local name=$1 seconds=$2
  shift 2
  local start=$SECONDS
  timeout "$seconds" "$@" >"$out/$name.log" 2>&1
  local status=$?
  steps+=("{\"step\": \"$name\", \"status\": $status, \"seconds\": $((SECONDS - start))}")
  echo "$name: exit $status in $((SECONDS - start)) s"
}

if [[ -z "$smoke" ]]; then
  step pytest-gpu 60 python -m pytest -q -m gpu --junitxml="$out/pytest-gpu.xml" -p no:cacheprovider
  python - "$out" <<'EOF'
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(f"{sys.argv[1]}/pytest-gpu.xml").getroot()
suite = root if root.tag == "testsuite" else root.find("testsuite")
counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
open(f"{sys.argv[1]}/pytest-gpu.json", "w").write(json.dumps(counts, indent=2) + "\n")
EOF
fi
step train-speed 45 python benchmarks/train_speed.py $train_args --out "$out/train_speed.json"
step models 90 python benchmarks/gpu_models.py --out "$out/runs" $models_args
sources=()
for model in $models; do sources+=("$out/runs/$model"); done
step bench 200 python -m prunex bench "${sources[@]}" --device "$device" --batch 1,32 --dtype "$dtype" \
  --backend "$backends" --warmup 10 --iters 50 --no-plots --out "$out/runs/bench"
cp "$out/runs/bench/bench.json" "$out/bench.json" 2>/dev/null
if [[ -n "$smoke" ]]; then
  tune_target=(--target-device cpu --target-batch 2)
else
  tune_target=(--target-device cuda --target-dtype fp16 --target-batch 32 --channels-last --target-backend cuda-graphs)
fi
step tuned 60 python -m prunex compress "$out/runs/$tuned" --out "$out/runs/$tuned/compressed-tuned" --force \
  --calibration 8 --tune full "${tune_target[@]}" --tuning-cache "$out/runs/tuning.json"
cp "$out/runs/$tuned/compressed-tuned/report.json" "$out/tuned-report.json" 2>/dev/null
is_smoke=false; [[ -n "$smoke" ]] && is_smoke=true
(IFS=,; echo "{\"smoke\": $is_smoke, \"steps\": [${steps[*]}]}") >"$out/summary.json"
python -c "import json, sys; json.load(open(sys.argv[1]))" "$out/summary.json"
