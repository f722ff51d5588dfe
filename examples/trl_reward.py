"""grpo-fast's verifiers as TRL reward functions: one GRPO step of TRL's own `GRPOTrainer` on CPU.

The model is a random-init Qwen2-architecture model built locally (no download) with a 512-token
character vocabulary, so it writes no right answers: the point is the wiring. With a real model,
pass its path or Hub id to `--model`.

    python examples/trl_reward.py                 # a few seconds on a laptop CPU
    python examples/trl_reward.py --model Qwen/Qwen2.5-0.5B-Instruct --steps 50

The rewards: `math` (the final answer against the dataset's `answer` column, None where there is no
verdict) as a plain function, and `format` (`<think>...</think>` then `\\boxed{}`) as an `async def`,
which TRL runs on its event loop beside other async rewards. TRL weighs them with `reward_weights`.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

ROWS = [
    # Conversational prompts; every other column (here `answer`) reaches the reward functions as a list.
    {
        "prompt": [
            {
                "role": "user",
                "content": "Natalia sold 48 clips in April and half as many in May. How many "
                "clips did she sell in total? Put the final answer in \\boxed{}.",
            }
        ],
        "answer": "#### 72",
    },
    {
        "prompt": [
            {
                "role": "user",
                "content": "What is $\\frac{1}{2} + \\frac{1}{4}$? Put the final answer in \\boxed{}.",
            }
        ],
        "answer": "\\frac{3}{4}",
    },
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a model path or Hub id (default: a tiny random-init one)")
    ap.add_argument("--steps", type=int, default=1)
    a = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from grpo_fast.rewards import make_reward

    if a.model:
        model, tok = a.model, None
    else:
        from grpo_fast.trainer.local_model import build_qwen2

        model, tok = build_qwen2(vocab_size=512, seed=0)
    rewards = [make_reward("math"), make_reward("format", asynchronous=True)]
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-reward-"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=32,
        max_steps=a.steps,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        disable_tqdm=True,
        reward_weights=[1.0, 0.1],
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=args,
        train_dataset=datasets.Dataset.from_list(ROWS),
        processing_class=tok,
    )
    trainer.train()
    logs = trainer.state.log_history[0]
    for key in (
        "reward",
        "rewards/math/mean",
        "rewards/math/verification_rate",
        "rewards/format/mean",
        "rewards/format/verification_rate",
        "completions/mean_length",
    ):
        print(f"{key:34s} {logs[key]:.3f}")


if __name__ == "__main__":
    main()
