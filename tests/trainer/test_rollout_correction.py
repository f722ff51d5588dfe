"""The rollout (sampler-mismatch) correction against a deliberately naive reference: Python loops over
sequences and tokens, math.exp on floats, if/else for the band. Weights, keep mask and metrics must
agree on random inputs, and grpo_loss(is_weights=...) must equal a naive weighted loss (loss and
gradient to 1e-6, float64)."""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from naive_reference import OneProcess, aggregate

from grpo_fast.trainer.loss import (
    LOG_RATIO_BOUND,
    ROLLOUT_CORRECTION_METRICS,
    grpo_loss,
    rollout_correction,
)

RATIO = "sampling/importance_sampling_ratio/"
DIFF = "sampling/sampling_logp_difference/"


# --------------------------------------------------------------------------------------------------
# Naive references
# --------------------------------------------------------------------------------------------------


def naive_correction(old, samp, mask, *, level, mode, cap, low):
    """One float at a time. Returns (weights, keep, metrics) as nested lists and a dict."""
    B, T = len(mask), len(mask[0]) if mask else 0
    d = [[0.0] * T for _ in range(B)]
    scored = [[False] * T for _ in range(B)]
    for b in range(B):
        for t in range(T):
            if mask[b][t] and not math.isnan(old[b][t] - samp[b][t]):
                d[b][t] = old[b][t] - samp[b][t]
                scored[b][t] = True
    weights = [[1.0] * T for _ in range(B)]
    keep = [[1.0] * T for _ in range(B)]
    ratio_stats, n_on, n_out = [], 0, 0
    for b in range(B):
        seq = sum(d[b])
        for t in range(T):
            lr = seq if level == "sequence" else d[b][t]
            r = math.exp(max(min(lr, LOG_RATIO_BOUND), -LOG_RATIO_BOUND))
            out = (cap is not None and math.exp(lr) > cap) or (low is not None and math.exp(lr) < low)
            if mode == "truncate":
                w = r
                if cap is not None and w > cap:
                    w = cap
                if low is not None and w < low:
                    w = low
            else:
                w = 0.0 if out else r
            if mask[b][t]:
                weights[b][t] = w
                n_on += 1
                n_out += out
                if mode == "mask" and out:
                    keep[b][t] = 0.0
                if level == "token":
                    ratio_stats.append(w)
        if level == "sequence" and any(mask[b]):
            ratio_stats.append(next(weights[b][t] for t in range(T) if mask[b][t]))
    diffs = [abs(d[b][t]) for b in range(B) for t in range(T) if scored[b][t]]
    k3 = [math.exp(d[b][t]) - 1.0 - d[b][t] for b in range(B) for t in range(T) if scored[b][t]]
    frac = n_out / n_on if n_on else 0.0
    metrics = {
        RATIO + "mean": sum(ratio_stats) / len(ratio_stats) if ratio_stats else 0.0,
        RATIO + "min": min(ratio_stats) if ratio_stats else 0.0,
        RATIO + "max": max(ratio_stats) if ratio_stats else 0.0,
        DIFF + "mean": sum(diffs) / len(diffs) if diffs else 0.0,
        DIFF + "max": max(diffs) if diffs else 0.0,
        "sampling/kl": sum(k3) / len(k3) if k3 else 0.0,
        "sampling/masked_fraction": frac if mode == "mask" else 0.0,
        "sampling/truncated_fraction": frac if mode == "truncate" else 0.0,
    }
    return weights, keep, metrics


def naive_weighted_loss(lp, old, adv, mask, w, *, eps_low, eps_high, beta, ref, loss_type, max_len):
    """Token-level PPO case analysis, the surrogate times w[b][t], plus an unweighted beta * k3 KL."""
    B, T = len(mask), len(mask[0])
    lo, hi = 1.0 - eps_low, 1.0 + eps_high
    per_tok = [[None] * T for _ in range(B)]
    for b in range(B):
        for t in range(T):
            r = torch.exp(lp[b, t] - old[b, t])
            a, rv = adv[b], float(r.detach())
            if (a > 0 and rv > hi) or (a < 0 and rv < lo):
                obj = torch.tensor(hi if rv > hi else lo, dtype=torch.float64) * a
            else:
                obj = r * a
            term = -obj * w[b][t]
            if beta:
                dd = ref[b, t] - lp[b, t]
                term = term + beta * (torch.exp(dd) - dd - 1.0)
            per_tok[b][t] = term
    return aggregate(per_tok, mask, loss_type, max_len)


