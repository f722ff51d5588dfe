"""Pathological inputs: each must come back with a verdict (the right one, or `timeout`) within
the deadline plus slack — never a hang, never a crash. Bounds are pytest-timeout limits, not
speed assertions."""

from __future__ import annotations

import threading

import pytest

from grpo_fast.verifiers.math import MathVerifier

DEADLINE = 2.0
# Worker start-up (importing sympy) plus a replacement after a kill fit easily in this.
BOUND = 60

OK, BAD, TIMEOUT = "correct", "wrong", "timeout"

CASES = [
    # (id, gold, response, acceptable reasons)
    ("power-tower-10-identical", "10^{10^{10}}", "\\boxed{10^{10^{10}}}", {OK}),
    ("power-tower-10-plus-one", "10^{10^{10}}", "\\boxed{10^{10^{10}}+1}", {BAD, TIMEOUT}),
    ("power-tower-9-identical", "9^{9^{9}}", "\\boxed{9^{9^{9}}}", {OK}),
    ("power-tower-9-vs-one", "1", "\\boxed{9^{9^{9}}}", {BAD, TIMEOUT}),
    ("power-tower-2-30", "2^{2^{30}}", "\\boxed{2^{2^{30}}-1}", {BAD, TIMEOUT}),
    ("huge-factorial-identical", "100000000!", "\\boxed{100000000!}", {OK}),
    ("huge-factorial-vs-one", "1", "\\boxed{100000000!}", {BAD, TIMEOUT}),
    ("huge-factorial-plus-one", "100000000!", "\\boxed{100000000! + 1}", {BAD, TIMEOUT}),
    ("factorial-reciprocals-differ", "\\frac{1}{2004!}", "\\boxed{\\frac{1}{2006!}}", {BAD}),
    ("four-vs-four-root-two", "4", "\\boxed{4\\sqrt{2}}", {BAD}),
    ("four-equals-four-root-two", "4", "\\boxed{4 = 4\\sqrt{2}}", {BAD}),
    ("percent-vs-plain", "28", "\\boxed{28\\%}", {OK}),
    ("plain-vs-percent", "28\\%", "\\boxed{28}", {OK}),
    ("sqrt-reciprocal", "\\sqrt{1/n}", "\\boxed{1/\\sqrt{n}}", {OK}),
    ("deep-parentheses", "1", "\\boxed{" + "(" * 3000 + "1" + ")" * 3000 + "}", {OK, BAD, TIMEOUT}),
    ("deep-fractions", "1", "\\boxed{" + "\\frac{1}{" * 500 + "1" + "}" * 500 + "}", {OK, BAD, TIMEOUT}),
    ("deep-braces-gold", "{" * 5000 + "1" + "}" * 5000, "\\boxed{1}", {OK, BAD, TIMEOUT}),
    ("huge-polynomial-power", "(x+1)^{2000}", "\\boxed{(x+1)^{1999}(x+1)}", {OK, TIMEOUT}),
    ("huge-polynomial-differs", "(x+y+z+w)^{40}", "\\boxed{(x+y+z+w)^{41}}", {BAD, TIMEOUT}),
    ("huge-expanded-polynomial", "(x+1)^{60}", "\\boxed{" + "+".join(f"x^{{{k}}}" for k in range(60)) + "}", {BAD, TIMEOUT}),
    ("megabyte-response", "7", "think " * 200_000 + "\\boxed{7}", {OK}),
    ("megabyte-box", "7", "\\boxed{" + "1+" * 300_000 + "1}", {BAD, TIMEOUT}),
    ("unbalanced-box", "1", "\\boxed{\\frac{1}{2", {BAD, "no_answer"}),
    ("control-characters", "1", "\x00\x01\\boxed{\x02}", {BAD, "no_answer"}),
    ("unicode-answer", "π", "\\boxed{\\pi}", {OK}),
    ("emoji-junk", "1", "\\boxed{🙂🙂}", {BAD}),
    ("tiny-difference-huge-numbers", "10^{400}", "\\boxed{10^{400}+1}", {BAD}),
    ("huge-exponent-decimal", "1", "\\boxed{1.0e999999999}", {BAD, TIMEOUT}),
    # Exact arithmetic in the Rust fast path has no deadline: its sizes are bounded instead.
    ("many-huge-powers", "1", "\\boxed{" + "\\cdot".join(["3^{20000}"] * 100) + "}", {BAD, TIMEOUT}),
    ("many-factorial-fractions", "1", "\\boxed{" + "+".join(f"\\frac{{1}}{{{2900 + k}!}}" for k in range(100)) + "}",
     {BAD, TIMEOUT}),
    ("huge-binomial", "1", "\\boxed{\\binom{20000}{10000}}", {BAD, TIMEOUT}),
]


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(timeout=DEADLINE, workers=2) as v:
        yield v


