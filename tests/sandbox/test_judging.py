"""Judging against the real daemon: HumanEval-shaped checks run in a process the program never
touched (honest solutions pass, forged values fail), CPU time as the limit with the wall clock as
the backstop (reported which), all-or-nothing requests stopping at the first failed test, and
languages refused up front with what the daemon runs."""

from __future__ import annotations

import textwrap

import pytest

from grpo_fast.errors import ConfigError
from grpo_fast.verifiers import VerifyItem
from grpo_fast.verifiers.code import CodeVerifier

# ---- HumanEval's shapes of `check`: an honest solution passes every one -------------------------

ADD = "def add(a, b):\n    return a + b\n"

CHECK_SHAPES = {
    "plain_asserts": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n",
    "assert_with_message": "def check(candidate):\n    assert candidate(2, 3) == 5, 'two and three'\n",
    "loop_over_inputs": textwrap.dedent("""\
        def check(candidate):
            for a, b, want in [(1, 2, 3), (0, 0, 0), (10, -3, 7)]:
                assert candidate(a, b) == want, (a, b)
    """),
    "assignment_then_assert": "def check(candidate):\n    got = candidate(4, 5)\n    assert got == 9\n",
    "print_in_check": "def check(candidate):\n    print('checking add')\n    assert candidate(1, 1) == 2\n",
    "abs_tolerance": "def check(candidate):\n    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-6\n",
    "math_isclose": "import math\n\ndef check(candidate):\n    assert math.isclose(candidate(0.5, 0.25), 0.75)\n",
    "reference_function": textwrap.dedent("""\
        def check(candidate):
            def ref(a, b):
                return a + b
            for x in range(20):
                assert candidate(x, 2 * x) == ref(x, 2 * x)
    """),
    "metadata_and_bare_asserts_true": textwrap.dedent("""\
        METADATA = {'author': 'jt', 'dataset': 'test'}

        def check(candidate):
            assert candidate(3, 4) == 7
            assert True, 'This prints if this assert fails (also good for debugging!)'
    """),
    "random_inputs_with_seed": textwrap.dedent("""\
        import random

        def check(candidate):
            rng = random.Random(0)
            for _ in range(50):
                a, b = rng.randint(-100, 100), rng.randint(-100, 100)
                assert candidate(a, b) == a + b
    """),
}

SORT = "def sort_unique(xs):\n    return sorted(set(xs))\n"

COLLECTION_SHAPES = {
    "set_equality": "def check(candidate):\n    assert set(candidate([3, 1, 3])) == {1, 3}\n",
    "sorted_result": "def check(candidate):\n    assert sorted(candidate([5, 4, 5])) == [4, 5]\n",
    "len_and_index": "def check(candidate):\n    r = candidate([2, 2, 1])\n    assert len(r) == 2 and r[0] == 1\n",
    "comparison_chain": "def check(candidate):\n    assert candidate([1]) < candidate([2]) <= [2]\n",
    "tuple_and_dict": "def check(candidate):\n    assert {tuple(candidate([1, 1])): 1} == {(1,): 1}\n",
}


@pytest.mark.parametrize("shape", sorted(CHECK_SHAPES))
def test_honest_solution_passes_every_check_shape(sandbox, shape):
    r = sandbox.run_tests(ADD, test_code=CHECK_SHAPES[shape], entry_point="add")
    assert r["status"] == "ok" and r["passed"] == r["total"] >= 1, r


@pytest.mark.parametrize("shape", sorted(COLLECTION_SHAPES))
def test_honest_solution_passes_collection_checks(sandbox, shape):
    r = sandbox.run_tests(SORT, test_code=COLLECTION_SHAPES[shape], entry_point="sort_unique")
    assert r["passed"] == r["total"] >= 1, r


def test_wrong_solution_fails_every_check_shape(sandbox):
    wrong = "def add(a, b):\n    return a - b\n"
    for shape, check in CHECK_SHAPES.items():
        if shape == "print_in_check":  # 1 - 1 != 2 fails too, but keep one clearly wrong input
            continue
        r = sandbox.run_tests(wrong, test_code=check, entry_point="add")
        assert r["passed"] < r["total"], (shape, r)


