"""Verifiers as reward functions of other trainers: TRL (`reward_funcs=[make_reward("math")]`, sync or
async) and verl (`grpo_fast.rewards.verl.compute_score`, single and batched)."""

from grpo_fast.rewards.code import code_reward
from grpo_fast.rewards.math import completion_text, make_math_reward, math_reward
from grpo_fast.rewards.trl import AsyncVerifierReward, VerifierReward, make_reward

__all__ = [
    "AsyncVerifierReward",
    "VerifierReward",
    "code_reward",
    "completion_text",
    "make_math_reward",
    "make_reward",
    "math_reward",
]