def make_inputs(seed: int, B: int = 6, T: int = 7, spread: float = 0.5):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    samp = old + torch.randn(B, T, generator=g, dtype=torch.float64) * spread
    mask = (torch.rand(B, T, generator=g) > 0.3).to(torch.float64)
    mask[1] = 0.0  # a zero-length row
    mask[2, 0] = 1.0
    samp[1] = float("nan")  # garbage outside the mask must not leak
    return old, samp, mask


CASES = [
    # (case name, kwargs, spread of sampler log-probs around the trainer's)
    ("token_truncate_cap2", dict(level="token", mode="truncate", cap=2.0, low=None), 0.6),
    ("token_truncate_band", dict(level="token", mode="truncate", cap=1.5, low=0.7), 0.6),
    ("token_truncate_uncapped", dict(level="token", mode="truncate", cap=None, low=None), 0.6),
    ("token_mask_cap2", dict(level="token", mode="mask", cap=2.0, low=None), 0.6),
    ("token_mask_band", dict(level="token", mode="mask", cap=1.5, low=0.5), 0.6),
    ("token_mask_low_only", dict(level="token", mode="mask", cap=None, low=0.6), 0.6),
    ("sequence_truncate_cap3", dict(level="sequence", mode="truncate", cap=3.0, low=None), 0.4),
    ("sequence_truncate_band", dict(level="sequence", mode="truncate", cap=2.0, low=0.5), 0.4),
    ("sequence_mask_cap3", dict(level="sequence", mode="mask", cap=3.0, low=None), 0.4),
    ("sequence_mask_band", dict(level="sequence", mode="mask", cap=2.0, low=0.5), 0.4),
]


# --------------------------------------------------------------------------------------------------
# rollout_correction against the naive reference
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("name", "kw", "spread"), CASES, ids=[c[0] for c in CASES])
def test_weights_keep_and_metrics_match_naive_reference(name, kw, spread, seed):
    old, samp, mask = make_inputs(seed, spread=spread)
    out = rollout_correction(old, samp, mask, **kw)
    w_ref, keep_ref, m_ref = naive_correction(old.tolist(), samp.tolist(), mask.tolist(), **kw)

    assert not out.weights.requires_grad
    assert out.weights.shape == old.shape and out.keep.shape == old.shape
    assert torch.allclose(out.weights, torch.tensor(w_ref, dtype=torch.float64), atol=1e-12, rtol=1e-12)
    assert torch.equal(out.keep, torch.tensor(keep_ref, dtype=torch.float64))
    assert tuple(out.metrics) == ROLLOUT_CORRECTION_METRICS
    for key in ROLLOUT_CORRECTION_METRICS:
        assert out.metrics[key] == pytest.approx(m_ref[key], rel=1e-12, abs=1e-12), key
    if kw["mode"] == "mask":  # dropped tokens carry weight 0, so weights alone already drop them
        assert torch.all(out.weights[(out.keep == 0)] == 0)
    else:
        assert torch.all(out.keep == 1)


def test_inputs_exercise_kept_and_corrected_tokens():
    """Guard against a vacuous comparison: every case both keeps some tokens unchanged and
    truncates / masks others on some seed."""
    for name, kw, spread in CASES:
        fractions = []
        for seed in (0, 1, 2):
            old, samp, mask = make_inputs(seed, spread=spread)
            m = rollout_correction(old, samp, mask, **kw).metrics
            fractions.append(m["sampling/masked_fraction"] + m["sampling/truncated_fraction"])
        if kw["cap"] is None and kw["low"] is None:
            assert fractions == [0.0, 0.0, 0.0], name
        else:
            assert any(f > 0 for f in fractions) and all(f < 1 for f in fractions), name


