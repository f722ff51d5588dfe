"""The GRPO loss against a deliberately naive reference: explicit Python loops over sequences and
tokens, scalar autograd, if/else for the clip. Loss and gradient must agree to 1e-6 (float64)."""

from __future__ import annotations

import math

import pytest
import torch
from naive_reference import aggregate

from grpo_fast.trainer.loss import grpo_loss


def naive_loss(lp, old, adv, mask, *, eps_low, eps_high, beta, ref, loss_type, level, max_len):
    """One scalar op at a time. The clipped surrogate is written as the PPO case analysis."""
    B, T = len(mask), len(mask[0])
    lo, hi = 1.0 - eps_low, 1.0 + eps_high
    seq_log_ratio = []
    for b in range(B):
        n = sum(mask[b])
        s = lp[b, 0] * 0.0
        for t in range(T):
            if mask[b][t]:
                s = s + (lp[b, t] - old[b, t])
        seq_log_ratio.append(s / n if n else s * 0.0)
    per_tok = [[None] * T for _ in range(B)]
    for b in range(B):
        for t in range(T):
            log_r = seq_log_ratio[b] if level == "sequence" else lp[b, t] - old[b, t]
            r = torch.exp(log_r)
            a = float(adv[b])
            rv = float(r.detach())
            # Clipped ratio: a constant outside [lo, hi] (no gradient), the ratio itself inside.
            clipped = r if lo <= rv <= hi else torch.tensor(lo if rv < lo else hi, dtype=torch.float64)
            unclipped_obj = r * a
            clipped_obj = clipped * a
            obj = unclipped_obj if float(unclipped_obj.detach()) <= float(clipped_obj.detach()) else clipped_obj
            term = -obj
            if beta:
                d = ref[b, t] - lp[b, t]
                term = term + beta * (torch.exp(d) - d - 1.0)
            per_tok[b][t] = term
    return aggregate(per_tok, mask, loss_type, max_len)


def naive_clip_counts(lp, old, adv, mask, eps_low, eps_high, level):
    low = high = n = 0
    for b in range(len(mask)):
        toks = [t for t in range(len(mask[b])) if mask[b][t]]
        seq = sum(float(lp[b, t] - old[b, t]) for t in toks) / len(toks) if toks else 0.0
        for t in toks:
            r = math.exp(seq if level == "sequence" else float(lp[b, t] - old[b, t]))
            n += 1
            low += r < 1 - eps_low and adv[b] < 0
            high += r > 1 + eps_high and adv[b] > 0
    return low / max(n, 1), high / max(n, 1)