def test_check_sees_the_programs_helpers_and_constants(sandbox):
    # HumanEval/38-style: the check calls a helper the prompt defines (`encode_cyclic`), and MBPP
    # style asserts name the function directly; a plain constant of the program is visible too.
    code = textwrap.dedent("""\
        SHIFT = 1
        def encode(s):
            return "".join(chr(ord(c) + SHIFT) for c in s)
        def decode(s):
            return "".join(chr(ord(c) - SHIFT) for c in s)
    """)
    check = textwrap.dedent("""\
        def check(candidate):
            for word in ["abc", "hello", ""]:
                assert candidate(encode(word)) == word
            assert SHIFT == 1
    """)
    r = sandbox.run_tests(code, test_code=check, entry_point="decode")
    assert r["passed"] == 1, r


def test_arguments_changed_in_place_are_seen_by_the_check(sandbox):
    code = "def push(xs, x):\n    xs.append(x)\n"
    check = "def check(candidate):\n    xs = [1]\n    candidate(xs, 2)\n    assert xs == [1, 2]\n"
    r = sandbox.run_tests(code, test_code=check, entry_point="push")
    assert r["passed"] == 1, r


def test_an_exception_the_check_expects_still_reaches_it(sandbox):
    code = "def parse(s):\n    return int(s)\n"
    check = textwrap.dedent("""\
        def check(candidate):
            try:
                candidate("x")
            except ValueError:
                pass
            else:
                raise AssertionError("no ValueError")
            assert candidate("7") == 7
    """)
    r = sandbox.run_tests(code, test_code=check, entry_point="parse")
    assert r["passed"] == 1, r


# ---- time: CPU time is the limit, the wall clock the backstop -----------------------------------


def test_a_sleeper_is_cut_off_at_the_wall_backstop(sandbox):
    r = sandbox.run("import time\ntime.sleep(30)\n", timeout_ms=500)
    assert r["status"] == "timeout" and r["timeout_kind"] == "wall", r
    assert r["cpu_ms"] < 400, r  # it waited without a CPU
    # A blocked program is no different: a deadlock on a lock it holds.
    r = sandbox.run("import threading\nl = threading.Lock()\nl.acquire()\nl.acquire()\n", timeout_ms=500)
    assert r["status"] == "timeout" and r["timeout_kind"] == "wall", r


def test_a_spinner_is_cut_off_at_its_cpu_limit(sandbox):
    r = sandbox.run("while True:\n    pass\n", timeout_ms=500)
    assert r["status"] == "timeout", r
    # On a quiet host the CPU limit ends it; on a host so busy that the spinner got less than
    # its limit by the hard backstop (the limit times slots over cores, plus one), the wall.
    if r["timeout_kind"] == "cpu":
        assert r["cpu_ms"] >= 450, r
    else:
        assert r["timeout_kind"] == "wall" and r["wall_ms"] >= 2 * 500, r


def test_threads_spend_cpu_time_faster_than_the_wall_clock(sandbox):
    code = textwrap.dedent("""\
        import threading
        def spin():
            while True:
                pass
        for _ in range(3):
            threading.Thread(target=spin, daemon=True).start()
        spin()
    """)
    r = sandbox.run(code, timeout_ms=800)
    assert r["status"] == "timeout" and r["timeout_kind"] in ("cpu", "wall"), r
    assert r["cpu_ms"] >= 700 or r["timeout_kind"] == "wall", r


def test_timeouts_in_a_tests_request_say_which_limit(sandbox):
    code = "import time\nn = int(input())\nif n == 1:\n    time.sleep(30)\nif n == 2:\n    while True: pass\nprint(n)\n"
    tests = [{"stdin": str(i), "expected_stdout": str(i)} for i in range(4)]
    r = sandbox.run_tests(code, tests, timeout_ms=400)
    kinds = [(t["status"], t.get("timeout_kind")) for t in r["tests"]]
    assert kinds[0] == ("ok", None) and kinds[3] == ("ok", None), r
    assert kinds[1] == ("timeout", "wall"), r
    assert kinds[2][0] == "timeout", r
    assert r["passed"] == 2, r


# ---- all-or-nothing: stop at the first failed test -----------------------------------------------


def _tests_request(sandbox, code, tests, **kw):
    return sandbox._request("POST", "/run_tests", {"code": code, "tests": tests, **kw})