def test_sequence_level_uses_the_product_of_token_ratios():
    """TRL and verl: the sequence ratio is exp(sum of token log-ratios), not the geometric mean."""
    old = torch.zeros(1, 3, dtype=torch.float64)
    samp = -torch.tensor([[0.1, 0.2, 0.3]], dtype=torch.float64)  # log-ratios 0.1, 0.2, 0.3
    mask = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    out = rollout_correction(old, samp, mask, level="sequence", mode="truncate", cap=None)
    assert out.weights[0, 0].item() == pytest.approx(math.exp(0.3), rel=1e-12)
    assert out.weights[0, 1].item() == out.weights[0, 0].item()
    assert out.weights[0, 2].item() == 1.0  # outside the mask: neutral


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("mode", ["truncate", "mask"])
def test_identical_logps_give_weights_exactly_one(level, mode):
    old, _, mask = make_inputs(3)
    out = rollout_correction(old, old.clone(), mask, level=level, mode=mode, cap=2.0, low=0.5)
    assert torch.equal(out.weights, torch.ones_like(old))
    assert torch.equal(out.keep, torch.ones_like(old))
    m = out.metrics
    assert m[RATIO + "mean"] == m[RATIO + "min"] == m[RATIO + "max"] == 1.0
    assert m["sampling/kl"] == 0.0 and m[DIFF + "mean"] == 0.0 and m[DIFF + "max"] == 0.0
    assert m["sampling/masked_fraction"] == 0.0 and m["sampling/truncated_fraction"] == 0.0


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("mode", ["truncate", "mask"])
@pytest.mark.parametrize("shape", [(3, 5), (3, 0), (0, 4)], ids=["all_masked", "no_tokens", "no_rows"])
def test_nothing_to_correct_gives_neutral_weights_and_zero_metrics(level, mode, shape):
    old = -torch.rand(*shape, dtype=torch.float64)
    samp = old - 5.0
    out = rollout_correction(old, samp, torch.zeros(shape), level=level, mode=mode)
    assert torch.equal(out.weights, torch.ones(shape, dtype=torch.float64))
    assert torch.equal(out.keep, torch.ones(shape, dtype=torch.float64))
    assert all(v == 0.0 for v in out.metrics.values())


def test_metric_values_on_a_hand_checked_example():
    """Token level, cap 2: log-ratios ln 4, 0, ln 0.5 -> weights 2 (truncated), 1, 0.5."""
    old = torch.log(torch.tensor([[0.4, 0.3, 0.1]], dtype=torch.float64))
    samp = torch.log(torch.tensor([[0.1, 0.3, 0.2]], dtype=torch.float64))
    out = rollout_correction(old, samp, torch.ones(1, 3), level="token", mode="truncate", cap=2.0)
    assert out.weights[0].tolist() == pytest.approx([2.0, 1.0, 0.5], rel=1e-12)
    m = out.metrics
    assert m[RATIO + "mean"] == pytest.approx(3.5 / 3) and m[RATIO + "max"] == pytest.approx(2.0)
    assert m[RATIO + "min"] == pytest.approx(0.5)
    assert m[DIFF + "max"] == pytest.approx(math.log(4)) and m[DIFF + "mean"] == pytest.approx(math.log(8) / 3)
    # k3 = r - 1 - ln r per token: (3 - ln 4) + 0 + (-0.5 + ln 2)
    assert m["sampling/kl"] == pytest.approx((3 - math.log(4) + 0 - 0.5 + math.log(2)) / 3)
    assert m["sampling/truncated_fraction"] == pytest.approx(1 / 3)
    masked = rollout_correction(old, samp, torch.ones(1, 3), level="token", mode="mask", cap=2.0, low=0.6)
    assert masked.weights.tolist() == [[0.0, 1.0, 0.0]] and masked.keep.tolist() == [[0.0, 1.0, 0.0]]
    assert masked.metrics["sampling/masked_fraction"] == pytest.approx(2 / 3)
    assert masked.metrics[RATIO + "min"] == 0.0  # TRL's statistic: of the applied weights


