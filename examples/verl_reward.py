"""grpo-fast's verifiers as a verl custom reward function.

verl loads this file by path and calls the function named in the config. Per response (verl's
default `naive` reward manager):

    python -m verl.trainer.main_ppo ... \
        reward.custom_reward_function.path=examples/verl_reward.py \
        reward.custom_reward_function.name=compute_score

or once per batch, which lets the math fast path judge the whole batch in parallel:

        reward.reward_manager.name=batch \
        reward.custom_reward_function.name=compute_score_batch

(`custom_reward_function` sits at the top level of older verl configs.) Without this file,
`path=pkg://grpo_fast.rewards.verl` loads the same functions from the installed package. Options go in
`custom_reward_function.reward_kwargs`, e.g. `+reward.custom_reward_function.reward_kwargs.verifier=math`;
below, data sources are mapped to verifiers in code instead.

Each call returns `{"score", "acc", "verified", "pred", "reason"}`: verl logs the extra keys
(`verified` averages to the verification rate, `pred` feeds its maj@N). Run this file to see the
calls verl makes on a few GSM8K/MATH-style responses.
"""

from __future__ import annotations

from typing import Any

from grpo_fast.rewards import verl as _verl

# data_source -> verifier spec ("default" for the rest). R1-style prompts get a small format reward
# next to the math verdict; verl's code data sets go to the sandbox.
VERIFIERS = {
    "openai/gsm8k": "math",
    "DigitalLearningGmbH/MATH-lighteval": "math",
    "r1/math": "math=0.9,format=0.1",
    "codecontests": "code",
    "default": "math",
}


def compute_score(
    data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None, **kwargs: Any
):
    kwargs.setdefault("verifier", VERIFIERS)
    return _verl.compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)


def compute_score_batch(
    data_sources: Any, solution_strs: Any, ground_truths: Any, extra_infos: Any = None, **kwargs: Any
):
    kwargs.setdefault("verifier", VERIFIERS)
    return _verl.compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos, **kwargs)


if __name__ == "__main__":
    # The calls verl's managers make, on responses a small model writes.
    info = {
        "split": "test",
        "index": 0,
        "question": "Natalia sold clips ...",
        "num_turns": None,
        "rollout_reward_scores": {},
    }
    print(
        compute_score(
            data_source="openai/gsm8k",
            solution_str="48 + 24 = 72\n#### 72",
            ground_truth="72",
            extra_info=info,
        )
    )
    for r in compute_score_batch(
        data_sources=["DigitalLearningGmbH/MATH-lighteval", "r1/math", "r1/math", "openai/gsm8k"],
        solution_strs=[
            "So the ratio is $\\boxed{\\dfrac{3}{4}}$.",
            "<think>2+2=4</think> The answer is \\boxed{4}.",
            "The answer is \\boxed{4}.",
            "I am not sure.",
        ],
        ground_truths=["\\frac34", "4", "4", "72"],
        extra_infos=[info] * 4,
    ):
        print(r)
    _verl.close_verifiers()