def test_stop_at_first_failure_reports_which_test_failed_and_skips_the_rest(sandbox):
    # The tests after the failure take a while, so the stop reaches the slot while they run (a
    # test that ends before the stop arrives is judged like any other).
    code = "import time\nn = int(input())\nif n > 2:\n    time.sleep(0.3)\nprint(99 if n == 2 else n)\n"
    tests = [{"stdin": str(i), "expected_stdout": str(i)} for i in range(6)]
    whole = _tests_request(sandbox, code, tests)
    assert [t["passed"] for t in whole["tests"]] == [True, True, False, True, True, True], whole
    r = _tests_request(sandbox, code, tests, stop_at_first_failure=True)
    assert r["first_failure"]["index"] == 2 and r["first_failure"]["reason"] == "wrong_output", r
    assert r["tests"][2]["status"] == "ok" and not r["tests"][2]["passed"], r
    after = r["tests"][3:]
    ran_after = sum(t["status"] == "ok" for t in after)
    assert r["passed"] == 2 + ran_after and not r["all_passed"] and r["total"] == 6, r
    # Tests after the failure that did not run, or were cut off when the stop came, are skipped.
    assert all(t["status"] in ("skipped", "ok") for t in after), r
    assert after[-1]["status"] == "skipped" and not after[-1]["passed"], r


def test_stop_at_first_failure_does_not_wait_for_later_timeouts(sandbox):
    code = "import time\nn = int(input())\nif n >= 1:\n    time.sleep(30)\nprint(n)\n"
    tests = [{"stdin": str(i), "expected_stdout": str(i)} for i in range(5)]
    r = _tests_request(sandbox, code, tests, stop_at_first_failure=True, timeout_ms=300)
    assert [t["status"] for t in r["tests"]] == ["ok", "timeout", "skipped", "skipped", "skipped"], r
    assert r["first_failure"]["index"] == 1, r


def _spread_count(sandbox) -> int:
    line = next(x for x in sandbox.metrics().splitlines() if x.startswith("grpo_sandbox_tests_spread_total "))
    return int(line.split()[1])


def test_tests_after_a_timeout_spread_over_idle_slots_with_the_same_verdicts(sandbox):
    # Even inputs block until the deadline. Run one after another, that is one limit per even
    # test; after the first timeout the rest go to the idle slots, and every verdict stays the
    # one a fresh process per test gives.
    code = "n = int(input())\nif n % 2 == 0:\n    import time; time.sleep(30)\nprint(n * 2)\n"
    tests = [{"stdin": f"{i}\n", "expected_stdout": f"{2 * i}\n"} for i in range(9)]
    before = _spread_count(sandbox)
    r = _tests_request(sandbox, code, tests, timeout_ms=300)
    assert _spread_count(sandbox) > before
    want = ["timeout" if i % 2 == 0 else "ok" for i in range(9)]
    assert [t["status"] for t in r["tests"]] == want, r
    assert [t["index"] for t in r["tests"]] == list(range(9)), r
    assert all(t["timeout_kind"] == "wall" for t in r["tests"] if t["status"] == "timeout"), r
    assert [t["stdout"] for t in r["tests"] if t["status"] == "ok"] == [f"{2 * i}\n" for i in range(1, 9, 2)]
    assert r["passed"] == 4 and r["total"] == 9, r
    fresh = _tests_request(sandbox, code, tests, timeout_ms=300, fresh_process_per_test=True)
    assert [(t["status"], t["passed"]) for t in fresh["tests"]] == [(t["status"], t["passed"]) for t in r["tests"]]


def test_no_spread_in_all_or_nothing_mode_or_for_the_last_tests(sandbox):
    code = "n = int(input())\nif n >= 3:\n    import time; time.sleep(30)\nprint(n)\n"
    tests = [{"stdin": str(i), "expected_stdout": str(i)} for i in range(5)]
    before = _spread_count(sandbox)
    r = _tests_request(sandbox, code, tests, stop_at_first_failure=True, timeout_ms=300)
    assert [t["status"] for t in r["tests"]] == ["ok", "ok", "ok", "timeout", "skipped"], r
    # Two tests left after a timeout are not worth a spread: they run on the same slot.
    r = _tests_request(sandbox, code, tests, timeout_ms=300)
    assert [t["status"] for t in r["tests"]] == ["ok", "ok", "ok", "timeout", "timeout"], r
    assert _spread_count(sandbox) == before


