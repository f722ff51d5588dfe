"""Cross-check with TRL: on identical inputs, TRL's `GRPOTrainer._compute_loss` and our `grpo_loss` give
the same loss, gradient and clip fractions for every aggregation we share. Skipped without trl.

TRL's method is called on a bare instance carrying just the attributes it reads, with the model's
log-probs injected, so no model, dataset or accelerator is involved."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from naive_reference import OneProcess

from grpo_fast.trainer.loss import grpo_loss

trl_grpo = pytest.importorskip("trl.trainer.grpo_trainer")




def _trl_loss(lp, old, ref, adv, mask, *, loss_type, eps_low, eps_high, beta, level, max_len):
    t = trl_grpo.GRPOTrainer.__new__(trl_grpo.GRPOTrainer)
    t.__dict__.update(
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level=level, beta=beta,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        loss_type=loss_type, epsilon_low=eps_low, epsilon_high=eps_high, use_vllm=False,
        vllm_importance_sampling_correction=False, model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1, max_completion_length=max_len, accelerator=OneProcess(),
        _entropy_bonus_enabled=False, aux_loss_enabled=False, _metrics={"train": defaultdict(list)},
    )
    t._get_per_token_logps_and_entropies = lambda *a, **k: (lp, torch.zeros_like(lp), None)
    B, T = lp.shape
    inputs = {
        "prompt_ids": torch.ones(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.ones(B, T, dtype=torch.long), "completion_mask": mask,
        "advantages": adv, "old_per_token_logps": old, "ref_per_token_logps": ref,
        "num_items_in_batch": mask.sum(),
    }
    loss = t._compute_loss(None, inputs)
    m = t._metrics["train"]
    return loss, m["clip_ratio/low_mean"][-1], m["clip_ratio/high_mean"][-1]


CASES = [
    ("grpo", 0.2, 0.2, 0.0, "token"),
    ("grpo", 0.2, 0.28, 0.04, "token"),
    ("bnpo", 0.2, 0.28, 0.0, "token"),
    ("dapo", 0.2, 0.28, 0.1, "token"),
    ("dr_grpo", 0.2, 0.2, 0.02, "token"),
    ("grpo", 0.03, 0.04, 0.0, "sequence"),
    ("dapo", 10.0, 10.0, 0.001, "token"),  # the deepseek-r1 clip
]


@pytest.mark.parametrize(("loss_type", "eps_low", "eps_high", "beta", "level"), CASES,
                         ids=[f"{c[0]}-{c[4]}-eps{c[1]}/{c[2]}-beta{c[3]}" for c in CASES])
def test_same_loss_gradient_and_clip_fractions_as_trl(loss_type, eps_low, eps_high, beta, level):
    g = torch.Generator().manual_seed(11)
    B, T = 6, 5
    base = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    old = base + torch.randn(B, T, generator=g, dtype=torch.float64) * (0.02 if level == "sequence" else 0.3)
    ref = base + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.2
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    mask = (torch.rand(B, T, generator=g) > 0.25).to(torch.float64)
    mask[0] = 0.0
    mask[1, 0] = 1.0

    lp_ours = base.clone().requires_grad_(True)
    ours = grpo_loss(lp_ours, old, adv, mask, epsilon_low=eps_low, epsilon_high=eps_high, beta=beta,
                     ref_logps=ref if beta else None, loss_type=loss_type, importance_sampling_level=level,
                     max_completion_length=7)
    (g_ours,) = torch.autograd.grad(ours.loss, lp_ours)

    lp_trl = base.clone().requires_grad_(True)
    trl_loss, low, high = _trl_loss(lp_trl, old, ref, adv, mask, loss_type=loss_type, eps_low=eps_low,
                                    eps_high=eps_high, beta=beta, level=level, max_len=7)
    (g_trl,) = torch.autograd.grad(trl_loss, lp_trl)

    assert abs(ours.loss.item() - trl_loss.item()) < 1e-9
    assert torch.allclose(g_ours, g_trl, atol=1e-9, rtol=0)
    assert ours.clip_low == pytest.approx(low, abs=1e-12) and ours.clip_high == pytest.approx(high, abs=1e-12)
