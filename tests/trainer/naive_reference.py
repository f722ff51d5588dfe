"""Pieces shared by the loss tests' deliberately naive references (not a test module)."""

from __future__ import annotations

import torch


def aggregate(per_tok, mask, loss_type: str, max_len: int | None):
    """Aggregate per-token scalar terms one at a time: grpo (per-sequence mean, then batch mean),
    bnpo/dapo (token sum / token count), dr_grpo (token sum / (B * max_len))."""
    B, T = len(mask), len(mask[0])
    total = torch.zeros((), dtype=torch.float64)
    if loss_type == "grpo":
        for b in range(B):
            n = sum(mask[b])
            row = torch.zeros((), dtype=torch.float64)
            for t in range(T):
                if mask[b][t]:
                    row = row + per_tok[b][t]
            total = total + (row / n if n else row)
        return total / B
    count = 0
    for b in range(B):
        for t in range(T):
            if mask[b][t]:
                total = total + per_tok[b][t]
                count += 1
    if loss_type in ("bnpo", "dapo"):
        return total / max(count, 1)
    return total / (B * max_len)  # dr_grpo


class OneProcess:
    """The single-process stand-in for TRL's `accelerator` in its loss code."""

    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x
