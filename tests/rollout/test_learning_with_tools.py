"""The proof that GRPO learns to use a tool, on CPU: `secret_fn` asks for f(n), a digit only the
python tool knows (the sandbox's setup code defines f; the model never sees it). After a short warm
start that teaches the call format (on 15% of samples, the printed digit replaced by a random one),
GRPO with the real daemon as the tool learns to call it and to copy what it printed; the same run
without the tool stays at chance. The same code path as `grpo-fast train --toy secret_fn --tools python`."""

from __future__ import annotations

import pytest

from grpo_fast.trainer.config import GRPOConfig
from grpo_fast.trainer.run import run_training

MAX_STEPS = 40  # docs/training.md has the curves of three seeds


def _run(out, **overrides):
    cfg = GRPOConfig(toy="secret_fn", output_dir=str(out), seed=0, max_steps=MAX_STEPS, save_final=False,
                     **overrides)
    return run_training(cfg, live=False, explicit={"max_steps", "seed", *overrides})


def _mean(history, key, steps):
    xs = [h.get(key, 0.0) for h in history[steps]]
    return sum(xs) / len(xs)


@pytest.fixture(scope="module")
def runs(sandbox, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secret_fn")
    learned = _run(tmp / "tools", tools=("python",), tool_sandbox="unix:" + sandbox.socket_path)
    control = _run(tmp / "control")  # the same warm start and steps, no tool
    return learned, control


@pytest.mark.timeout(900)
def test_grpo_learns_to_call_the_tool_and_read_its_output(runs):
    learned, _ = runs
    h = learned.history
    assert len(h) == MAX_STEPS
    # The first step samples the warm-started model: it calls the tool on a small share of its
    # samples and guesses otherwise.
    assert h[0]["reward"] <= 0.3 and h[0]["tools/calls_per_rollout"] <= 0.3
    # GRPO learns that calling pays, and to copy the printed digit exactly.
    assert _mean(h, "tools/calls_per_rollout", slice(-10, None)) >= 0.9
    assert _mean(h, "reward", slice(-10, None)) >= 0.7, [round(x["reward"], 2) for x in h]
    assert learned.greedy_accuracy is not None and learned.greedy_accuracy >= 0.9
    # Every call ran in the sandbox, none hit the time limit; the few errors are programs the model
    # garbled while sampling (a digit lost from `print(f(123))`), rarer as it learns.
    assert all(x["tools/timeouts"] == 0 for x in h)
    assert _mean(h, "tools/error_rate", slice(-10, None)) <= 0.1
    assert all(x["tools/time_s"] > 0 for x in h[-10:])


@pytest.mark.timeout(900)
def test_without_the_tool_the_same_run_stays_at_chance(runs):
    _, control = runs
    rewards = [x["reward"] for x in control.history]
    assert len(rewards) == MAX_STEPS
    assert max(sum(rewards[i:i + 10]) / 10 for i in range(len(rewards) - 9)) <= 0.2
    assert control.greedy_accuracy is not None and control.greedy_accuracy <= 0.25
    assert "tools/calls_per_rollout" not in control.history[-1]


def test_the_sandboxs_f_is_the_gold_and_a_copied_call_reads_it(sandbox):
    """The setup code the tool runs and the records' answers come from the same function."""
    from grpo_fast.tools import build_tools
    from grpo_fast.tools.base import ToolCall
    from grpo_fast.trainer.toy_tasks import SECRET_FN_SETUP, get_toy_task

    records = get_toy_task("secret_fn").records
    [tool] = build_tools(["python"], sandbox=sandbox, setup_code=SECRET_FN_SETUP)
    picks = records[::97]
    got = tool.run_batch([ToolCall("python", {"code": f"print(f({r['prompt'][2:-2]}))\n"}) for r in picks])
    assert [x.output for x in got] == [r["answer"] + "\n" for r in picks]
    # Every digit is an answer about as often: guessing is right one time in ten.
    counts = [sum(r["answer"] == str(d) for r in records) for d in range(10)]
    assert min(counts) >= 60 and max(counts) <= 120


@pytest.mark.parametrize(("case", "response", "correct"), [
    ("the answer after the tool call", "```\nprint(f(123))\n```\n```output\n```\n7", True),
    ("the answer at once", "7", True),
    ("a wrong digit", "```\nprint(f(123))\n```\n```output\n```\n3", False),
    ("the answer only inside the call", "```\nprint(7)\n```\n```output\n```\n", False),
    ("more than the digit on the last line", "the answer is 7", False),
])
def test_toy_last_line_judges_the_last_line_exactly(case, response, correct):
    from grpo_fast.trainer.toy_tasks import ToyLastLineVerifier
    from grpo_fast.verifiers.base import VerifyItem

    [v] = ToyLastLineVerifier().verify_batch([VerifyItem("f(123)=", response, {"answer": "7"})])
    assert v.correct is correct, case
