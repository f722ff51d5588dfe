#!/usr/bin/env bash
# The main demo, end to end on a fresh machine: install, verify the example rollouts with the
# math verifier, summarise them, write advantages, then train a tiny model with GRPO on CPU
# until it learns its toy task (about a minute). Outputs land in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-runs/demo}
mkdir -p "$OUT"

"$PY" -m pip install -q -e '.[train]'

echo "==> verify: score 1,600 responses against their gold answers"
grpo-fast verify --verifier math examples/arithmetic_groups.jsonl -o "$OUT/verified.jsonl"

echo "==> stats: groups, pass rate, zero-std groups, advantages"
grpo-fast stats "$OUT/verified.jsonl"

echo "==> advantages: write group-relative advantages into every response"
grpo-fast advantages "$OUT/verified.jsonl" -o "$OUT/advantages.jsonl"

echo "==> train: a tiny random-init model learns 'd=' -> (d+1) mod 10 with GRPO on CPU"
grpo-fast train --toy next_digit --out "$OUT/train" --overwrite   # the demo owns this folder: a rerun starts afresh

echo "==> done: $OUT/train/metrics.jsonl and $OUT/train/curves.png"