def test_nan_sampler_logps_are_left_uncorrected_and_out_of_the_difference_metrics():
    """TRL 1.16: a token vLLM could not score (NaN) gets ratio 1, and is excluded from the logp
    difference rather than turning it into NaN."""
    old = torch.full((1, 3), -1.0, dtype=torch.float64)
    samp = torch.tensor([[float("nan"), -1.5, -1.0]], dtype=torch.float64)
    out = rollout_correction(old, samp, torch.ones(1, 3), mode="truncate", cap=3.0)
    assert out.weights[0, 0].item() == 1.0
    assert out.metrics[DIFF + "mean"] == pytest.approx(0.25) and out.metrics[DIFF + "max"] == pytest.approx(0.5)


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("mode", ["truncate", "mask"])
def test_huge_differences_stay_finite_in_weights_metrics_and_loss(level, mode):
    g = torch.Generator().manual_seed(9)
    lp = (-torch.rand(4, 6, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    old = lp.detach() + torch.randn(4, 6, generator=g, dtype=torch.float64) * 0.1
    samp = old.clone()
    samp[0, 1] = old[0, 1] - 1e4  # the trainer vastly prefers the token: ratio e^1e4
    samp[1, 2] = old[1, 2] + 1e4  # the sampler vastly prefers it: ratio e^-1e4
    samp[2, 0] = float("-inf")  # the sampler deemed it impossible
    old[3, 4] = float("-inf")  # the trainer deems it impossible
    samp[3, 3] = float("-inf")  # ... in the same sequence as a +inf log-ratio: no inf - inf
    mask = torch.ones(4, 6, dtype=torch.float64)
    out = rollout_correction(old, samp, mask, level=level, mode=mode, cap=2.0, low=0.5)
    assert torch.isfinite(out.weights).all() and (out.weights >= 0).all() and (out.weights <= 2.0).all()
    assert math.isfinite(out.metrics["sampling/kl"])
    for key in ROLLOUT_CORRECTION_METRICS:
        if not key.startswith(DIFF):  # the raw |difference| is reported as it is (inf here)
            assert math.isfinite(out.metrics[key]), key
    if mode == "truncate":  # truncated to the band's edges
        assert out.weights[0, 1].item() == 2.0 and out.weights[1, 2].item() == 0.5
        assert out.weights[2, 0].item() == 2.0
    else:  # dropped (the whole sequence at sequence level)
        assert out.keep[0, 1].item() == 0.0 and out.keep[1, 2].item() == 0.0 and out.keep[2, 0].item() == 0.0
        assert out.weights[0, 1].item() == 0.0 and out.weights[1, 2].item() == 0.0
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5], dtype=torch.float64)
    res = grpo_loss(lp, lp.detach(), adv, mask * out.keep, is_weights=out.weights, loss_type="grpo")
    (grad,) = torch.autograd.grad(res.loss, lp)
    assert math.isfinite(res.loss.item()) and torch.isfinite(grad).all()


def test_arguments_are_validated():
    old, samp, mask = make_inputs(0)
    for bad in (dict(level="geometric"), dict(mode="clip"), dict(cap=0.0), dict(cap=2.0, low=3.0),
                dict(low=-1.0)):
        with pytest.raises(ValueError):
            rollout_correction(old, samp, mask, **bad)
    with pytest.raises(ValueError, match="shape"):
        rollout_correction(old, samp[:, :3], mask)


# --------------------------------------------------------------------------------------------------
# grpo_loss(is_weights=...)
# --------------------------------------------------------------------------------------------------

LOSS_CASES = [
    ("grpo", 0.2, 0.2, 0.0),
    ("grpo", 0.2, 0.2, 0.04),  # the KL term is not reweighted
    ("dapo", 0.2, 0.28, 0.0),
    ("bnpo", 0.2, 0.28, 0.1),
    ("dr_grpo", 0.1, 0.3, 0.02),
]


