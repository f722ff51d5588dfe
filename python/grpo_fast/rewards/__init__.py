"""Verifiers as TRL reward functions (`reward_funcs=[math_reward, code_reward]`)."""

from grpo_fast.rewards.code import code_reward
from grpo_fast.rewards.math import completion_text, make_math_reward, math_reward

__all__ = ["code_reward", "completion_text", "make_math_reward", "math_reward"]
