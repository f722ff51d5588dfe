"""The `code` verifier runs each distinct program of a batch once (`dedupe`), against the real
daemon: what the daemon really ran is read from its own counters (`GET /metrics`)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from grpo_fast.cli import main
from grpo_fast.errors import ConfigError
from grpo_fast.rewards import make_reward
from grpo_fast.rewards.verl import close_verifiers, compute_score_batch
from grpo_fast.verifiers import VerifyItem, build_verifier
from grpo_fast.verifiers.code import CodeVerifier, request_key

TESTS = [{"input": "1 2\n", "output": "3\n"}, {"input": "7 8\n", "output": "15\n"}]
OTHER_TESTS = [{"input": "2 2\n", "output": "4\n"}, {"input": "9 1\n", "output": "10\n"}]


def fenced(code: str, chatter: str = "") -> str:
    return f"{chatter}```python\n{code}```\n"


CORRECT = "a, b = map(int, input().split())\nprint(a + b)\n"
HALF = "a, b = map(int, input().split())\nprint(a + b if a < 5 else 0)\n"
CRASH = "raise SystemError('model bug')\n"
SPIN = "while True:\n    pass\n"
# Prints 16 random hex digits as its answer: its failure output differs from run to run.
RANDOM = "import os\ninput()\nprint(os.urandom(8).hex())\n"


def _counters(sandbox) -> dict[str, float]:
    out = {}
    for line in sandbox.metrics().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _test_requests(sandbox) -> float:
    """Tests requests the daemon has run, whatever their outcome."""
    return sum(v for k, v in _counters(sandbox).items() if k.startswith("grpo_sandbox_test_requests_total{"))


def _runs_of(sandbox, fn):
    """(what fn returned, tests requests the daemon ran meanwhile)."""
    before = _test_requests(sandbox)
    out = fn()
    return out, _test_requests(sandbox) - before


def _same(a, b) -> bool:
    """Equal verdicts, the dedupe marker aside."""
    da = {k: v for k, v in (a.details or {}).items() if k != "deduplicated"}
    db = {k: v for k, v in (b.details or {}).items() if k != "deduplicated"}
    return (a.score, a.correct, a.reason, a.extracted, da) == (b.score, b.correct, b.reason, b.extracted, db)


def test_a_group_of_copies_is_run_once(sandbox):
    # A group of 8 as a confident policy samples it: one program five times (with different
    # prose around the same code block), another twice, one once.
    texts = [fenced(CORRECT, f"Attempt {i}:\n") for i in range(5)] + [fenced(HALF)] * 2 + [fenced(CRASH)]
    items = [VerifyItem("p", t, {"tests": TESTS}) for t in texts]
    on, runs_on = _runs_of(sandbox, lambda: CodeVerifier(client=sandbox).verify_batch(items))
    off, runs_off = _runs_of(sandbox, lambda: CodeVerifier(client=sandbox, dedupe=False).verify_batch(items))
    assert (runs_on, runs_off) == (3, 8)
    assert [v.score for v in on] == [1.0] * 5 + [0.5] * 2 + [0.0]
    assert [(v.details or {}).get("deduplicated", False) for v in on] == [False] + [True] * 4 + [
        False,
        True,
        False,
    ]
    assert not any("deduplicated" in (v.details or {}) for v in off)
    assert all(_same(a, b) for a, b in zip(on, off, strict=True))


def test_mixed_batch_gets_the_verdicts_of_running_every_copy(sandbox):
    # Interleaved copies of correct, wrong, crashing and timed-out programs, the same program
    # against other tests (another record: not a copy), responses without code, and a record
    # without tests; the order of the verdicts is the order of the items.
    plan = [
        (CORRECT, TESTS),
        (SPIN, TESTS),
        (HALF, TESTS),
        (CORRECT, OTHER_TESTS),
        (CRASH, TESTS),
        (CORRECT, TESTS),
        (None, TESTS),
        (SPIN, TESTS),
        (HALF, TESTS),
        (CRASH, TESTS),
        (HALF, OTHER_TESTS),
        (CORRECT, None),
        (CORRECT, TESTS),
        (None, TESTS),
        (SPIN, TESTS),
        (HALF, TESTS),
    ]
    items = [
        VerifyItem(
            "p",
            fenced(code) if code is not None else "I cannot solve this.",
            {"tests": tests} if tests is not None else {},
        )
        for code, tests in plan
    ]
    on, runs_on = _runs_of(sandbox, lambda: CodeVerifier(client=sandbox, timeout_ms=300).verify_batch(items))
    off, runs_off = _runs_of(
        sandbox, lambda: CodeVerifier(client=sandbox, timeout_ms=300, dedupe=False).verify_batch(items)
    )
    distinct = {(code, json.dumps(tests)) for code, tests in plan if code is not None and tests is not None}
    sent = sum(1 for code, tests in plan if code is not None and tests is not None)
    assert (runs_on, runs_off) == (len(distinct), sent) == (6, 13)
    assert [v.reason for v in on] == [
        "correct",
        "timeout",
        "wrong",
        "correct",
        "wrong",
        "correct",
        "no_answer",
        "timeout",
        "wrong",
        "wrong",
        "wrong",
        "error",
        "correct",
        "no_answer",
        "timeout",
        "wrong",
    ]
    assert [v.score for v in on] == [
        1.0,
        0.0,
        0.5,
        1.0,
        0.0,
        1.0,
        0.0,
        0.0,
        0.5,
        0.0,
        0.5,
        None,
        1.0,
        0.0,
        0.0,
        0.5,
    ]
    for a, b in zip(on, off, strict=True):
        assert _same(a, b), (a, b)
    copies = [i for i, v in enumerate(on) if (v.details or {}).get("deduplicated")]
    assert copies == [5, 7, 8, 9, 12, 14, 15]
    assert "SystemError: model bug" in on[9].details["execution_output"]


def test_a_copys_details_are_its_own(sandbox):
    items = [VerifyItem("p", fenced(HALF), {"tests": TESTS})] * 3
    v = CodeVerifier(client=sandbox).verify_batch(items)
    v[1].details["tests_passed"] = 99
    v[1].details["first_failure"]["index"] = 42
    v[2].details.clear()
    assert v[0].details["tests_passed"] == 1 and v[0].details["first_failure"]["index"] == 1
    assert (
        v[0].details is not v[1].details
        and v[0].details["first_failure"] is not v[1].details["first_failure"]
    )
    assert "deduplicated" not in v[0].details and v[1].details["deduplicated"] is True


def test_dedupe_off_gives_each_copy_its_own_draw(sandbox):
    # A program whose output is random: without dedupe each copy is run, and its failure output
    # (16 random hex digits) differs from every other copy's; with dedupe all share one draw.
    items = [VerifyItem("p", fenced(RANDOM), {"tests": [{"input": "x\n", "output": "0\n"}]})] * 6
    off, runs_off = _runs_of(sandbox, lambda: CodeVerifier(client=sandbox, dedupe=False).verify_batch(items))
    on, runs_on = _runs_of(sandbox, lambda: CodeVerifier(client=sandbox).verify_batch(items))
    assert (runs_off, runs_on) == (6, 1)
    assert len({v.details["execution_output"] for v in off}) == 6
    assert len({v.details["execution_output"] for v in on}) == 1


@pytest.mark.parametrize(
    "option, value",
    [
        ("compare", "tokens"),
        ("timeout_ms", 1500),
        ("memory_mb", 300),
        ("fresh_process_per_test", True),
        ("scoring", "all"),
        ("float_tolerance", 1e-3),
    ],
    ids=[
        "compare_mode",
        "time_limit",
        "memory_limit",
        "process_per_test",
        "stop_at_first_failure",
        "tolerance",
    ],
)
def test_every_option_the_daemon_reads_is_part_of_the_key(option, value):
    item = VerifyItem("p", fenced(CORRECT), {"tests": TESTS})
    base = CodeVerifier(client=object())._request(item)[0]
    other = CodeVerifier(client=object(), **{option: value})._request(item)[0]
    assert request_key(base) != request_key(other)


@pytest.mark.parametrize(
    "record_a, record_b, same",
    [
        ({"tests": TESTS}, {"tests": [dict(reversed(list(t.items()))) for t in TESTS]}, True),
        ({"tests": TESTS}, {"tests": TESTS[::-1]}, False),
        ({"tests": TESTS}, {"tests": {"inputs": ["1 2\n", "7 8\n"], "outputs": ["3\n", "15\n"]}}, True),
        ({"tests": TESTS, "language": "python"}, {"tests": TESTS, "language": "py"}, True),
        (
            {"tests": "def check(candidate):\n    assert candidate(1) == 1\n", "entry_point": "f"},
            {"tests": "def check(candidate):\n    assert candidate(1) == 1\n", "entry_point": "g"},
            False,
        ),
        (
            {"tests": ["assert f(1) == 1"]},
            {"tests": ["assert f(1) == 1"], "test_imports": ["import math"]},
            False,
        ),
    ],
    ids=[
        "field_names_of_a_case",
        "test_order_is_content",
        "apps_columns_equal_case_list",
        "language_alias",
        "entry_point",
        "test_imports",
    ],
)
def test_key_is_the_request_the_daemon_gets(record_a, record_b, same):
    v = CodeVerifier(client=object())
    a = v._request(VerifyItem("p", fenced(CORRECT), record_a))[0]
    b = v._request(VerifyItem("p", fenced(CORRECT), record_b))[0]
    assert (request_key(a) == request_key(b)) is same


def test_key_ignores_the_order_of_keys_only():
    assert request_key({"code": "x", "tests": [{"stdin": "1", "expected_stdout": "1"}]}) == request_key(
        {"tests": [{"expected_stdout": "1", "stdin": "1"}], "code": "x"}
    )
    # JSON tells these apart, and so does the daemon's reading of them.
    assert request_key({"timeout_ms": 1}) != request_key({"timeout_ms": 1.0})
    assert request_key({"flag": True}) != request_key({"flag": 1})
    assert request_key({"code": "x"}) != request_key({"code": "x "})
    assert request_key({"a": "b", "c": ""}) != request_key({"a": "", "c": "b"})
    assert request_key({"args": [1, 2]}) == request_key({"args": (1, 2)})  # one JSON array


@pytest.mark.parametrize("size", [10, 4095, 4096, 1 << 20], ids=["short", "just_short", "long", "megabyte"])
def test_key_of_test_data_of_any_length(size):
    # Long strings are hashed once per batch by identity: equal text in other objects must still
    # give one key, and one character apart (at the end) another, within one memo as across two.
    text = "1 " * (size // 2) + "9"[: size % 2]
    same, other = "".join(list(text)), text[:-1] + ("x" if text[-1:] != "x" else "y")
    memo: dict = {}
    key = request_key({"tests": [{"stdin": text}]}, memo)
    assert request_key({"tests": [{"stdin": same}]}, memo) == key == request_key({"tests": [{"stdin": same}]})
    assert request_key({"tests": [{"stdin": other}]}, memo) != key
    assert request_key({"tests": [{"stdin": text, "expected_stdout": ""}]}, memo) != key


def test_a_body_that_is_not_plain_json_is_never_shared():
    assert request_key({"code": "x", "tests": [{"stdin": object()}]}) is None
    assert request_key({"code": "x", "tests": [], 1: "mixed key types"}) is None


def test_dedupe_must_be_a_bool():
    with pytest.raises(ConfigError, match="dedupe must be true or false"):
        CodeVerifier(dedupe="false")


# ---- the routes that configure it -------------------------------------------------------------


def test_config_file_and_shared_option_reach_the_code_verifier(tmp_path):
    cfg = tmp_path / "verifiers.toml"
    cfg.write_text('[[verifier]]\nname = "code"\ndedupe = false\n')
    with build_verifier(config=str(cfg)) as v:
        assert v.dedupe is False
    with build_verifier(specs=["code"]) as v:
        assert v.dedupe is True
    # A shared option goes to the verifiers that take it (math does not).
    with build_verifier(specs=["code=0.5", "format=0.5"], dedupe=False) as v:
        assert [p.dedupe for p, _ in v.parts if isinstance(p, CodeVerifier)] == [False]


@pytest.fixture()
def local_daemon(sandbox, monkeypatch):
    """The test daemon as the one `CodeVerifier()` finds on its own."""
    monkeypatch.delenv("GRPO_SANDBOX", raising=False)
    monkeypatch.setenv("GRPO_SANDBOX_SOCKET", sandbox.socket_path)
    return sandbox


def test_cli_flag(local_daemon, tmp_path):
    rec = {
        "id": "sum",
        "prompt": "Add two integers.",
        "tests": TESTS,
        "responses": [{"text": fenced(CORRECT)}] * 4 + [{"text": fenced(HALF)}] * 2,
    }
    src = tmp_path / "groups.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    out = tmp_path / "verified.jsonl"
    got = {}
    for flag in ([], ["--no-code-dedupe"], ["--code-dedupe"]):
        before = _test_requests(local_daemon)
        r = CliRunner().invoke(main, ["verify", "--verifier", "code", *flag, str(src), "-o", str(out)])
        assert r.exit_code == 0, r.output
        responses = json.loads(out.read_text())["responses"]
        assert [x["score"] for x in responses] == [1.0] * 4 + [0.5] * 2
        got[tuple(flag)] = (
            _test_requests(local_daemon) - before,
            [x.get("deduplicated", False) for x in responses],
        )
    assert got[()] == got[("--code-dedupe",)] == (2, [False, True, True, True, False, True])
    assert got[("--no-code-dedupe",)] == (6, [False] * 6)
    r = CliRunner().invoke(
        main, ["verify", "--verifier", "math", "--no-code-dedupe", str(src), "-o", str(out)]
    )
    assert r.exit_code != 0 and "code verifier" in r.output


def test_trl_and_verl_adapters_take_it(local_daemon):
    completions = [fenced(CORRECT)] * 4
    for options, want in (({}, 1), ({"dedupe": False}, 4)):
        reward = make_reward("code", **options)
        try:
            scores, runs = _runs_of(
                local_daemon,
                lambda r=reward: r(prompts=["p"] * 4, completions=completions, tests=[TESTS] * 4),
            )
        finally:
            reward.verifier.close()
        assert (scores, runs) == ([1.0] * 4, want)
        try:
            results, runs = _runs_of(
                local_daemon,
                lambda o=options: compute_score_batch(["codecontests"] * 4, completions, [TESTS] * 4, **o),
            )
        finally:
            close_verifiers()
        assert ([x["score"] for x in results], runs) == ([1.0] * 4, want)
