"""Verifiers as TRL reward functions (`reward_funcs=[math_reward]`)."""

from grpo_fast.rewards.math import completion_text, make_math_reward, math_reward

__all__ = ["completion_text", "make_math_reward", "math_reward"]

try:  # the code reward ships with the sandbox work; its absence must not break math_reward
    from grpo_fast.rewards.code import code_reward  # noqa: F401

    __all__.append("code_reward")
except ImportError:
    pass
