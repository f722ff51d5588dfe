"""Tool-integrated reasoning for math word problems: GRPO where the model may run Python in the
sandbox while it reasons (ToRL layout: a ```python block, then ```output; the sandbox's output is
appended and the model goes on), scored by the `math` verifier on the final answer.

On CPU it runs end to end with a random-init Qwen2-architecture model built locally (no download),
which writes no code and no right answers: the point is the wiring (rollouts, the daemon, masks,
tools/* metrics). With a real model it is the recipe:

    python examples/tir_math.py                                    # ~1 minute on a laptop CPU
    python examples/tir_math.py --model Qwen/Qwen2.5-Math-1.5B --steps 300 --sampler vllm \\
        --max-completion-length 3072 --group-size 16 --prompts-per-step 32

The same run from the command line:

    grpo-fast train --model M --data examples/gsm8k_questions.jsonl --verifier math --tools python \\
      --tool-session --max-tool-calls 4 --prompt-template "$TEMPLATE" --out runs/tir

The daemon: `grpo-sandboxd` (a `cargo build --release -p grpo-sandbox`, or the wheel's console
script), started on demand as root, or `--tool-sandbox unix:/run/grpo.sock,tcp:host:8787`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

# ToRL-style instruction: reason, run code when it helps, box the final answer.
TEMPLATE = (
    "{question}\n\nSolve the problem step by step. You may run Python: write the code in a ```python block "
    "and end it with ```output; the output will be shown to you. Put the final answer in \\boxed{{}}."
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="a local path or Hub id (default: a tiny random model)")
    ap.add_argument("--data", default=str(Path(__file__).with_name("gsm8k_questions.jsonl")))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--prompts-per-step", type=int, default=2)
    ap.add_argument("--max-completion-length", type=int, default=96)
    ap.add_argument("--sampler", default="transformers", choices=["transformers", "vllm"])
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    from grpo_fast.trainer.config import GRPOConfig
    from grpo_fast.trainer.run import run_training

    tmp = tempfile.TemporaryDirectory(prefix="grpo-fast-tir-")
    model = a.model
    if model is None:
        from grpo_fast.trainer.local_model import save_qwen2

        model = str(save_qwen2(Path(tmp.name) / "model", vocab_size=512))
    cfg = GRPOConfig(
        model=model, data=a.data, verifier="math", prompt_template=TEMPLATE, answer_field="answer",
        output_dir=a.out or str(Path(tmp.name) / "run"), max_steps=a.steps, num_generations=a.group_size,
        prompts_per_step=a.prompts_per_step, max_completion_length=a.max_completion_length,
        sampler=a.sampler, learning_rate=1e-6, beta=0.0, generation_chunks=1, save_final=False,
        # the tool: python in the sandbox, cells of a rollout share definitions, at most 4 calls
        tools=("python",), tool_session=True, max_tool_calls=4, max_turns=6, tool_timeout=5.0,
        tool_setup_code="import math, fractions, itertools", gate_kl_max=None,
    )
    result = run_training(cfg, live=False)
    last = result.history[-1]
    print({k: round(v, 4) for k, v in last.items() if k.startswith("tools/") or k in ("reward", "num_tokens")})
    tmp.cleanup()


if __name__ == "__main__":
    main()
