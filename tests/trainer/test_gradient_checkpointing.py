"""Gradient checkpointing trades compute for memory only: the update it takes is the same."""

from __future__ import annotations

import torch
from test_ddp import _groups


def _step(checkpointing: bool):
    from grpo_fast.trainer.config import GRPOConfig
    from grpo_fast.trainer.loop import GRPOTrainer
    from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model

    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    cfg = GRPOConfig(toy="next_digit", learning_rate=1e-2, loss_type="dapo", beta=0.05, max_completion_length=3,
                     use_chat_template=False, gradient_checkpointing=checkpointing)
    t = GRPOTrainer(cfg, build_tiny_model(tok, seed=0), tok, [], None)
    assert t.model.is_gradient_checkpointing == checkpointing
    t.train_on_groups(_groups(t.tokenizer, "a") + _groups(t.tokenizer, "b"))
    return [p.grad.detach().clone() for p in t.model.parameters()]


def test_same_gradients_with_and_without_checkpointing():
    plain, checkpointed = _step(False), _step(True)
    assert any(g.abs().sum() > 0 for g in plain)
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
