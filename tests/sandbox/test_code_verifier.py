"""The `code` verifier and the TRL reward function, end to end through the real daemon."""

from __future__ import annotations

import pytest

from grpo_fast.errors import ConfigError
from grpo_fast.rewards.code import make_code_reward
from grpo_fast.verifiers import VerifyItem
from grpo_fast.verifiers.code import CodeVerifier, extract_code

GOOD = "Here you go:\n```python\na, b = map(int, input().split())\nprint(a + b)\n```\n"
HALF = "```python\na, b = map(int, input().split())\nprint(a + b if a < 5 else 0)\n```"
TESTS = [{"input": "1 2\n", "output": "3\n"}, {"input": "7 8\n", "output": "15\n"}]


@pytest.mark.parametrize(
    "response, want",
    [
        ("```python\nprint(1)\n```", "print(1)\n"),
        ("```py\nprint(1)\n```\ntext\n```python\nprint(2)\n```", "print(2)\n"),
        ("```python\nprint(1)\n```\n```bash\nls\n```", "print(1)\n"),
        ("```\nprint(3)\n```", "print(3)\n"),
        ("no code at all", None),
        ("```python\nprint(4)\n", "print(4)\n"),
        ("~~~python\nprint(5)\n~~~", "print(5)\n"),
    ],
    ids=["one_block", "last_python_block_wins", "other_languages_ignored", "untagged_block", "no_block",
         "unterminated_block", "tilde_fence"],
)
def test_extract_code(response, want):
    assert extract_code(response) == want


@pytest.fixture(scope="module")
def verifier(sandbox):
    return CodeVerifier(client=sandbox)


def test_scores_fraction_of_tests(verifier):
    items = [VerifyItem("p", GOOD, {"tests": TESTS}), VerifyItem("p", HALF, {"tests": TESTS}),
             VerifyItem("p", "I don't know", {"tests": TESTS})]
    v = verifier.verify_batch(items)
    assert [x.score for x in v] == [1.0, 0.5, 0.0]
    assert [x.reason for x in v] == ["correct", "wrong", "no_answer"]
    assert v[1].details["tests_passed"] == 1 and v[1].details["tests_total"] == 2
    assert v[1].details["execution_output"] == "0\n"
    assert v[0].extracted.startswith("a, b =")


def test_all_or_nothing_scoring(sandbox):
    v = CodeVerifier(client=sandbox, scoring="all").verify_batch([VerifyItem("p", HALF, {"tests": TESTS})])
    assert v[0].score == 0.0 and v[0].correct is False


def test_fresh_process_per_test_option(sandbox):
    # A module attribute counts the tests its process ran: 0 for every test only when each has
    # a process of its own.
    code = "```python\nimport math\nn = getattr(math, '_n', 0)\nmath._n = n + 1\ninput()\nprint(n)\n```"
    tests = [{"stdin": "x", "expected_stdout": "0"}] * 3
    shared = CodeVerifier(client=sandbox).verify_batch([VerifyItem("p", code, {"tests": tests})])
    fresh = CodeVerifier(client=sandbox, fresh_process_per_test=True).verify_batch([VerifyItem("p", code, {"tests": tests})])
    assert shared[0].details["tests_passed"] == 1 and fresh[0].score == 1.0


def test_humaneval_and_mbpp_records(verifier):
    he = {"tests": {"test": "def check(candidate):\n    assert candidate([1, 2]) == 3\n", "entry_point": "total"}}
    mbpp = {"tests": ["assert total([1, 2]) == 3", "assert total([]) == 0"]}
    resp = "```python\ndef total(xs):\n    return sum(xs)\n```"
    v = verifier.verify_batch([VerifyItem("p", resp, he), VerifyItem("p", resp, mbpp)])
    assert [x.score for x in v] == [1.0, 1.0]


def test_execution_output_of_a_crash(verifier):
    resp = "```python\nraise SystemError('model bug')\n```"
    v = verifier.verify_batch([VerifyItem("p", resp, {"tests": TESTS})])[0]
    assert v.score == 0.0 and "SystemError: model bug" in v.details["execution_output"]


def test_timeouts_are_reported(sandbox):
    resp = "```python\nwhile True:\n    pass\n```"
    v = CodeVerifier(client=sandbox, timeout_ms=200).verify_batch([VerifyItem("p", resp, {"tests": TESTS})])[0]
    assert v.score == 0.0 and v.reason == "timeout"


def test_record_without_tests_is_no_verdict(verifier):
    v = verifier.verify_batch([VerifyItem("p", GOOD, {})])[0]
    assert v.score is None and v.reason == "error"


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError):
        CodeVerifier(scoring="most")


def test_many_items_in_one_batch(verifier):
    items = [VerifyItem("p", GOOD if i % 3 else HALF, {"tests": TESTS}) for i in range(60)]
    scores = [v.score for v in verifier.verify_batch(items)]
    assert scores == [1.0 if i % 3 else 0.5 for i in range(60)]


def test_trl_reward_function_plain_and_conversational(verifier):
    reward = make_code_reward(verifier)
    plain = reward(prompts=["a", "b"], completions=[GOOD, HALF], tests=[TESTS, TESTS])
    assert plain == [1.0, 0.5]
    conv = reward(
        prompts=[[{"role": "user", "content": "sum"}]],
        completions=[[{"role": "assistant", "content": GOOD}]],
        tests=[TESTS],
    )
    assert conv == [1.0]
    he = reward(prompts=["x"], completions=["```python\ndef f(x):\n    return x\n```"],
                tests=["def check(candidate):\n    assert candidate(2) == 2\n"], entry_point=["f"])
    assert he == [1.0]


def test_registered_under_code():
    from grpo_fast.verifiers import get_verifier

    assert isinstance(get_verifier("code"), CodeVerifier)