@pytest.mark.timeout(BOUND)
@pytest.mark.parametrize(("gold", "response", "ok"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pathological_returns_a_verdict(verifier, gold, response, ok):
    vd = verifier.verify_pairs([gold], [response])[0]
    assert vd.reason in ok, vd
    if vd.reason == TIMEOUT:
        assert vd.score is None and vd.correct is None


@pytest.mark.timeout(BOUND)
def test_overrun_is_a_counted_timeout_and_the_pool_recovers():
    # The deadline leaves the replacement worker room to start (it imports sympy) and decide the
    # symbolic items on a loaded machine; the first item cannot finish within any deadline (its
    # terms cancel, so no size bound of the fast path decides it and sympy expands 10^8!).
    with MathVerifier(timeout=4.0, workers=1) as v:
        out = v.verify_pairs(["1", "2y=4x+6", "4y=8x+12"], ["\\boxed{100000000! - 100000000! + 1}",
                                                            "\\boxed{y=2x+3}", "\\boxed{y=2x+3}"])
        assert out[0].reason == TIMEOUT and out[0].score is None
        assert v.stats["timeouts"] == 1
        assert v.pool.restarts >= 1
        # The replacement worker decides the other (symbolic) items.
        assert [o.reason for o in out[1:]] == [OK, OK]
        assert all(o.details["path"] == "symbolic" for o in out)


@pytest.mark.timeout(BOUND)
def test_works_from_worker_threads_with_deadline():
    """No signals: the deadline holds when the verifier is called off the main thread, and
    concurrent callers are served."""
    results: dict[int, list] = {}

    def run(k: int) -> None:
        results[k] = v.verify_pairs(["1", f"{k + 2}y={2 * k + 4}x+{3 * k + 6}"],
                                    ["\\boxed{100000000! - 100000000! + 1}", "\\boxed{y=2x+3}"])

    with MathVerifier(timeout=3.0, workers=2) as v:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(BOUND)
        assert not any(t.is_alive() for t in threads)
    for k in range(2):
        assert [r.reason for r in results[k]] == [TIMEOUT, OK]


@pytest.mark.timeout(BOUND)
def test_forked_child_leaves_parent_workers_alone():
    """A fork (e.g. a DataLoader worker) must not kill or share the parent's workers."""
    import os

    with MathVerifier(timeout=5.0, workers=1) as v:
        # A scaled equation is one of the few things only the symbolic path decides.
        assert v.verify_pairs(["2y=4x+6"], ["\\boxed{y=2x+3}"])[0].details["path"] == "symbolic"
        parent_worker = v.pool._procs[0].proc
        pid = os.fork()
        if pid == 0:  # child: use the verifier, close it, exit without running parent cleanup
            code = 0
            try:
                ok = v.verify_pairs(["4y=8x+12"], ["\\boxed{y=2x+3}"])[0].reason == OK
                v.close()
                code = 0 if ok else 1
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert parent_worker.poll() is None  # still alive
        assert v.verify_pairs(["3y=6x+9"], ["\\boxed{y=2x+3}"])[0].reason == OK
