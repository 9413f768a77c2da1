#!/usr/bin/env bash
# The GPU check, prepared for a lent GPU machine: one run, under 8 minutes on one GPU.
#   1. training MFU of the paper-size face and body denoisers (bf16 autocast, TF32, fused AdamW)
#      against the bf16 matmul peak measured in the same run;
#   2. the sampling real-time factor of one 20 s clip, face + body, 5 repetitions;
#   3. every pipeline with `kedro run --env paper` on CUDA, a few steps each.
# Usage: scripts/gpu_check.sh   (from a checkout with `make install` done; PYTHON/KEDRO override)
set -euo pipefail
cd "$(dirname "$0")/.."
export KEDRO_DISABLE_TELEMETRY=1
PYTHON=${PYTHON:-.venv/bin/python}
KEDRO=${KEDRO:-.venv/bin/kedro}

"$PYTHON" - <<'PY'
import torch
if not torch.cuda.is_available():
    raise SystemExit("gpu_check: no CUDA device visible to torch " + torch.__version__)
print("gpu:", torch.cuda.get_device_name(), "torch", torch.__version__)
PY

echo "== 1. training MFU, paper size, upstream's batch (4 x 600 frames) and a GPU-sized one (32)"
timeout 150 "$PYTHON" benchmarks/bench_training_mfu.py --batch 4
timeout 150 "$PYTHON" benchmarks/bench_training_mfu.py --batch 32

echo "== 2. sampling real-time factor, 20 s clip, face + body, 5 repetitions, paper size"
timeout 150 "$PYTHON" benchmarks/bench_sampling_rtf.py --size paper

echo "== 3. every pipeline, --env paper, on CUDA, a few steps each"
steps=""
for model in vq guide face pose; do
  steps+="${model}.train.steps=20,${model}.train.checkpoint_every=10,${model}.train.log_every=10,"
done
start=$(date +%s)
timeout 240 "$KEDRO" run --env paper \
  --params "${steps}sample.max_clips=2,sample.steps=50,sample.device=cuda"
echo "kedro run --env paper: $(( $(date +%s) - start )) s, exit 0"