@pytest.mark.parametrize("mode", ["truncate", "mask"])
@pytest.mark.parametrize("use_keep", [False, True], ids=["weights_only_trl", "keep_in_mask_verl"])
@pytest.mark.parametrize(("loss_type", "eps_low", "eps_high", "beta"), LOSS_CASES,
                         ids=[f"{c[0]}-beta{c[3]}" for c in LOSS_CASES])
def test_weighted_loss_and_gradient_match_naive_reference(loss_type, eps_low, eps_high, beta, use_keep, mode):
    g = torch.Generator().manual_seed(5)
    B, T, max_len = 6, 7, 9
    lp = (-torch.rand(B, T, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    old = lp.detach() + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.3
    samp = old + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.6
    ref = lp.detach() + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.2
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    mask = (torch.rand(B, T, generator=g) > 0.3).to(torch.float64)
    mask[1] = 0.0
    corr = rollout_correction(old, samp, mask, level="token", mode=mode, cap=2.0, low=0.5)
    loss_mask = mask * corr.keep if use_keep else mask

    out = grpo_loss(lp, old, adv, loss_mask, epsilon_low=eps_low, epsilon_high=eps_high, beta=beta,
                    ref_logps=ref if beta else None, loss_type=loss_type, max_completion_length=max_len,
                    is_weights=corr.weights)
    (g_fast,) = torch.autograd.grad(out.loss, lp)

    lp2 = lp.detach().clone().requires_grad_(True)
    ref_loss = naive_weighted_loss(lp2, old, adv.tolist(), loss_mask.tolist(), corr.weights.tolist(),
                                   eps_low=eps_low, eps_high=eps_high, beta=beta, ref=ref,
                                   loss_type=loss_type, max_len=max_len)
    (g_ref,) = torch.autograd.grad(ref_loss, lp2)
    assert abs(out.loss.item() - ref_loss.item()) < 1e-6
    assert torch.allclose(g_fast, g_ref, atol=1e-6, rtol=0)
    if beta == 0:
        assert torch.all(g_fast[loss_mask == 0] == 0)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
@pytest.mark.parametrize("level", ["token", "sequence"])
def test_no_weights_is_the_same_as_all_ones(loss_type, level):
    g = torch.Generator().manual_seed(2)
    lp = (-torch.rand(5, 6, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    old = lp.detach() + torch.randn(5, 6, generator=g, dtype=torch.float64) * 0.05
    ref = lp.detach() + torch.randn(5, 6, generator=g, dtype=torch.float64) * 0.2
    adv = torch.randn(5, generator=g, dtype=torch.float64)
    mask = (torch.rand(5, 6, generator=g) > 0.3).to(torch.float64)
    kw = dict(beta=0.05, ref_logps=ref, loss_type=loss_type, importance_sampling_level=level)
    a = grpo_loss(lp, old, adv, mask, **kw)
    b = grpo_loss(lp, old, adv, mask, is_weights=torch.ones_like(lp), **kw)
    (ga,) = torch.autograd.grad(a.loss, lp)
    (gb,) = torch.autograd.grad(b.loss, lp)
    assert torch.equal(a.loss, b.loss) and torch.equal(ga, gb)
    assert (a.kl, a.clip_low, a.clip_high, a.num_tokens) == (b.kl, b.clip_low, b.clip_high, b.num_tokens)


def test_weights_scale_the_surrogate_but_not_the_kl():
    """With zero advantages only the KL term is left: weights must not change it."""
    g = torch.Generator().manual_seed(4)
    lp = (-torch.rand(3, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    ref = lp.detach() + 0.3
    mask = torch.ones(3, 4, dtype=torch.float64)
    w = torch.rand(3, 4, generator=g, dtype=torch.float64) * 2
    kw = dict(beta=0.1, ref_logps=ref, loss_type="dapo")
    zero_adv = torch.zeros(3, dtype=torch.float64)
    assert grpo_loss(lp, lp.detach(), zero_adv, mask, is_weights=w, **kw).loss.item() == pytest.approx(
        grpo_loss(lp, lp.detach(), zero_adv, mask, **kw).loss.item(), abs=1e-15)
    adv = torch.ones(3, dtype=torch.float64)  # on-policy, A = 1, no KL: loss = -mean(w)
    out = grpo_loss(lp, lp.detach(), adv, mask, is_weights=w, loss_type="dapo")
    assert out.loss.item() == pytest.approx(-w.mean().item(), rel=1e-12)


def test_is_weights_carry_no_gradient_and_must_fit():
    lp = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    w = torch.full((2, 3), 0.5, dtype=torch.float64, requires_grad=True)
    out = grpo_loss(lp, lp.detach(), torch.ones(2, dtype=torch.float64), torch.ones(2, 3), is_weights=w)
    out.loss.backward()
    assert w.grad is None and lp.grad is not None
    # A per-sequence (B, 1) weight broadcasts; a wrong shape is refused.
    grpo_loss(lp, lp.detach(), torch.ones(2, dtype=torch.float64), torch.ones(2, 3), is_weights=w[:, :1])
    with pytest.raises(ValueError, match="is_weights"):
        grpo_loss(lp, lp.detach(), torch.ones(2, dtype=torch.float64), torch.ones(2, 3), is_weights=w[:1, :2])


# --------------------------------------------------------------------------------------------------
# Cross-check with TRL: the weights enter the loss where TRL puts its importance_sampling_ratio
# --------------------------------------------------------------------------------------------------




@pytest.mark.parametrize(("loss_type", "beta", "mode", "level"), [
    ("grpo", 0.04, "truncate", "token"),
    ("dapo", 0.1, "mask", "token"),
    ("dr_grpo", 0.0, "mask", "sequence"),
    ("bnpo", 0.02, "truncate", "sequence"),
])
def test_same_weighted_loss_as_trl(loss_type, beta, mode, level):
    trl_grpo = pytest.importorskip("trl.trainer.grpo_trainer")
    g = torch.Generator().manual_seed(13)
    B, T = 6, 5
    base = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    old = base + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.3
    samp = old + torch.randn(B, T, generator=g, dtype=torch.float64) * (0.3 if level == "sequence" else 0.6)
    ref = base + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.2
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    mask = (torch.rand(B, T, generator=g) > 0.25).to(torch.float64)
    mask[0] = 0.0
    corr = rollout_correction(old, samp, mask, level=level, mode=mode, cap=2.0, low=0.5)

    lp_ours = base.clone().requires_grad_(True)
    ours = grpo_loss(lp_ours, old, adv, mask, beta=beta, ref_logps=ref if beta else None, loss_type=loss_type,
                     epsilon_high=0.28, max_completion_length=T, is_weights=corr.weights)
    (g_ours,) = torch.autograd.grad(ours.loss, lp_ours)

    lp_trl = base.clone().requires_grad_(True)
    t = trl_grpo.GRPOTrainer.__new__(trl_grpo.GRPOTrainer)
    t.__dict__.update(
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token", beta=beta,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        loss_type=loss_type, epsilon_low=0.2, epsilon_high=0.28, use_vllm=True,
        vllm_importance_sampling_correction=True, model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1, max_completion_length=T, accelerator=OneProcess(),
        _entropy_bonus_enabled=False, aux_loss_enabled=False, _metrics={"train": defaultdict(list)},
    )
    t._get_per_token_logps_and_entropies = lambda *a, **k: (lp_trl, torch.zeros_like(lp_trl), None)
    inputs = {
        "prompt_ids": torch.ones(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.ones(B, T, dtype=torch.long), "completion_mask": mask,
        "advantages": adv, "old_per_token_logps": old, "ref_per_token_logps": ref,
        "num_items_in_batch": mask.sum(), "importance_sampling_ratio": corr.weights,
        "sampling_per_token_logps": samp,
    }
    trl_loss = t._compute_loss(None, inputs)
    (g_trl,) = torch.autograd.grad(trl_loss, lp_trl)
    assert abs(ours.loss.item() - trl_loss.item()) < 1e-9
    assert torch.allclose(g_ours, g_trl, atol=1e-9, rtol=0)
