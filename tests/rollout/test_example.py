"""examples/tir_math.py runs end to end on CPU (tiny random model, real daemon, one step)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tir_math_example_runs_end_to_end(sandbox, tmp_path):
    env = dict(os.environ, GRPO_SANDBOX="unix:" + sandbox.socket_path)
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, str(ROOT / "examples" / "tir_math.py"), "--steps", "1", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=280)
    assert p.returncode == 0, p.stderr[-2000:]
    [line] = (out / "metrics.jsonl").read_text().splitlines()
    m = json.loads(line)
    for k in ("tools/calls_per_rollout", "tools/turns_per_rollout", "tools/time_s", "tools/wait_s", "reward"):
        assert k in m, k
