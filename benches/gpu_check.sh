#!/usr/bin/env bash
# GPU acceptance for the training engine, on one CUDA GPU, no downloads (about 5-8 minutes on an H100):
# a random-init model with Qwen2.5-0.5B's architecture is built locally, then benches/gpu_check.py runs
# vLLM colocate (step, weight-sync proof, sleep mode), vLLM server (step, weight-sync proof over HTTP)
# and bf16 steps, and benches/bench_trainer.py compares grpo-fast with TRL, both sampling with vLLM.
# Needs: torch with CUDA, vllm 0.32 (`pip install -e '.[dev,vllm]'`), trl. Results under ${OUT:-gpu-check}.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
PY=${PYTHON:-python3}
export VLLM_NO_USAGE_STATS=1 PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
missing=$("$PY" - <<'EOF'
import importlib.util as u
need = ["torch", "transformers", "vllm", "trl", "grpo_fast"]
print(" ".join(m for m in need if u.find_spec(m) is None))
EOF
)
if [ -n "$missing" ]; then
  echo "missing Python packages: $missing (install with pip install -e '.[dev,vllm]')"
  exit 2
fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'torch sees no CUDA device')" || exit 2

model="$out/qwen2.5-0.5b-random"
[ -d "$model" ] || "$PY" -m grpo_fast.trainer.local_model "$model" --preset qwen2.5-0.5b

status=0
timeout 420 "$PY" benches/gpu_check.py --model "$model" --json "$out/checks.json" 2>&1 | tee "$out/checks.log" \
  | grep -E '^(device|\[ok\]|\[FAIL\]|[0-9]+ passed)'
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

timeout 300 "$PY" benches/bench_trainer.py --sampler vllm --rounds 1 --steps 4 2>&1 | tee "$out/bench_trainer.log" | tail -25
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
exit $status
