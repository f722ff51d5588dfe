"""`--report-to wandb` writes a real offline Weights & Biases run (no network, no account)."""

from __future__ import annotations

import glob
import time

import pytest


def test_metrics_reach_an_offline_wandb_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    from grpo_fast.metrics import MetricsLogger

    log = MetricsLogger(tmp_path, report_to=("wandb",))
    assert log.unavailable == []
    assert log.wandb_mode == "offline" and log.notes == []  # WANDB_MODE decided: nothing to explain
    for step in range(1, 4):
        log.log(step, {"reward": 0.25 * step, "kl": 0.01, **({"eval/accuracy": 0.5} if step == 3 else {})})
    log.close()
    (run_file,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    # The run's record log holds the history rows under the names we logged. wandb's service
    # process writes it and, on a loaded machine, may still be flushing after finish() returns
    # (seen once in CI: only the file header was there yet), so give it time.
    deadline = time.monotonic() + 60
    while True:
        data = open(run_file, "rb").read()
        if (b"train/reward" in data and b"train/kl" in data and b"eval/accuracy" in data) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert b"train/reward" in data and b"train/kl" in data
    # evaluations keep their own names (not train/eval/...)
    assert b"eval/accuracy" in data and b"train/eval" not in data
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 3
