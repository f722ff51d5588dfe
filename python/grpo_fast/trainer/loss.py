"""The GRPO policy loss: clipped surrogate with separate low/high clip ranges, optional k3 KL to a
reference policy, token- or sequence-level importance ratios, and the grpo / bnpo (dapo) / dr_grpo
aggregations. Pure tensor code, independent of models, so it can be tested against a naive loop."""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo")
IMPORTANCE_LEVELS = ("token", "sequence")


@dataclass
class LossOutput:
    """The scalar loss and detached statistics over the masked tokens it was computed from."""

    loss: torch.Tensor
    kl: float  # mean k3 KL per completion token (0 when no reference log-probs were given)
    clip_low: float  # share of tokens whose ratio was clipped at 1 - epsilon_low with A < 0
    clip_high: float  # share of tokens clipped at 1 + epsilon_high with A > 0
    clip_region: float  # share of tokens in either clipped region
    num_tokens: float


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