def make_inputs(seed: int, B: int = 6, T: int = 7, spread: float = 0.3):
    g = torch.Generator().manual_seed(seed)
    lp = (-torch.rand(B, T, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    old = lp.detach() + torch.randn(B, T, generator=g, dtype=torch.float64) * spread
    ref = lp.detach() + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.2
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    mask = (torch.rand(B, T, generator=g) > 0.3).to(torch.float64)
    mask[1] = 0.0  # an all-masked row (e.g. a completion without a verdict)
    mask[2, 0] = 1.0
    adv[3] = 0.0  # a zero-std group member: advantage exactly 0
    return lp, old, ref, adv, mask


VARIANTS = [
    # (case name, loss kwargs)
    ("grpo_token_symmetric_clip", dict(loss_type="grpo", eps_low=0.2, eps_high=0.2, beta=0.0, level="token")),
    ("grpo_token_with_k3_kl", dict(loss_type="grpo", eps_low=0.2, eps_high=0.2, beta=0.04, level="token")),
    ("dapo_clip_higher", dict(loss_type="dapo", eps_low=0.2, eps_high=0.28, beta=0.0, level="token")),
    ("bnpo_with_kl", dict(loss_type="bnpo", eps_low=0.2, eps_high=0.28, beta=0.1, level="token")),
    ("dr_grpo_constant_normaliser", dict(loss_type="dr_grpo", eps_low=0.2, eps_high=0.2, beta=0.0, level="token")),
    ("dr_grpo_with_kl", dict(loss_type="dr_grpo", eps_low=0.1, eps_high=0.3, beta=0.02, level="token")),
    ("gspo_sequence_ratio", dict(loss_type="grpo", eps_low=3e-2, eps_high=4e-2, beta=0.0, level="sequence")),
    ("gspo_sequence_ratio_dapo_agg_kl", dict(loss_type="dapo", eps_low=0.05, eps_high=0.05, beta=0.01, level="sequence")),
    ("deepseek_r1_epsilon_10_low_clip_inactive", dict(loss_type="grpo", eps_low=10.0, eps_high=10.0, beta=0.001, level="token")),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_loss_and_gradient_match_naive_reference(name, kw, seed):
    lp, old, ref, adv, mask = make_inputs(seed, spread=0.02 if kw["level"] == "sequence" else 0.3)
    max_len = 9
    out = grpo_loss(lp, old, adv, mask, epsilon_low=kw["eps_low"], epsilon_high=kw["eps_high"], beta=kw["beta"],
                    ref_logps=ref if kw["beta"] else None, loss_type=kw["loss_type"],
                    importance_sampling_level=kw["level"], max_completion_length=max_len)
    (g_fast,) = torch.autograd.grad(out.loss, lp)

    lp2 = lp.detach().clone().requires_grad_(True)
    m = mask.tolist()
    ref_loss = naive_loss(lp2, old, adv.tolist(), m, eps_low=kw["eps_low"], eps_high=kw["eps_high"], beta=kw["beta"],
                          ref=ref, loss_type=kw["loss_type"], level=kw["level"], max_len=max_len)
    (g_ref,) = torch.autograd.grad(ref_loss, lp2)

    assert abs(out.loss.item() - ref_loss.item()) < 1e-6
    assert torch.allclose(g_fast, g_ref, atol=1e-6, rtol=0)
    # Masked tokens (and the all-masked row) receive no gradient.
    assert torch.all(g_fast[mask == 0] == 0)
    low, high = naive_clip_counts(lp.detach(), old, adv.tolist(), m, kw["eps_low"], kw["eps_high"], kw["level"])
    assert out.clip_low == pytest.approx(low, abs=1e-12)
    assert out.clip_high == pytest.approx(high, abs=1e-12)


def test_inputs_exercise_both_clip_regions():
    """Guard against a vacuous comparison: the random inputs do hit both clipped regions."""
    counts = []
    for seed in (0, 1, 2):
        lp, old, _, adv, mask = make_inputs(seed)
        counts.append(naive_clip_counts(lp.detach(), old, adv.tolist(), mask.tolist(), 0.2, 0.2, "token"))
    assert any(low > 0 for low, _ in counts) and any(high > 0 for _, high in counts)
    assert all(low + high < 1 for low, high in counts)  # and unclipped tokens too


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
@pytest.mark.parametrize("side", ["at_low_edge", "at_high_edge", "just_below_low", "just_above_high"])
@pytest.mark.parametrize("adv_sign", [1.0, -1.0])
def test_clip_edges(loss_type, side, adv_sign):
    """Ratios exactly on and just beyond 1 - eps and 1 + eps, for both advantage signs."""
    eps = 0.2
    r = {"at_low_edge": 1 - eps, "at_high_edge": 1 + eps, "just_below_low": 1 - eps - 1e-7,
         "just_above_high": 1 + eps + 1e-7}[side]
    old = torch.full((2, 3), -1.0, dtype=torch.float64)
    lp = (old + math.log(r)).requires_grad_(True)
    adv = torch.tensor([adv_sign, -adv_sign], dtype=torch.float64)
    mask = torch.ones(2, 3, dtype=torch.float64)
    out = grpo_loss(lp, old, adv, mask, epsilon_low=eps, epsilon_high=eps, loss_type=loss_type, max_completion_length=3)
    (g,) = torch.autograd.grad(out.loss, lp)
    lp2 = lp.detach().clone().requires_grad_(True)
    ref = naive_loss(lp2, old, adv.tolist(), mask.tolist(), eps_low=eps, eps_high=eps, beta=0.0, ref=None,
                     loss_type=loss_type, level="token", max_len=3)
    (g2,) = torch.autograd.grad(ref, lp2)
    assert abs(out.loss.item() - ref.item()) < 1e-9
    assert torch.allclose(g, g2, atol=1e-9, rtol=0)


def test_beyond_the_clip_the_gradient_vanishes_only_on_the_clipped_side():
    """PPO semantics: with A > 0 a ratio above 1 + eps gets no gradient; with A < 0 it still does."""
    old = torch.zeros(2, 1, dtype=torch.float64)
    lp = torch.full((2, 1), math.log(1.5), dtype=torch.float64, requires_grad=True)
    out = grpo_loss(lp, old, torch.tensor([1.0, -1.0], dtype=torch.float64), torch.ones(2, 1, dtype=torch.float64),
                    epsilon_low=0.2, loss_type="grpo")
    (g,) = torch.autograd.grad(out.loss, lp)
    assert g[0, 0] == 0.0
    assert g[1, 0] != 0.0
    assert out.clip_high == 0.5 and out.clip_low == 0.0


def test_zero_advantages_and_no_kl_give_zero_loss_and_gradient():
    """The control experiment's premise: with A = 0 and beta = 0 nothing is learned."""
    lp, old, _, _, mask = make_inputs(4)
    out = grpo_loss(lp, old, torch.zeros(6, dtype=torch.float64), mask, loss_type="dapo")
    (g,) = torch.autograd.grad(out.loss, lp)
    assert out.loss.item() == 0.0
    assert torch.count_nonzero(g) == 0


def test_epsilon_ten_makes_the_low_clip_inactive():
    """deepseek-r1 preset: 1 - 10 < 0 and ratios are positive, so no token is ever clipped low; only
    ratios above 11 with A > 0 are clipped."""
    old = torch.zeros(1, 4, dtype=torch.float64)
    lp = torch.log(torch.tensor([[1e-6, 0.5, 5.0, 20.0]], dtype=torch.float64)).requires_grad_(True)
    out = grpo_loss(lp, old, torch.tensor([-1.0], dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64),
                    epsilon_low=10.0, loss_type="dapo")
    (g,) = torch.autograd.grad(out.loss, lp)
    assert out.clip_low == 0.0
    assert torch.all(g != 0)  # every token, however small its ratio, gets a gradient
    out = grpo_loss(lp, old, torch.tensor([1.0], dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64),
                    epsilon_low=10.0, loss_type="dapo")
    assert out.clip_high == 0.25  # only the ratio 20 > 11


def test_global_normalisers_make_micro_batches_add_up_to_the_full_batch():
    """Gradient accumulation / DDP: summing micro-batch losses with the global token and sequence
    counts reproduces the full-batch loss for every aggregation."""
    lp, old, ref, adv, mask = make_inputs(7, B=8)
    for loss_type in ("grpo", "dapo", "dr_grpo"):
        full = grpo_loss(lp, old, adv, mask, beta=0.05, ref_logps=ref, loss_type=loss_type, max_completion_length=7).loss
        parts = sum(
            grpo_loss(lp[s], old[s], adv[s], mask[s], beta=0.05, ref_logps=ref[s], loss_type=loss_type,
                      max_completion_length=7, num_items=float(mask.sum()), num_sequences=8.0).loss
            for s in (slice(0, 3), slice(3, 8)))
        assert abs(full.item() - parts.item()) < 1e-12, loss_type


def test_all_rows_masked_is_finite_and_zero():
    lp, old, _, adv, _ = make_inputs(5)
    mask = torch.zeros_like(lp)
    for loss_type in ("grpo", "dapo", "dr_grpo"):
        out = grpo_loss(lp, old, adv, mask, loss_type=loss_type)
        (g,) = torch.autograd.grad(out.loss, lp)
        assert out.loss.item() == 0.0 and torch.count_nonzero(g) == 0
        assert out.num_tokens == 0.0


def test_beta_without_reference_is_an_error():
    lp, old, _, adv, mask = make_inputs(0)
    with pytest.raises(ValueError, match="ref_logps"):
        grpo_loss(lp, old, adv, mask, beta=0.1)
