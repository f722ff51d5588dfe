"""`--report-to wandb` writes a real offline Weights & Biases run (no network, no account)."""

from __future__ import annotations

import glob

import pytest


def test_metrics_reach_an_offline_wandb_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    from grpo_fast.metrics import MetricsLogger

    log = MetricsLogger(tmp_path, report_to=("wandb",))
    assert log.unavailable == []
    for step in range(1, 4):
        log.log(step, {"reward": 0.25 * step, "kl": 0.01})
    log.close()
    (run_file,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    data = open(run_file, "rb").read()
    # The run's record log holds the history rows under the names we logged.
    assert b"train/reward" in data and b"train/kl" in data
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 3
