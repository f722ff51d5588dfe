"""grpo-sandboxd against a plain subprocess checker on a held-out-like code set with realistic
failures: ~60 stdin/stdout problems, ~300 solutions (correct, wrong answers, crashes, slow
algorithms that spin until their limit, programs that block in sleep or a deadlock), ~1,600 test
runs, ~20 of them 2 s timeouts.

The plain checker is what a training script writes without a sandbox: per solution, each test in
a fresh `python3 main.py` (`subprocess.run(..., timeout=2)`), solutions spread over one worker
thread per core. grpo-fast judges the same set through the `code` verifier end to end (the daemon
started here), once with fraction scoring (every test runs) and once all-or-nothing (a program
stops at its first failed test); identical programs of a problem are judged once (the verifier's
default; --no-dedupe runs every copy). Both checkers must agree on every solution's score; the script
prints the time of each, the ratios, and the per-outcome counts.

    python benches/bench_sandbox_judge.py                   # the set, both checkers, the ratios
    python benches/bench_sandbox_judge.py --write-set set.jsonl   # only write the set (records)
    python benches/bench_sandbox_judge.py --slots 8 --rounds 2
    python benches/bench_sandbox_judge.py --slow 0 --blocked 4    # timeouts that only wait

Each row also prints the floor: the programs' own CPU seconds (counted by the daemon) over the
cores. A program spinning until its limit costs that limit in CPU in any checker, so on a set whose
timeouts spin, the floor, not the checker, bounds the ratio.

Needs root for the daemon's isolation (or --insecure, trusted code only).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TIMEOUT_S = 2.0

# ---- the set ------------------------------------------------------------------------------------
#
# Each family: a generator of test inputs (small ones first, the large ones last, as judges order
# them), the reference solution, and the ways a model gets it wrong. A solution is a program text;
# the expected output of a test is the reference's output.

FAMILIES = {}


def family(name):
    def deco(cls):
        FAMILIES[name] = cls
        return cls

    return deco


def ints(rng, n, lo=-1000, hi=1000):
    return [rng.randint(lo, hi) for _ in range(n)]


@family("sum")
class Sum:
    sizes = (3, 5, 10, 1000, 20000, 200000)

    def make(self, rng, n):
        xs = ints(rng, n)
        return f"{n}\n{' '.join(map(str, xs))}\n"

    correct = "n = int(input())\nprint(sum(map(int, input().split())))\n"
    wrong = "n = int(input())\nxs = list(map(int, input().split()))\nprint(sum(xs[:-1]))\n"
    crash = "n = int(input())\nprint(sum(int(x) for x in input()))\n"
    alternative = "import sys\ndata = sys.stdin.read().split()\nprint(sum(int(x) for x in data[1:]))\n"


@family("max_subarray")
class MaxSubarray:
    sizes = (4, 8, 30, 300, 3000)

    def make(self, rng, n):
        return f"{n}\n{' '.join(map(str, ints(rng, n, -50, 50)))}\n"

    correct = textwrap.dedent("""\
        n = int(input())
        best = cur = None
        for x in map(int, input().split()):
            cur = x if cur is None or cur < 0 else cur + x
            best = cur if best is None else max(best, cur)
        print(best)
    """)
    # O(n^3): fine on the small tests, spins until its limit on the big ones.
    slow = textwrap.dedent("""\
        n = int(input())
        a = list(map(int, input().split()))
        best = a[0]
        for i in range(n):
            for j in range(i, n):
                best = max(best, sum(a[i:j + 1]))
        print(best)
    """)
    wrong = textwrap.dedent("""\
        n = int(input())
        best = cur = 0
        for x in map(int, input().split()):
            cur = max(0, cur + x)
            best = max(best, cur)
        print(best)
    """)
    crash = "n = int(input())\na = list(map(int, input().split()))\nprint(max(a[i] + a[i + 1] for i in range(n)))\n"


@family("primes")
class Primes:
    sizes = (10, 100, 1000, 100000, 2000000)

    def make(self, rng, n):
        return f"{n - rng.randint(0, 5)}\n"

    correct = textwrap.dedent("""\
        n = int(input())
        sieve = bytearray([1]) * (n + 1)
        sieve[0:2] = b"\\x00\\x00"
        for i in range(2, int(n ** 0.5) + 1):
            if sieve[i]:
                sieve[i * i::i] = bytearray(len(range(i * i, n + 1, i)))
        print(sum(sieve))
    """)
    slow = textwrap.dedent("""\
        n = int(input())
        count = 0
        for k in range(2, n + 1):
            if all(k % d for d in range(2, k)):
                count += 1
        print(count)
    """)
    wrong = textwrap.dedent("""\
        n = int(input())
        sieve = bytearray([1]) * n
        for i in range(2, int(n ** 0.5) + 1):
            if sieve[i]:
                sieve[i * i::i] = bytearray(len(range(i * i, n, i)))
        print(sum(sieve) - 2)
    """)
    crash = "import math\nn = int(input())\nprint(len([k for k in range(n) if math.isqrt(k - 1)]))\n"


@family("fib")
class Fib:
    sizes = (1, 5, 10, 25, 37)

    def make(self, rng, n):
        return f"{n}\n"

    correct = "n = int(input())\na, b = 0, 1\nfor _ in range(n):\n    a, b = b, a + b\nprint(a)\n"
    slow = textwrap.dedent("""\
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        print(fib(int(input())))
    """)
    wrong = "n = int(input())\na, b = 1, 1\nfor _ in range(n):\n    a, b = b, a + b\nprint(a)\n"
    crash = "n = int(input())\nmemo = [0, 1]\nfor i in range(2, n):\n    memo.append(memo[i - 1] + memo[i - 2])\nprint(memo[n])\n"


@family("distinct")
class Distinct:
    sizes = (3, 6, 20, 5000, 100000)

    def make(self, rng, n):
        return f"{n}\n{' '.join(map(str, ints(rng, n, 0, n // 2 + 1)))}\n"

    correct = "input()\nprint(len(set(input().split())))\n"
    wrong = "input()\nprint(len(input().split()))\n"
    crash = "n = int(input())\nprint(len(set(map(int, input().split(',')))))\n"
    slow = textwrap.dedent("""\
        input()
        seen = []
        for x in input().split():
            if x not in seen:
                seen.append(x)
        print(len(seen))
    """)


@family("reverse_words")
class ReverseWords:
    sizes = (1, 3, 8, 200, 2000, 20000)

    def make(self, rng, n):
        words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 6))) for _ in range(n)]
        return " ".join(words) + "\n"

    correct = "print(' '.join(reversed(input().split())))\n"
    wrong = "print(input()[::-1])\n"
    crash = "w = input().split()\nprint(w[-1], ' '.join(w[-2::-1]), w[len(w)])\n"
    alternative = "import sys\nprint(*sys.stdin.readline().split()[::-1])\n"


@family("pairs")
class Pairs:
    sizes = (4, 8, 50, 2000, 60000)

    def make(self, rng, n):
        return f"{n} 0\n{' '.join(map(str, ints(rng, n, -100, 100)))}\n"

    correct = textwrap.dedent("""\
        from collections import Counter
        n, k = map(int, input().split())
        seen, count = Counter(), 0
        for x in map(int, input().split()):
            count += seen[k - x]
            seen[x] += 1
        print(count)
    """)
    slow = textwrap.dedent("""\
        n, k = map(int, input().split())
        a = list(map(int, input().split()))
        print(sum(1 for i in range(n) for j in range(i + 1, n) if a[i] + a[j] == k))
    """)
    wrong = textwrap.dedent("""\
        n, k = map(int, input().split())
        a = list(map(int, input().split()))
        s = set(a)
        print(sum(1 for x in a if k - x in s))
    """)
    crash = "n, k = map(int, input().split())\na = input().split()\nprint(sum(1 for x in a if k - x in a))\n"


@family("sort")
class Sort:
    sizes = (2, 5, 10, 1000, 10000, 100000)

    def make(self, rng, n):
        return f"{n}\n{' '.join(map(str, ints(rng, n)))}\n"

    correct = "input()\nprint(*sorted(map(int, input().split())))\n"
    wrong = "input()\nprint(*sorted(input().split()))\n"
    crash = "n = int(input())\na = list(map(int, input().split()))\na.sort(key=lambda x: 1 / x)\nprint(*a)\n"
    slow = textwrap.dedent("""\
        input()
        a = list(map(int, input().split()))
        for i in range(len(a)):
            for j in range(len(a) - 1 - i):
                if a[j] > a[j + 1]:
                    a[j], a[j + 1] = a[j + 1], a[j]
        print(*a)
    """)


@family("gcd")
class Gcd:
    sizes = (2, 3, 10, 1000, 5000, 50000)

    def make(self, rng, n):
        g = rng.randint(1, 50)
        return f"{n}\n{' '.join(str(g * rng.randint(1, 10**6)) for _ in range(n))}\n"

    correct = "import math\ninput()\nprint(math.gcd(*map(int, input().split())))\n"
    wrong = "import math\ninput()\na = list(map(int, input().split()))\nprint(math.gcd(a[0], a[-1]))\n"
    crash = "import math\nn = int(input())\na = list(map(int, input().split()))\nprint(math.gcd(*a[: n + 1]) // (n - n))\n"


@family("word_freq")
class WordFreq:
    sizes = (3, 6, 20, 2000, 50000)

    def make(self, rng, n):
        return " ".join(rng.choice(["ab", "cd", "ef", "gh", "ij", "kl"]) for _ in range(n)) + "\n"

    correct = textwrap.dedent("""\
        from collections import Counter
        c = Counter(input().split())
        word, k = min(c.items(), key=lambda kv: (-kv[1], kv[0]))
        print(word, k)
    """)
    wrong = "from collections import Counter\nprint(*Counter(input().split()).most_common(1)[0])\n"
    crash = "from collections import Counter\nc = Counter(input().split())\nprint(c.most_common()[6])\n"


# Programs that do not finish and use no CPU doing it: a leftover sleep, a deadlock, a wait on an
# event nothing sets. Prepended to an otherwise correct solution, so they time out on every test.
BLOCKERS = (
    "import time\ntime.sleep(10)\n",
    "import threading\nlock = threading.Lock()\nlock.acquire()\nlock.acquire()\n",
    "import queue\nq = queue.Queue()\nq.get()\n",
    "import threading\nthreading.Event().wait()\n",
)


def make_set(seed: int = 7, problems: int = 60, slow: int = 9, blocked: int = 2) -> list[dict]:
    """The records: {"id", "tests": [{"stdin", "expected_stdout"}], "responses": [{"text", "kind"}]}.

    `slow` solutions spin on their largest tests until the limit (about 1.3 timeouts each);
    `blocked` ones sleep or deadlock on every test (5 or 6 timeouts each)."""
    rng = random.Random(seed)
    names = sorted(FAMILIES)
    records = []
    blockers_left, slow_left = blocked, slow
    for p in range(problems):
        fam = FAMILIES[names[p % len(names)]]()
        inputs = [fam.make(rng, n) for n in fam.sizes]
        tests = [{"stdin": s, "expected_stdout": reference(fam.correct, s)} for s in inputs]
        kinds = ["correct", "correct", "wrong", "crash", "correct"]
        if getattr(fam, "alternative", None):
            kinds[1] = "alternative"
        if getattr(fam, "slow", None) and slow_left and p % 3 == 1:
            kinds[4] = "slow"
            slow_left -= 1
        elif blockers_left and (p % 7 == 3 or blockers_left > (problems - p) // 3):
            kinds[4] = "blocked"
            blockers_left -= 1
        responses = []
        for kind in kinds:
            if kind == "blocked":
                text = BLOCKERS[blockers_left % len(BLOCKERS)] + fam.correct
            else:
                text = getattr(fam, kind)
            responses.append({"text": f"```python\n{text}```", "kind": kind})
        records.append({"id": f"{names[p % len(names)]}-{p}", "tests": tests, "responses": responses})
    return records


def reference(code: str, stdin: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"a reference solution failed: {r.stderr}")
    return r.stdout


# ---- the plain subprocess checker -------------------------------------------------------------


def plain_check(code: str, tests: list[dict], all_or_nothing: bool, tmp: str) -> tuple[float, int, int]:
    """(score, runs, timeouts) of one solution: each test in a fresh interpreter with a 2 s limit."""
    fd, path = tempfile.mkstemp(suffix=".py", dir=tmp)
    with os.fdopen(fd, "w") as f:
        f.write(code)
    passed = runs = timeouts = 0
    try:
        for t in tests:
            runs += 1
            try:
                r = subprocess.run(
                    [sys.executable, path],
                    input=t["stdin"],
                    capture_output=True,
                    text=True,
                    timeout=TIMEOUT_S,
                    cwd=tmp,
                )
                ok = r.returncode == 0 and norm(r.stdout) == norm(t["expected_stdout"])
            except subprocess.TimeoutExpired:
                ok, timeouts = False, timeouts + 1
            passed += ok
            if all_or_nothing and not ok:
                break
    finally:
        os.unlink(path)
    score = float(passed == len(tests)) if all_or_nothing else passed / len(tests)
    return score, runs, timeouts


def norm(s: str) -> list[str]:
    lines = [line.rstrip() for line in s.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def extract(text: str) -> str:
    return text.split("```python\n", 1)[1].rsplit("```", 1)[0]


def run_plain(records, all_or_nothing: bool, workers: int) -> tuple[float, list[float], int, int]:
    jobs = [(extract(r["text"]), rec["tests"]) for rec in records for r in rec["responses"]]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            out = list(pool.map(lambda j: plain_check(j[0], j[1], all_or_nothing, tmp), jobs))
        seconds = time.perf_counter() - start
    return seconds, [o[0] for o in out], sum(o[1] for o in out), sum(o[2] for o in out), None


# ---- grpo-fast ------------------------------------------------------------------------------------


def program_cpu_s(client) -> float:
    """The daemon's count of CPU seconds the programs of tests requests used."""
    for line in client.metrics().splitlines():
        if line.startswith("grpo_sandbox_test_cpu_seconds_total "):
            return float(line.split()[1])
    raise RuntimeError("the daemon does not report grpo_sandbox_test_cpu_seconds_total")


