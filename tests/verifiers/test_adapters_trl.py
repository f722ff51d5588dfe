"""Verifiers as TRL reward functions, called the way TRL 1.16 calls them: keyword `prompts`,
`completions` (strings, or lists of messages), `completion_ids`, every dataset column as a list,
`trainer_state`, `log_extra`, `log_metric`; None read as NaN; `async def` ones on TRL's event loop.
The last tests run TRL's own `GRPOTrainer` (a real step, and its `_calculate_rewards`) with them."""

from __future__ import annotations

import asyncio
import inspect
import math
import pickle

import pytest

from grpo_fast.errors import ConfigError, GrpoError
from grpo_fast.rewards import AsyncVerifierReward, VerifierReward, make_reward
from grpo_fast.rewards.trl import completion_records, reward_name
from grpo_fast.verifiers import MathVerifier


class _Log:
    def __init__(self):
        self.metrics: dict[str, list[float]] = {}
        self.extra: dict[str, list] = {}

    def metric(self, name, value):
        self.metrics.setdefault(name, []).append(value)

    def column(self, name, values):
        self.extra.setdefault(name, []).extend(values)


def trl_call(fn, prompts, completions, **columns):
    """Keyword arguments exactly as `GRPOTrainer._calculate_rewards` passes them."""
    log = _Log()
    kwargs = dict(
        prompts=prompts,
        completions=completions,
        completion_ids=[[5, 6, 7]] * len(completions),
        **columns,
        trainer_state=object(),
        log_extra=log.column,
        log_metric=log.metric,
    )
    out = asyncio.run(fn(**kwargs)) if inspect.iscoroutinefunction(type(fn).__call__) else fn(**kwargs)
    return out, log


MATH_COMPLETIONS = [
    "First, 48 / 2 = 24 clips in May. In total 48 + 24 = 72.\nThe answer is $\\boxed{72}$.",
    "<think>48 + 24 = 72</think>\nNatalia sold \\boxed{72} clips.",
    "She sold 48 + 24 = 70 clips altogether. #### 70",
    "I cannot determine this.",
]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_standard_format_string_completions(asynchronous):
    reward = make_reward("math", asynchronous=asynchronous)
    out, log = trl_call(
        reward,
        ["Natalia sold clips ..."] * 4,
        MATH_COMPLETIONS,
        answer=["#### 72"] * 4,
        question=["Natalia sold clips ..."] * 4,
    )
    assert out == [1.0, 1.0, 0.0, 0.0]
    assert all(type(x) is float for x in out)
    assert log.metrics == {"rewards/math/verification_rate": [1.0]}
    assert log.extra["math_reason"] == ["correct", "correct", "wrong", "no_answer"]
    assert log.extra["math_extracted"][:3] == ["72", "72", "70"]


def test_conversational_completions_with_tool_turns():
    prompts = [
        [
            {"role": "system", "content": "Reason step by step."},
            {"role": "user", "content": "What is 1/2 + 1/4?"},
        ]
    ] * 3
    completions = [
        [{"role": "assistant", "content": "Adding: $\\frac{1}{2}+\\frac{1}{4}=\\boxed{\\frac{3}{4}}$"}],
        [
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "calc"}}]},
            {"role": "tool", "content": "0.75"},
            {"role": "assistant", "content": "The tool says 0.75, so the answer is \\boxed{0.75}."},
        ],
        [{"role": "assistant", "content": [{"type": "text", "text": "So it is \\boxed{1/2}"}]}],
    ]
    out, _ = trl_call(make_reward("math"), prompts, completions, solution=["$\\frac34$"] * 3)
    assert out == [1.0, 1.0, 0.0]


def test_gold_from_solution_and_named_columns():
    # MATH's `solution` column holds the worked solution; its \boxed{} is the gold.
    out, _ = trl_call(
        make_reward("math"), ["p"], ["so $x = \\boxed{5}$"], solution=["We solve ... hence $\\boxed{5}$."]
    )
    assert out == [1.0]
    out, _ = trl_call(
        make_reward("math", gold_column="final"),
        ["p", "p"],
        ["\\boxed{12}", "\\boxed{13}"],
        final=["12", "12"],
        answer=["13", "13"],
    )
    assert out == [1.0, 0.0]  # the named column wins over `answer`
    with pytest.raises(ConfigError, match="no dataset column 'final'"):
        trl_call(make_reward("math", gold_column="final"), ["p"], ["\\boxed{1}"], answer=["1"])


def test_no_verdict_is_none_and_none_score_replaces_it():
    with MathVerifier(timeout=0.5, workers=1) as v:
        # A missing gold (None in the column) and a comparison that cannot finish in time.
        completions = ["\\boxed{3}", "\\boxed{100000000! - 100000000! + 1}", "\\boxed{2}"]
        out, log = trl_call(make_reward(v), ["q"] * 3, completions, answer=[None, "1", "2"])
        assert out == [None, None, 1.0]
        assert log.metrics["rewards/math/verification_rate"] == [pytest.approx(1 / 3)]
        out, _ = trl_call(make_reward(v, none_score=0.0), ["q"], ["\\boxed{3}"], answer=[None])
        assert out == [0.0]


