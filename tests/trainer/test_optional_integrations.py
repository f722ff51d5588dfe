"""Optional integrations, each skipped cleanly when its package is missing: TensorBoard logging and
LoRA adapters via peft."""

from __future__ import annotations

import pytest
import torch

from grpo_fast.trainer.config import GRPOConfig
from grpo_fast.trainer.run import run_training


def test_tensorboard_mirror_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = GRPOConfig(toy="next_digit", max_steps=2, output_dir=str(tmp_path), report_to=("tensorboard",),
                     save_final=False)
    run_training(cfg, live=False, explicit={"max_steps"})
    ev = EventAccumulator(str(tmp_path / "tensorboard"))
    ev.Reload()
    assert "train/reward" in ev.Tags()["scalars"]
    assert [e.step for e in ev.Scalars("train/reward")] == [1, 2]


def test_missing_logger_is_reported_not_fatal(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *a, **k):
        if name == "wandb":
            raise ImportError("no wandb here")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    from grpo_fast.metrics import MetricsLogger

    log = MetricsLogger(tmp_path, report_to=("wandb",))
    assert log.unavailable == ["wandb"]


def test_lora_trains_only_the_adapters():
    pytest.importorskip("peft")
    from grpo_fast.trainer.loop import GRPOTrainer
    from grpo_fast.trainer.toy_tasks import (
        ToyExactVerifier,
        build_char_tokenizer,
        build_tiny_model,
        get_toy_task,
    )

    torch.manual_seed(0)
    tok = build_char_tokenizer()
    cfg = GRPOConfig(toy="next_digit", use_lora=True, lora_r=4, lora_alpha=8, learning_rate=1e-2,
                     max_completion_length=2, prompts_per_step=16, use_chat_template=False)
    t = GRPOTrainer(cfg, build_tiny_model(tok), tok, get_toy_task("next_digit").records, ToyExactVerifier())
    named = dict(t.model.named_parameters())
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in named.items()}
    for _ in range(3):
        t.step()
    changed = {n for n, p in t.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable
