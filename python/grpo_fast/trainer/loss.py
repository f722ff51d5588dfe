"""The GRPO policy loss: clipped surrogate with separate low/high clip ranges, optional k3 KL to a
reference policy, token- or sequence-level importance ratios, and the grpo / bnpo (dapo) / dr_grpo
aggregations; plus the rollout (sampler-mismatch) correction: importance weights between the trainer's
and the sampler's log-probs of the sampled tokens, truncated or masked. Pure tensor code, independent
of models, so it can be tested against a naive loop."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from grpo_fast.metrics import SAMPLING_METRICS

LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo")
IMPORTANCE_LEVELS = ("token", "sequence")

ROLLOUT_CORRECTION_LEVELS = ("token", "sequence")
ROLLOUT_CORRECTION_MODES = ("truncate", "mask")
# The metrics `rollout_correction` reports, in this order (declared in grpo_fast.metrics). The first
# five are TRL's names (GRPOTrainer._generate_and_score_completions, TRL 1.16) with TRL's meaning: the
# ratio statistics are of the weights actually applied (after truncation, or with masked ones at 0).
ROLLOUT_CORRECTION_METRICS = SAMPLING_METRICS
# The log-ratio is clamped to +-20 before exp (exp(20) ~ 4.9e8), the bound verl's rollout correction
# uses (SAFETY_BOUND in verl/trainer/ppo/rollout_corr_helper.py): weights and the KL metric stay finite
# however far the sampler is off. Band membership is decided on the unclamped log-ratio.
LOG_RATIO_BOUND = 20.0
# Per-token log-ratios of +-inf (a token one side deemed impossible) are replaced by +-this before a
# sequence sum, so that a sum can never be inf - inf = NaN; any value this large is far outside the band.
_INF_LOG_RATIO = 1.0e4


@dataclass
class LossOutput:
    """The scalar loss and detached statistics over the masked tokens it was computed from."""

    loss: torch.Tensor
    kl: float  # mean k3 KL per completion token (0 when no reference log-probs were given)
    clip_low: float  # share of tokens whose ratio was clipped at 1 - epsilon_low with A < 0
    clip_high: float  # share of tokens clipped at 1 + epsilon_high with A > 0
    clip_region: float  # share of tokens in either clipped region
    num_tokens: float


@dataclass
class RolloutCorrection:
    """What `rollout_correction` returns.

    weights: (B, T), detached, to multiply into the policy-gradient term (`grpo_loss(is_weights=...)`).
      Masked-out (dropped) tokens carry 0; positions outside `mask` carry 1.
    keep: (B, T) float, 0 exactly at the completion tokens dropped in mode="mask" (all tokens of a
      dropped sequence at sequence level), 1 elsewhere. `weights` alone reproduces TRL (a dropped token
      contributes 0 but still counts in the loss normaliser, and its KL term stays); multiplying the loss
      mask by `keep` as well removes it from the normaliser and the KL term too (verl's rejection
      sampling, which rewrites response_mask).
    metrics: floats keyed by ROLLOUT_CORRECTION_METRICS.
    """

    weights: torch.Tensor
    keep: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


def rollout_correction(
    old_logps: torch.Tensor,
    sampler_logps: torch.Tensor,
    mask: torch.Tensor,
    *,
    level: str = "token",
    mode: str = "truncate",
    cap: float | None = 2.0,
    low: float | None = None,
) -> RolloutCorrection:
    """Importance weights correcting for the sampler (e.g. vLLM) not being the trainer's policy.

    old_logps: (B, T) the trainer's log-probs of the sampled tokens with the weights used for sampling;
    sampler_logps: (B, T) the sampler's log-probs of the same tokens; mask: (B, T), 1 for completion
    tokens. The ratio is exp(old_logps - sampler_logps) = pi_trainer / pi_sampler.

    level="token": one ratio per token. level="sequence": one ratio per sequence, the PRODUCT of its
      token ratios, exp(sum of log-ratios) -- as TRL 1.16 (`per_token_logps_diff.sum(dim=-1)` for the
      sequence_* modes) and verl (rollout_is="sequence") do; not GSPO's length-normalised geometric mean.
    mode="truncate": w = clamp(ratio, low, cap) (TIS; TRL's *_truncate clamps at C_min and C_max).
    mode="mask": w = ratio inside [low, cap], else 0 and keep = 0 (MIS). As in TRL's *_mask modes
      (`masked_fill(invalid, 0.0)`) a kept token keeps its ratio as weight, not 1.
    `cap` None means no upper bound, `low` None (or 0) no lower bound (TRL's clip_max / clip_min).

    Defaults: token-level truncation at 2, TRL's original TIS (vllm_importance_sampling_cap=2.0, token
    level) and verl's rollout_is_threshold default. TRL 1.16's own defaults are mode "sequence_mask",
    clip_max 3.0, clip_min None; a product over a long completion drifts like exp(-length * KL), so
    sequence weights of long completions shrink towards 0.

    As TRL 1.16 does, a token whose sampler log-prob is NaN (not reported) gets log-ratio 0 (weight 1)
    and is left out of the log-prob difference and KL metrics. Ratio statistics are over completion
    tokens (token level) or over sequences with at least one completion token (sequence level; TRL
    also counts empty rows, with ratio 1); every metric is 0 when there are no completion tokens.
    """
    if level not in ROLLOUT_CORRECTION_LEVELS:
        raise ValueError(f"level must be one of {ROLLOUT_CORRECTION_LEVELS}, got {level!r}")
    if mode not in ROLLOUT_CORRECTION_MODES:
        raise ValueError(f"mode must be one of {ROLLOUT_CORRECTION_MODES}, got {mode!r}")
    if cap is not None and not cap > 0:
        raise ValueError(f"cap must be positive, got {cap}")
    if low is not None and (low < 0 or (cap is not None and low > cap)):
        raise ValueError(f"low must lie in [0, cap], got {low}")
    if old_logps.shape != sampler_logps.shape or old_logps.shape != mask.shape:
        raise ValueError("old_logps, sampler_logps and mask must have the same (B, T) shape")

    with torch.no_grad():
        dtype = torch.promote_types(old_logps.dtype, torch.float32)  # no bf16 ratios
        on = mask.detach() > 0
        raw = old_logps.detach().to(dtype) - sampler_logps.detach().to(dtype)
        zero = torch.zeros((), dtype=dtype, device=raw.device)
        one = torch.ones((), dtype=dtype, device=raw.device)
        scored = on & ~torch.isnan(raw)  # completion tokens the sampler gave a log-prob for
        diff = torch.where(scored, raw, zero)
        diff = torch.nan_to_num(diff, nan=0.0, posinf=_INF_LOG_RATIO, neginf=-_INF_LOG_RATIO)

        if level == "sequence":
            log_r = diff.sum(-1, keepdim=True).expand_as(diff)
        else:
            log_r = diff
        ratio = torch.exp(log_r.clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND))
        out_band = torch.zeros_like(on)  # per row at sequence level, like the ratio
        if cap is not None:
            out_band |= log_r > math.log(cap)
        if low is not None and low > 0:
            out_band |= log_r < math.log(low)

        if mode == "truncate":
            w = ratio.clamp(min=low, max=cap) if (low is not None or cap is not None) else ratio
        else:
            w = torch.where(out_band, zero, ratio)
        outside = out_band & on  # the completion tokens truncated / dropped
        weights = torch.where(on, w, one)
        keep = torch.where(outside, zero, one) if mode == "mask" else torch.ones_like(ratio)

        # Metrics, gathered into one tensor so that reading them back is a single device sync.
        n_scored_f = scored.sum().clamp(min=1).to(dtype)
        if level == "sequence":
            stat_on = on.any(-1)
            stat_w = w[:, 0] if w.shape[-1] else torch.ones(w.shape[0], dtype=dtype, device=w.device)
        else:
            stat_on, stat_w = on, weights
        n_stat = stat_on.sum()
        r_mean = torch.where(stat_on, stat_w, zero).sum() / n_stat.clamp(min=1).to(dtype)
        r_min = torch.where(stat_on, stat_w, math.inf).amin() if stat_w.numel() else zero
        r_max = torch.where(stat_on, stat_w, -math.inf).amax() if stat_w.numel() else zero
        has_stat = n_stat > 0
        r_min = torch.where(has_stat, r_min, zero)
        r_max = torch.where(has_stat, r_max, zero)

        absd = torch.where(scored, raw.abs(), zero)
        d_mean = absd.sum() / n_scored_f
        d_max = absd.amax() if absd.numel() else zero
        # k3 on the sampler's samples: with r = pi_trainer / pi_sampler, E_sampler[r - 1 - log r] =
        # KL(sampler || trainer), each term >= 0 (verl logs the same estimator as rollout_corr/k3_kl).
        tok_lr = diff.clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)
        k3 = torch.where(scored, torch.expm1(tok_lr) - tok_lr, zero)
        kl = k3.sum() / n_scored_f
        frac = outside.sum().to(dtype) / on.sum().clamp(min=1).to(dtype)
        masked = frac if mode == "mask" else zero
        truncated = frac if mode == "truncate" else zero
        values = torch.stack([r_mean, r_min, r_max, d_mean, d_max, kl, masked, truncated]).tolist()
    metrics = dict(zip(ROLLOUT_CORRECTION_METRICS, values, strict=True))
    return RolloutCorrection(weights=weights, keep=keep, metrics=metrics)


def per_token_kl_k3(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || ref): exp(r - p) - (r - p) - 1, unbiased and >= 0."""
    d = ref_logps - logps
    return torch.exp(d) - d - 1.0


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logps: torch.Tensor | None = None,
    loss_type: str = "dapo",
    importance_sampling_level: str = "token",
    max_completion_length: int | None = None,
    num_items: float | None = None,
    num_sequences: float | None = None,
    is_weights: torch.Tensor | None = None,
) -> LossOutput:
    """Compute the policy loss for a batch of B completions padded to T tokens.

    logps, old_logps, ref_logps: (B, T) log-probs of the sampled tokens under the current policy
    (with grad), the behaviour policy and the reference policy. advantages: (B,). mask: (B, T),
    1 for completion tokens that count.

    Aggregation (`loss_type`):
      grpo     mean over each sequence's tokens, then mean over sequences (rows with no tokens
               count as 0 in the batch mean);
      bnpo/dapo  sum over all tokens / number of tokens;
      dr_grpo  sum over all tokens / (B * max_completion_length), a constant normaliser.
    `num_items` overrides the token count used by bnpo/dapo and `num_sequences` the B used by grpo
    and dr_grpo, so gradient accumulation and DDP can normalise by the global batch.

    `is_weights` (B, T), e.g. `rollout_correction(...).weights`, multiplies the per-token clipped
    surrogate (detached: it carries no gradient); the KL term and the normalisers are left alone. To
    also drop masked tokens from the normaliser, pass `mask * rollout_correction(...).keep` as mask.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    if importance_sampling_level not in IMPORTANCE_LEVELS:
        raise ValueError(f"importance_sampling_level must be one of {IMPORTANCE_LEVELS}")
    eps_high = epsilon_low if epsilon_high is None else epsilon_high
    mask = mask.to(logps.dtype)
    adv = advantages.to(logps.dtype).unsqueeze(-1)

    log_ratio = logps - old_logps
    if importance_sampling_level == "sequence":
        # GSPO: one ratio per sequence, the geometric mean of its token ratios (length-normalised).
        seq_len = mask.sum(-1).clamp(min=1.0)
        log_ratio = ((log_ratio * mask).sum(-1) / seq_len).unsqueeze(-1).expand_as(logps)
    ratio = torch.exp(log_ratio)
    # PPO's min(r*A, clip(r)*A) picks the clipped (constant, gradient-free) term exactly when
    # A > 0 and r > 1 + eps_high, or A < 0 and r < 1 - eps_low. Written as that case analysis so a
    # ratio lying exactly on a bound keeps its full gradient (min/clamp would halve it at the tie).
    # With epsilon_low >= 1 the lower bound is <= 0 and never binds: ratios are positive.
    lo, hi = 1.0 - epsilon_low, 1.0 + eps_high
    a_full = adv.expand_as(ratio)
    is_low = (ratio < lo) & (a_full < 0)
    is_high = (ratio > hi) & (a_full > 0)
    bound = torch.where(is_low, torch.full_like(ratio, lo), torch.full_like(ratio, hi))
    per_token = -torch.where(is_low | is_high, bound * adv, ratio * adv)
    if is_weights is not None:
        try:
            fits = torch.broadcast_shapes(is_weights.shape, logps.shape) == logps.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"is_weights {tuple(is_weights.shape)} does not fit logps {tuple(logps.shape)}")
        # Before the KL term is added, as TRL 1.16 does: GRPOTrainer._compute_loss multiplies
        # per_token_loss by inputs["importance_sampling_ratio"] and only then adds beta * per_token_kl,
        # so the sampler correction does not reweight the KL penalty. (TRL's separate
        # use_bias_correction_kl multiplies the KL by the policy ratio pi_theta / pi_old, not by this.)
        per_token = per_token * is_weights.detach().to(per_token.dtype)

    kl = None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta != 0 needs ref_logps")
        kl = per_token_kl_k3(logps, ref_logps)
        per_token = per_token + beta * kl

    B, T = logps.shape
    if loss_type == "grpo":
        n_seq = float(B) if num_sequences is None else float(num_sequences)
        row = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        loss = row.sum() / n_seq
    elif loss_type in ("bnpo", "dapo"):
        denom = mask.sum().clamp(min=1.0) if num_items is None else max(float(num_items), 1.0)
        loss = (per_token * mask).sum() / denom
    else:  # dr_grpo
        L = T if max_completion_length is None else max_completion_length
        n_seq = float(B) if num_sequences is None else float(num_sequences)
        loss = (per_token * mask).sum() / (n_seq * L)

    with torch.no_grad():
        n_tok = float(mask.sum())
        denom = max(n_tok, 1.0)
        low = is_low.to(mask.dtype)
        high = is_high.to(mask.dtype)
        stats = dict(
            kl=float((kl.detach() * mask).sum() / denom) if kl is not None else 0.0,
            clip_low=float((low * mask).sum() / denom),
            clip_high=float((high * mask).sum() / denom),
            clip_region=float(((low + high).clamp(max=1) * mask).sum() / denom),
        )
    return LossOutput(loss=loss, num_tokens=n_tok, **stats)
