"""The tests of one /run_tests request run one after another in one sandboxed process: each from
a fresh `__main__`, stdin and stdout, and a test that kills the process (crash, os._exit, timeout,
output flood) costs only itself: the rest run in a new process."""

from __future__ import annotations

import pytest

# Counts the tests this process has run, in a module that outlives `__main__`.
COUNTER = "import math\nn = getattr(math, '_seen', 0)\nmath._seen = n + 1\ninput()\nprint(n)\n"


def _tests(n: int, expected: str = "0") -> list[dict]:
    return [{"stdin": f"{i}\n", "expected_stdout": expected} for i in range(n)]


def test_tests_share_a_process_and_each_has_its_own_stdin_and_stdout(sandbox):
    code = "import sys\nprint(sys.stdin.read().strip()[::-1])\nprint('err', file=sys.stderr)"
    tests = [{"stdin": f"ab{i}", "expected_stdout": f"ab{i}"[::-1]} for i in range(12)]
    r = sandbox.run_tests(code, tests)
    assert r["passed"] == 12, r["first_failure"]
    assert all(t["stdout"] == f"ab{i}"[::-1] + "\n" and t["stderr"] == "err\n" for i, t in enumerate(r["tests"]))
    seen = [t["stdout"].strip() for t in sandbox.run_tests(COUNTER, _tests(5))["tests"]]
    assert seen == ["0", "1", "2", "3", "4"]  # one process: an imported module keeps its state


def test_fresh_process_per_test_on_request(sandbox):
    r = sandbox.run_tests(COUNTER, _tests(5), fresh_process_per_test=True)
    assert r["passed"] == 5, r["first_failure"]


def test_more_tests_than_one_process_takes(sandbox):
    # The default is 16 tests per process: 40 tests take three processes, each counting from 0.
    r = sandbox.run_tests(COUNTER, _tests(40))
    assert [int(t["stdout"]) for t in r["tests"]] == [i % 16 for i in range(40)]


@pytest.mark.parametrize("kill", [
    "import os\nos._exit(3)",
    "import ctypes\nctypes.string_at(0)",  # a real segfault (T is pid 1: kill() by itself is ignored)
    "import sys\nsys.stdout.write('x' * (1 << 22))",
    "while True:\n    pass",
])
def test_a_test_that_ends_the_process_costs_only_itself(sandbox, kill):
    code = f"n = int(input())\nif n == 2:\n    {kill.replace(chr(10), chr(10) + '    ')}\nprint(n)\n"
    tests = [{"stdin": str(i), "expected_stdout": str(i)} for i in range(6)]
    r = sandbox.run_tests(code, tests, timeout_ms=500)
    assert [t["passed"] for t in r["tests"]] == [True, True, False, True, True, True], r["tests"][2]
    assert r["tests"][2]["status"] in {"runtime_error", "output_limit", "timeout"}


def test_exit_codes_and_exceptions_are_per_test(sandbox):
    code = "import sys\nn = int(input())\nif n == 1:\n    sys.exit(4)\nif n == 2:\n    raise ValueError('bad')\nprint(n)"
    r = sandbox.run_tests(code, [{"stdin": str(i), "expected_stdout": str(i)} for i in range(4)])
    assert [(t["status"], t["exit_code"]) for t in r["tests"]] == [
        ("ok", 0), ("runtime_error", 4), ("runtime_error", 1), ("ok", 0)]
    assert "ValueError: bad" in r["tests"][2]["stderr"]


def test_a_thread_started_by_a_test_finishes_inside_it(sandbox):
    code = ("import threading, sys\nthreading.stack_size(1 << 24)\n"
            "def main():\n    print(int(input()) * 2)\n"
            "threading.Thread(target=main).start()\n")
    r = sandbox.run_tests(code, [{"stdin": str(i), "expected_stdout": str(2 * i)} for i in range(5)])
    assert r["passed"] == 5, r["first_failure"]


def test_recursion_limit_and_alarm_do_not_leak_into_the_next_test(sandbox):
    code = ("import sys, signal\nn = int(input())\n"
            "if n == 0:\n    sys.setrecursionlimit(50)\n    signal.alarm(1)\n"
            "def depth(k):\n    return 0 if k == 0 else 1 + depth(k - 1)\n"
            "print(depth(200) if n else 'set')")
    tests = [{"stdin": "0", "expected_stdout": "set"}, {"stdin": "1", "expected_stdout": "200"}]
    r = sandbox.run_tests(code, tests, timeout_ms=3000)
    assert r["passed"] == 2, r["first_failure"]


def test_call_style_tests_share_a_process_too(sandbox):
    code = "import math\ndef f(x):\n    return x * 2\n"
    tests = [{"call": "f", "args": [i], "expected": 2 * i} for i in range(20)]
    r = sandbox.run_tests(code, tests)
    assert r["passed"] == 20, r["first_failure"]