def test_stop_at_first_failure_with_assertion_tests(sandbox):
    code = "def add(a, b):\n    return a + b if a < 5 else 0\n"
    test_code = "assert add(1, 2) == 3\nassert add(6, 1) == 7\nassert add(2, 2) == 4\n"
    r = sandbox._request(
        "POST", "/run_tests", {"code": code, "test_code": test_code, "stop_at_first_failure": True}
    )
    assert r["first_failure"]["index"] == 1 and r["passed"] == 1, r


def test_all_passing_request_is_unaffected_by_stop_mode(sandbox):
    tests = [{"stdin": str(i), "expected_stdout": str(i)} for i in range(5)]
    r = _tests_request(sandbox, "print(input())", tests, stop_at_first_failure=True)
    assert r["all_passed"] and r["passed"] == 5, r
    # The slot serves the next request normally after a stopped one.
    _tests_request(sandbox, "print(0)", tests, stop_at_first_failure=True)
    r = sandbox.run_tests("print(input())", tests)
    assert r["all_passed"], r


def test_code_verifier_all_or_nothing_asks_the_daemon_to_stop(sandbox):
    v = CodeVerifier(scoring="all", client=sandbox)
    rec = {"tests": [{"stdin": str(i), "expected_stdout": str(i)} for i in range(5)]}
    [verdict] = v.verify_batch(
        [VerifyItem("", "```python\nn = int(input())\nprint(n if n != 1 else -1)\n```", rec)]
    )
    assert verdict.score == 0.0 and verdict.details["first_failure"]["index"] == 1, verdict
    assert verdict.details["tests_skipped"] >= 1, verdict


# ---- languages: refused before any work, with what the daemon runs --------------------------------


def test_daemon_refuses_unknown_language_with_a_suggestion(sandbox):
    from grpo_fast.sandbox.client import SandboxError

    with pytest.raises(SandboxError) as err:
        sandbox._request("POST", "/run", {"language": "pyhton", "code": "print(1)"})
    assert "did you mean python?" in str(err.value) and "runs: python" in str(err.value)
    with pytest.raises(SandboxError) as err:
        sandbox._request("POST", "/run", {"language": "fortran", "code": "print(1)"})
    assert "unsupported language" in str(err.value) and "runs: python" in str(err.value)
    # Case does not matter.
    assert sandbox._request("POST", "/run", {"language": "Python", "code": "print(1)"})["stdout"] == "1\n"


def test_verifier_unknown_language_fails_when_built():
    with pytest.raises(ConfigError, match="did you mean 'python'"):
        CodeVerifier(language="pyhton")
    with pytest.raises(ConfigError, match="unknown language 'fortran'"):
        CodeVerifier(language="fortran")


def test_verifier_language_the_daemon_lacks_fails_when_built(sandbox):
    names = {lang["name"] for lang in sandbox.languages()}
    missing = [n for n in ("rust", "java", "javascript", "cpp", "c") if n not in names]
    if not missing:
        pytest.skip("this daemon runs every language")
    with pytest.raises(ConfigError, match=f"does not run {missing[0]}.*it runs: python"):
        CodeVerifier(language=missing[0], client=sandbox)


def test_a_record_may_name_its_own_language(sandbox):
    names = {lang["name"] for lang in sandbox.languages()}
    v = CodeVerifier(client=sandbox)
    tests = [{"stdin": "2 3", "expected_stdout": "5"}]
    items = [
        VerifyItem("", "```python\na, b = map(int, input().split())\nprint(a + b)\n```", {"tests": tests}),
        VerifyItem("", "```py\nprint(5)\n```", {"tests": tests, "language": "Python3"}),
        VerifyItem("", "```\nprint(5)\n```", {"tests": tests, "language": "pyhton"}),
    ]
    if "c" in names:
        c_prog = (
            '```c\n#include <stdio.h>\nint main(){int a,b;scanf("%d %d",&a,&b);printf("%d\\n",a+b);}\n```'
        )
        items.append(VerifyItem("", c_prog, {"tests": tests, "language": "c"}))
    verdicts = v.verify_batch(items)
    assert [x.score for x in verdicts[:2]] == [1.0, 1.0], verdicts
    assert verdicts[2].score is None and "did you mean 'python'" in verdicts[2].details["message"], verdicts[
        2
    ]
    if "c" in names:
        assert verdicts[3].score == 1.0, verdicts[3]