def run_grpo(
    records, scoring: str, client, dedupe: bool = True
) -> tuple[float, list[float], int, int, float]:
    from grpo_fast.verifiers import VerifyItem
    from grpo_fast.verifiers.code import CodeVerifier

    verifier = CodeVerifier(scoring=scoring, timeout_ms=int(TIMEOUT_S * 1000), client=client, dedupe=dedupe)
    items = [VerifyItem("", r["text"], rec) for rec in records for r in rec["responses"]]
    cpu0 = program_cpu_s(client)
    start = time.perf_counter()
    verdicts = verifier.verify_batch(items)
    seconds = time.perf_counter() - start
    cpu = program_cpu_s(client) - cpu0
    runs = timeouts = 0
    for v in verdicts:
        d = v.details or {}
        if d.get("deduplicated"):  # a copy of an identical program's verdict: nothing ran
            continue
        runs += int(d.get("tests_total", 0)) - int(d.get("tests_skipped", 0))
        timeouts += int(d.get("tests_timed_out", 0))
    return seconds, [v.score for v in verdicts], runs, timeouts, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--problems", type=int, default=60)
    ap.add_argument("--slots", type=int, default=0, help="daemon slots (0: the daemon's default)")
    ap.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="plain checker threads (default: cores)"
    )
    ap.add_argument("--slow", type=int, default=9, help="solutions that spin until their limit")
    ap.add_argument("--blocked", type=int, default=2, help="solutions that sleep or deadlock")
    ap.add_argument(
        "--no-dedupe",
        action="store_true",
        help="run every copy of an identical program (the verifier judges it once by default)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds; the median is printed")
    ap.add_argument("--write-set", metavar="PATH", help="write the set as JSONL records and stop")
    ap.add_argument("--skip-plain", action="store_true", help="grpo-fast only (no ratio)")
    ap.add_argument("--insecure", action="store_true", help="--insecure-no-isolation (trusted code only)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    records = make_set(args.seed, args.problems, args.slow, args.blocked)
    if args.write_set:
        Path(args.write_set).write_text("".join(json.dumps(r) + "\n" for r in records))
        print(f"wrote {len(records)} records to {args.write_set}")
        return
    n_sol = sum(len(r["responses"]) for r in records)
    n_runs = sum(len(r["tests"]) * len(r["responses"]) for r in records)
    kinds: dict[str, int] = {}
    for r in records:
        for resp in r["responses"]:
            kinds[resp["kind"]] = kinds.get(resp["kind"], 0) + 1
    print(f"set: {len(records)} problems, {n_sol} solutions, {n_runs} test runs; solutions: {kinds}")

    from grpo_fast.sandbox import Client

    daemon_args = ["--slots", str(args.slots)] if args.slots else []
    if args.insecure:
        daemon_args.append("--insecure-no-isolation")
    sock = os.path.join(tempfile.mkdtemp(prefix="grpo-bench-judge-"), "sbx.sock")
    client = Client(sock, daemon_args=daemon_args)
    health = client.health()
    print(f"daemon: {health['slots']} slots on {os.cpu_count()} cores; plain checker: {args.workers} workers")
    results: dict[str, list] = {}
    try:
        for _ in range(args.rounds):
            rows = [
                ("grpo-fast fraction", lambda: run_grpo(records, "fraction", client, not args.no_dedupe)),
                ("grpo-fast all-or-nothing", lambda: run_grpo(records, "all", client, not args.no_dedupe)),
            ]
            if not args.skip_plain:
                rows = [
                    ("plain subprocess, fraction", lambda: run_plain(records, False, args.workers)),
                    ("plain subprocess, all-or-nothing", lambda: run_plain(records, True, args.workers)),
                    *rows,
                ]
            for name, fn in rows:
                results.setdefault(name, []).append(fn())
    finally:
        client.close()

    def median(name):
        runs = sorted(results[name], key=lambda r: r[0])
        return runs[len(runs) // 2]

    table = {name: median(name) for name in results}
    for scoring, plain, ours in (
        ("fraction", "plain subprocess, fraction", "grpo-fast fraction"),
        ("all", "plain subprocess, all-or-nothing", "grpo-fast all-or-nothing"),
    ):
        if plain in table:
            a, b = table[plain][1], table[ours][1]
            bad = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if abs((x or 0) - (y or 0)) > 1e-9]
            print(
                f"{scoring}: scores agree on {len(a) - len(bad)}/{len(a)} solutions"
                + (f" (differ: {bad[:10]})" if bad else "")
            )
    base = table.get("plain subprocess, fraction", (None,))[0]
    cores = os.cpu_count() or 1
    # The floor: the programs' own CPU time spread over every core, what no checker can beat on
    # this machine (a program spinning until its limit costs its limit in CPU in any checker).
    print(
        f"{'checker':34} {'seconds':>8} {'runs':>6} {'timeouts':>8} {'vs plain fraction':>18}"
        f" {'floor s':>8} {'floor ratio':>11}"
    )
    for name, (secs, _scores, runs, timeouts, cpu) in table.items():
        ratio = f"{base / secs:.1f}x" if base else "-"
        floor = f"{cpu / cores:8.2f} {base / (cpu / cores):10.1f}x" if cpu and base else f"{'-':>8} {'-':>11}"
        print(f"{name:34} {secs:8.2f} {runs:6d} {timeouts:8d} {ratio:>18} {floor}")
    print(
        "floor s: the programs' own CPU seconds (the daemon's count) over the machine's cores;"
        " floor ratio: plain fraction against that floor, the most any checker could reach here"
    )
    if args.json:
        print(
            json.dumps(
                {
                    name: {"seconds": r[0], "runs": r[2], "timeouts": r[3], "program_cpu_s": r[4]}
                    for name, r in table.items()
                }
            )
        )


if __name__ == "__main__":
    main()