def test_composite_and_every_registered_verifier_by_name():
    reward = make_reward("math=0.9,format=0.1")
    assert reward.__name__ == "math+format"
    out, _ = trl_call(reward, ["q", "q"], ["<think>2+2</think> \\boxed{4}", "\\boxed{4}"], answer=["4", "4"])
    assert out == [pytest.approx(1.0), pytest.approx(0.9)]
    out, _ = trl_call(make_reward("format"), ["q", "q"], ["<think>a</think>\\boxed{1}", "no tags"])
    assert out == [1.0, 0.0]
    with pytest.raises(GrpoError, match="unknown verifier"):
        trl_call(make_reward("no_such_verifier"), ["q"], ["a"])


def test_length_mismatches_are_errors():
    with pytest.raises(ConfigError, match="2 prompts for 1 completions"):
        make_reward("math")(prompts=["a", "b"], completions=["x"], answer=["1"])
    with pytest.raises(ConfigError, match="needs `completions`"):
        make_reward("math")(prompts=["a"])


def test_names_async_detection_and_pickling():
    from trl.trainer.utils import get_callable_name, is_async_callable

    sync, asyn = make_reward("math"), make_reward("pkg.mod:exact=2,format", asynchronous=True)
    assert isinstance(asyn, AsyncVerifierReward) and isinstance(sync, VerifierReward)
    assert get_callable_name(sync) == "math" and get_callable_name(asyn) == "exact+format"
    assert is_async_callable(asyn) and not is_async_callable(sync)
    clone = pickle.loads(pickle.dumps(make_reward("math")))
    assert trl_call(clone, ["q"], ["\\boxed{7}"], answer=["7"])[0] == [1.0]
    assert reward_name(["math=3", "format=1"]) == "math+format"


def test_completion_records_repeat_columns_per_completion():
    recs = completion_records(
        2, {"answer": ["1", "2"], "level": "hard", "trainer_state": object(), "solution": ["s1", "s2"]}
    )
    assert recs == [
        {"level": "hard", "answer": "1", "solution": "s1"},
        {"level": "hard", "answer": "2", "solution": "s2"},
    ]
    assert completion_records(1, {"target": [3]}) == [{"target": 3, "answer": 3}]


# ------------------------------------------------------------------------------- TRL's own trainer


@pytest.fixture(scope="module")
def trl_trainer(tmp_path_factory):
    """TRL's GRPOTrainer on a tiny random-init Qwen2 (512-token vocabulary) on CPU, with a sync and
    an async reward of ours, one training step taken."""
    import warnings

    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from grpo_fast.trainer.local_model import build_qwen2

    warnings.filterwarnings("ignore", category=UserWarning)
    model, tok = build_qwen2(vocab_size=512, seed=0)
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {a}+{b}? Put it in \\boxed{{}}."}],
            "answer": str(a + b),
        }
        for a, b in [(1, 2), (3, 4)]
    ]
    calls: list[dict] = []

    class Recorded(VerifierReward):
        def __call__(self, **kwargs):
            calls.append(kwargs)
            return super().__call__(**kwargs)

    args = trl.GRPOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl")),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=1,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    rewards = [Recorded("math"), make_reward("format", asynchronous=True)]
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tok,
    )
    trainer.train()
    return trainer, calls


def test_a_real_trl_grpo_step_with_sync_and_async_rewards(trl_trainer):
    trainer, calls = trl_trainer
    logs = trainer.state.log_history[0]
    for name in ("math", "format"):
        assert logs[f"rewards/{name}/mean"] == 0.0  # a random-init model writes no answer
        assert logs[f"rewards/{name}/verification_rate"] == 1.0
    (call,) = calls
    assert {
        "prompts",
        "completions",
        "completion_ids",
        "answer",
        "trainer_state",
        "log_extra",
        "log_metric",
    } <= set(call)
    assert len(call["completions"]) == 4 and call["completions"][0][0]["role"] == "assistant"
    assert call["answer"] in (["3"] * 4, ["7"] * 4)


def test_trl_calculate_rewards_reads_none_as_nan(trl_trainer):
    trainer, _ = trl_trainer
    prompts = [[{"role": "user", "content": "What is 3+4?"}]] * 3
    completions = [
        [{"role": "assistant", "content": "<think>3+4</think> \\boxed{7}"}],
        [{"role": "assistant", "content": "It is \\boxed{8}"}],
        [{"role": "assistant", "content": "\\boxed{7}"}],
    ]
    inputs = [{"prompt": p, "answer": a} for p, a in zip(prompts, ["7", "7", None], strict=True)]
    rewards = trainer._calculate_rewards(inputs, prompts, completions, [[1, 2]] * 3)
    math_col, format_col = rewards[:, 0].tolist(), rewards[:, 1].tolist()
    assert math_col[:2] == [1.0, 0.0] and math.isnan(math_col[2])  # no gold: None -> NaN
    assert format_col == [1.0, 0.0, 0.0]
