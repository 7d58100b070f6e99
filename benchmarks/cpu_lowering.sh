#!/usr/bin/env bash
# Latency-aware lowering on this CPU: gated (dense-masked) vs always-grouped (`--tune off`) vs tuned for batch 1
# and for batch 32, all timed in one `prunex bench` run per model.
#   bash benchmarks/cpu_lowering.sh [OUT_DIR]     (about 10 minutes on 2 cores)
set -euo pipefail
out=${1:-runs/cpu-lowering}
export PYTHONPATH=.
python benchmarks/gpu_models.py --out "$out" --smoke
cache="$out/tuning.json"
for model in g_resnext multiresnet maskconnect; do
  for b in 1 32; do
    python -m prunex compress "$out/$model" --out "$out/$model/compressed-tuned-b$b" --force --tune cache \
      --target-device cpu --target-batch "$b" --tuning-cache "$cache" > /dev/null
  done
  python -m prunex bench "$out/$model" --device cpu --backend eager --batch 1,32 --warmup 10 --iters 100 \
    --out "$out/bench-$model" --no-plots > /dev/null
  mkdir -p benchmarks/results
  cp "$out/bench-$model/bench.json" "benchmarks/results/cpu_lowering_${model}.json"
done
python - "$out" <<'PY'
from prunex.artifacts.bench_report import read_bench
for model in ("g_resnext", "multiresnet", "maskconnect"):
    bench = read_bench(f"benchmarks/results/cpu_lowering_{model}.json")
    rows = {(r.kind, r.batch): r.median_ms for r in bench.measured}
    for b in (1, 32):
        cells = "  ".join(f"{k} {rows[(k, b)]:.3f}" for k in
                          ("gated", "compressed", "compressed-tuned-b1", "compressed-tuned-b32") if (k, b) in rows)
        print(f"{model:12s} batch {b:2d}: {cells}")
PY
