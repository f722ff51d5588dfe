"""Math answer checking, side by side: grpo-fast `math` against math-verify, the naive sympy
approach (regex LaTeX rewrite + `simplify(g - r) == 0`) and plain string match.

The workload is synthetic but shaped like GRPO rollouts: groups of 8 responses sharing a gold
answer, 300-800 characters of reasoning ending in a final answer; ~60% integer golds, ~20%
fractions/decimals, ~20% symbolic (radicals, pi, polynomials, intervals, tuples, sets, equations,
complex numbers, matrices, logarithms; the logarithms need sympy). About half the responses are correct, written in varied equivalent forms.

Prints verifications/s, p99 per-item latency, accuracy against the generator's labels,
agreement with grpo-fast (with examples of disagreements) and throughput ratios.

    python benches/bench_math.py                # 20,000 pairs
    python benches/bench_math.py --quick        # 2,000 pairs
    python benches/bench_math.py --table        # also score every grader on tests/verifiers' table
    python benches/bench_math.py --agreement    # held-out agreement suite, grpo-fast vs math-verify

`--agreement` scores both graders against the expected verdicts of benches/data/math_agreement.jsonl
(hand-written cases in the style of public verifier suites, one answer class per `class`; not the
cases the verifier was developed on) and lists where grpo-fast disagrees; `--json-out` writes a
summary.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

GROUP = 8
FILLER = [
    "First, let us restate the problem in our own words.",
    "We compute the quantity step by step.",
    "Substituting the known values gives {a} + {b} = {c}.",
    "Multiplying both sides by {a} we obtain {c}.",
    "Note that {a} \\times {b} = {c}, which we will use below.",
    "Checking the boundary case n = {a} confirms the pattern.",
    "Hence the remaining amount is {c} - {a} = {d}.",
    "This is consistent with the constraint that x > {a}.",
    "Let me double-check the arithmetic once more.",
    "So the total over {a} days is {c}.",
]


def reasoning(rng: random.Random) -> str:
    target = rng.randint(300, 800)
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < target:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        parts.append(rng.choice(FILLER).format(a=a, b=b, c=a * b, d=a * b - a))
    return " ".join(parts)[:target]


def gold_integer(rng):
    n = rng.choice(
        [rng.randint(0, 100), rng.randint(100, 5000), rng.randint(-50, -1), rng.randint(1000, 999999)]
    )
    same = [str(n), f"{n}.0", f"{n:,}", f"\\text{{{n}}}", f"{n} \\text{{ dollars}}"]
    wrong = [str(n + 1), str(n - 1), str(2 * n + 3) if n != -3 else "7", str(n + 10), f"{n + 1}.0"]
    gold = f"{reasoning_short(rng)}\n#### {n}" if rng.random() < 0.4 else str(n)
    return gold, same, wrong


def reasoning_short(rng):
    a, b = rng.randint(2, 50), rng.randint(2, 50)
    return f"She has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} items."


def gold_fraction(rng):
    if rng.random() < 0.5:
        q = rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 12, 16])
        p = rng.choice([x for x in range(1, 3 * q) if Fraction(x, q).denominator == q])
        f = Fraction(p, q)
        same = [
            f"\\frac{{{p}}}{{{q}}}",
            f"\\dfrac{{{p}}}{{{q}}}",
            f"{p}/{q}",
            f"\\frac{{{2 * p}}}{{{2 * q}}}",
        ]
        if 10**6 % q == 0:
            same.append(str(float(f)))
        wrong = [
            (f"\\frac{{{q}}}{{{p}}}", Fraction(q, p)),
            (f"\\frac{{{p + 1}}}{{{q}}}", Fraction(p + 1, q)),
            (f"{float(f):.2f}", Fraction(f"{float(f):.2f}")),
            (f"\\frac{{{p}}}{{{q + 1}}}", Fraction(p, q + 1)),
        ]
        return f"\\frac{{{p}}}{{{q}}}", same, [w for w, val in wrong if val != f]
    cents = rng.randint(1, 99999)
    d = Fraction(cents, 100)
    text = f"{cents / 100:.2f}"
    same = [text, text + "0", f"\\frac{{{d.numerator}}}{{{d.denominator}}}", f"\\${text}"]
    wrong = [f"{(cents + 1) / 100:.2f}", f"{(cents + 10) / 100:.2f}", f"{cents / 10:.1f}"]
    return text, same, wrong


def gold_symbolic(rng):
    kind = rng.randrange(11)
    a, b = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7])
    if a == b:  # keeps every "wrong" form below really wrong
        a += 1
    if kind == 0:
        return (
            f"{a}\\sqrt{{{b}}}",
            [f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b}}}", f"{a} \\sqrt {b}"],
            [f"{a + 1}\\sqrt{{{b}}}", f"\\sqrt{{{a * b}}}", f"{a}\\sqrt{{{b + 1}}}"],
        )
    if kind == 1:
        return (
            f"\\frac{{{a}\\pi}}{{{b}}}",
            [f"\\frac{{{a}\\pi}}{{{b}}}", f"\\frac{{{a}}}{{{b}}}\\pi", f"{a}\\pi/{b}"],
            [f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{b}\\pi}}{{{a}}}", f"{a}\\pi"],
        )
    if kind == 2:
        return (
            f"x^2-{a * a}",
            [f"x^2-{a * a}", f"(x-{a})(x+{a})", f"x^{{2}} - {a * a}"],
            [f"(x-{a})^2", f"x^2+{a * a}", f"(x-{a})(x+{a + 1})"],
        )
    if kind == 3:
        return (
            f"[{a}, {a + b})",
            [f"[{a}, {a + b})", f"[{a},{a + b})", f"\\left[{a}, {a + b}\\right)"],
            [f"({a}, {a + b})", f"[{a}, {a + b}]", f"[{a}, {a + b + 1})"],
        )
    if kind == 4:
        return (
            f"({a}, -{b})",
            [f"({a}, -{b})", f"({a},-{b})", f"\\left({a}, -{b}\\right)"],
            [f"(-{b}, {a})", f"({a}, {b})", f"({a + 1}, -{b})"],
        )
    if kind == 5:
        return (
            f"-{a}, {b}",
            [f"-{a}, {b}", f"{b}, -{a}", f"x=-{a}, x={b}"],
            [f"{a}, -{b}", f"{b}", f"-{a}, {b}, 0"],
        )
    if kind == 6:
        return (
            f"y = {a}x + {b}",
            [f"y = {a}x + {b}", f"y={b}+{a}x", f"{a}x+{b}"],
            [f"y = {b}x + {a}", f"y = {a}x - {b}", f"y = {a}x"],
        )
    if kind == 7:
        return (f"{a}+{b}i", [f"{a}+{b}i", f"{b}i+{a}", f"{a} + {b}i"], [f"{a}-{b}i", f"{b}+{a}i", f"{a}"])
    if kind == 8:
        return (
            f"(-\\infty, {a}]",
            [f"(-\\infty, {a}]", f"x \\le {a}", f"(-\\infty,{a}]"],
            [f"(-\\infty, {a})", f"[{a}, \\infty)", f"x < {a}"],
        )
    if kind == 10:  # logarithms: outside the Rust grammar, decided by sympy in the workers
        return (
            f"\\log_{{{b}}} {a}",
            [f"\\log_{{{b}}} {a}", f"\\frac{{\\ln {a}}}{{\\ln {b}}}", f"\\log_{b} {a}"],
            [f"\\log_{{{a}}} {b}", f"\\ln {a}", f"\\frac{{\\ln {b}}}{{\\ln {a}}}"],
        )
    m = f"\\begin{{pmatrix}} {a} \\\\ -{b} \\end{{pmatrix}}"
    return (
        m,
        [
            m,
            f"\\begin{{pmatrix}}{a}\\\\-{b}\\end{{pmatrix}}",
            f"\\begin{{bmatrix}} {a} \\\\ -{b} \\end{{bmatrix}}",
        ],
        [
            f"\\begin{{pmatrix}} {b} \\\\ -{a} \\end{{pmatrix}}",
            f"\\begin{{pmatrix}} {a} \\\\ {b} \\end{{pmatrix}}",
        ],
    )


def wrap(rng, ans: str, integer: bool) -> str:
    text = reasoning(rng)
    r = rng.random()
    if integer and r < 0.1:
        return f"{text}\n#### {ans}"
    if r < 0.2:
        return f"{text} The answer is ${ans}$."
    if r < 0.25:
        return f"{text}\nFinal Answer: The final answer is ${ans}$. I hope it is correct."
    return f"{text} Therefore the answer is $\\boxed{{{ans}}}$."


JUNK = [
    "\\lfloor \\frac{n}{2} \\rfloor",
    "\\sin^2 x",
    "\\operatorname{lcm}(4, 6) + 1",
    "\\text{undefined}",
    "\\cot^{-1} 2",
    "|x - 3|",
    "\\text{the number of ways}",
    "\\frac{d}{dx} x^2",
]


def workload(n: int, seed: int = 0, sympy_share: float = 0.005) -> list[tuple[str, str, bool]]:
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < n:
        u = rng.random()
        integer = u < 0.6
        gold, same, wrong = (
            gold_integer(rng) if integer else gold_fraction(rng) if u < 0.8 else gold_symbolic(rng)
        )
        for _ in range(GROUP):
            ok = rng.random() < 0.5
            form = (same[0] if rng.random() < 0.6 else rng.choice(same)) if ok else rng.choice(wrong)
            if not ok and rng.random() < 0.05:
                form = rng.choice(JUNK)  # what models also write: odd notation, or prose
            if integer and rng.random() < sympy_share and gold.split("#")[-1].strip().isdigit():
                # An unevaluated sum: only the symbolic path (sympy in the workers) decides it.
                value = int(gold.split("#")[-1].strip())
                form = f"\\sum_{{k=1}}^{{{value if ok else value + 1}}} 1"
            pairs.append((gold, wrap(rng, form, integer), ok))
    return pairs[:n]


# ---------------------------------------------------------------- graders


def last_boxed(text: str) -> str | None:
    i = text.rfind("\\boxed{")
    if i < 0:
        m = re.findall(r"####\s*(.+)", text) or re.findall(r"answer is \$?([^$\n]+?)\$?\.?(?:\s|$)", text)
        return m[-1].strip() if m else None
    depth, j = 1, i + 7
    while j < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        j += 1
    return text[i + 7 : j - 1] if depth == 0 else None


def gold_answer(gold: str) -> str:
    if "####" in gold:
        return gold.split("####")[-1].strip()
    return last_boxed(gold) or gold


def string_match(gold: str, resp: str) -> bool:
    a = last_boxed(resp)
    return a is not None and a.strip() == gold_answer(gold).strip()


_naive_sympy = None


def naive_sympy(gold: str, resp: str) -> bool:
    """The seed's idea: regex LaTeX -> Python syntax, sympify, simplify the difference."""
    import sympy

    def rewrite(s: str) -> str:
        s = s.replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac").replace("$", "")
        s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
        s = s.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*").replace("^", "**")
        s = s.replace("{", "(").replace("}", ")").replace("\\", "").replace(",", "")
        s = re.sub(r"(\d)\s*([a-zA-Z(])", r"\1*\2", s)
        return s

    a = last_boxed(resp)
    if a is None:
        return False
    try:
        g, r = sympy.sympify(rewrite(gold_answer(gold))), sympy.sympify(rewrite(a))
        return bool(sympy.simplify(g - r) == 0)
    except Exception:
        return False


def math_verify_grader():
    try:
        from math_verify import parse, verify
    except ImportError:
        return None

    def grade(gold: str, resp: str) -> bool:
        g = gold if ("\\boxed" in gold or "####" in gold) else f"${gold}$"
        if "####" in g:
            g = g.split("####")[-1].strip()
        try:
            return bool(verify(parse(g), parse(resp)))
        except Exception:
            return False

    return grade


def mv_grade(gold: str, resp: str) -> bool:
    """math-verify as a module-level function (picklable for `--procs`)."""
    grade = math_verify_grader()
    return grade(gold, resp) if grade else False


def _chunk_worker(args):
    name, fn, pairs = args
    out, _, lat = run_sequential(name, fn, pairs)
    return out, lat


def run_parallel(name: str, fn: Callable[[str, str], bool], pairs, procs: int):
    """The same grader in `procs` processes over contiguous chunks (groups stay adjacent)."""
    import multiprocessing as mp

    size = -(-len(pairs) // procs)
    chunks = [(name, fn, pairs[i : i + size]) for i in range(0, len(pairs), size)]
    start = time.perf_counter()
    with mp.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_chunk_worker, chunks)
    secs = time.perf_counter() - start
    return [o for out, _ in parts for o in out], secs, [x for _, lat in parts for x in lat]


def run_sequential(name: str, fn: Callable[[str, str], bool], pairs, budget_s: float | None = None):
    """Single process, one item at a time (how these graders are used), with a 5 s per-item
    guard so one pathological item cannot stall the benchmark."""

    def alarm(*_):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, alarm)
    out, lat = [], []
    start = time.perf_counter()
    try:
        for g, r in pairs:
            t = time.perf_counter()
            signal.alarm(5)
            try:
                v = fn(g, r)
            except TimeoutError:
                v = None
            finally:
                signal.alarm(0)
            lat.append(time.perf_counter() - t)
            out.append(v)
            if budget_s is not None and time.perf_counter() - start > budget_s:
                break
    finally:
        signal.signal(signal.SIGALRM, old)
    return out, time.perf_counter() - start, lat


def p99(xs):
    return statistics.quantiles(xs, n=100)[98] if len(xs) >= 100 else max(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20_000, help="number of (gold, response) pairs")
    ap.add_argument("--quick", action="store_true", help="2,000 pairs")
    ap.add_argument(
        "--workers", type=int, default=None, help="grpo-fast symbolic workers (default: all cores)"
    )
    ap.add_argument("--shuffle", action="store_true", help="shuffle pairs (groups no longer adjacent)")
    ap.add_argument(
        "--sympy-share",
        type=float,
        default=0.005,
        help="share of integer responses written as unevaluated sums, which only sympy decides",
    )
    ap.add_argument("--skip", nargs="*", default=[], choices=["math-verify", "sympy", "string"])
    ap.add_argument("--table", action="store_true", help="also score each grader on the test table")
    ap.add_argument("--examples", type=int, default=5, help="disagreement examples shown per grader")
    ap.add_argument(
        "--procs",
        type=int,
        default=1,
        help="run math-verify and naive sympy in this many processes (default 1, as they are used)",
    )
    ap.add_argument(
        "--agreement",
        action="store_true",
        help="score grpo-fast and math-verify on the held-out agreement suite instead",
    )
    ap.add_argument("--cases", type=Path, default=AGREEMENT_CASES, help="agreement suite (JSONL)")
    ap.add_argument("--json-out", type=Path, default=None, help="with --agreement: write a JSON summary here")
    args = ap.parse_args()
    if args.agreement:
        agreement(args.cases, args.json_out, args.workers)
        return
    n = 2_000 if args.quick else args.n

    from grpo_fast.verifiers.math import MathVerifier

    pairs = workload(n, sympy_share=args.sympy_share)
    if args.shuffle:
        random.Random(1).shuffle(pairs)
    golds = [g for g, _, _ in pairs]
    resps = [r for _, r, _ in pairs]
    labels = [ok for _, _, ok in pairs]
    print(
        f"workload: {n:,} pairs, groups of {GROUP} {'shuffled' if args.shuffle else 'adjacent'}; "
        f"{os.cpu_count()} cores; python {sys.version.split()[0]}"
    )

    results: dict[str, dict] = {}
    with MathVerifier(workers=args.workers) as v:
        v.start_workers()  # sympy import and parser warm-up happen once per worker, untimed
        v._cache.clear()
        before = v.stats["symbolic"]
        start = time.perf_counter()
        verdicts = v.verify_pairs(golds, resps)
        secs = time.perf_counter() - start
        symbolic = v.stats["symbolic"] - before
        sample = random.Random(2).sample(range(n), min(1000, n))
        lat = []
        for i in sample:
            v._cache.clear()
            t = time.perf_counter()
            v.verify_pairs([golds[i]], [resps[i]])
            lat.append(time.perf_counter() - t)
    ours = [vd.correct for vd in verdicts]
    results["grpo-fast math"] = {
        "out": ours,
        "secs": secs,
        "lat": lat,
        "n": n,
        "extracted": [vd.extracted for vd in verdicts],
    }
    print(
        f"grpo-fast: {symbolic:,} of {n:,} items went to the symbolic path (sympy workers); "
        f"timeouts {sum(vd.reason == 'timeout' for vd in verdicts)}"
    )

    graders: list[tuple[str, Callable | None]] = []
    if "math-verify" not in args.skip:
        mv = math_verify_grader()
        if mv is None:
            print("math-verify: not importable (pip install math-verify) - skipped")
        graders.append(("math-verify", mv_grade if mv is not None else None))
    if "sympy" not in args.skip:
        graders.append(("naive sympy", naive_sympy))
    if "string" not in args.skip:
        graders.append(("string match", string_match))
    for name, fn in graders:
        if fn is None:
            continue
        work = list(zip(golds, resps, strict=False))
        if args.procs > 1 and name != "string match":
            out, secs, lat = run_parallel(name, fn, work, args.procs)
            name = f"{name} x{args.procs}"
        else:
            out, secs, lat = run_sequential(name, fn, work)
        results[name] = {"out": out, "secs": secs, "lat": lat, "n": len(out)}

    base = results["grpo-fast math"]
    base_rate = base["n"] / base["secs"]
    print()
    print(f"{'grader':<16} {'verif/s':>10} {'p99 ms':>8} {'accuracy':>9} {'agree':>7} {'grpo-fast x':>12}")
    for name, r in results.items():
        k = r["n"]
        acc = sum((o is True) == lab for o, lab in zip(r["out"], labels[:k], strict=False)) / k
        agree = sum((o is True) == (b is True) for o, b in zip(r["out"], base["out"][:k], strict=False)) / k
        rate = k / r["secs"]
        print(
            f"{name:<16} {rate:>10,.0f} {1000 * p99(r['lat']):>8.2f} {100 * acc:>8.2f}% {100 * agree:>6.2f}% "
            f"{base_rate / rate:>11.1f}x"
        )
    print(
        "\naccuracy = agreement with the generator's correct/wrong label; agree = with grpo-fast; "
        "grpo-fast x = grpo-fast throughput / this grader's (all cores vs one process)."
    )
    print("grpo-fast p99 is for single-item calls (batch of one) on a sample of 1,000 items.")

    for name, r in results.items():
        if name == "grpo-fast math":
            continue
        diffs = [
            i
            for i, (o, b) in enumerate(zip(r["out"], base["out"], strict=False))
            if (o is True) != (b is True)
        ]
        if not diffs:
            continue
        ours_right = sum((base["out"][i] is True) == labels[i] for i in diffs)
        print(
            f"\n{name}: {len(diffs)} disagreements with grpo-fast; grpo-fast matches the label on {ours_right}"
        )
        shown = 0
        for i in diffs:
            if shown >= args.examples:
                break
            ans = base["extracted"][i] or resps[i][-60:]
            print(
                f"  gold {gold_answer(golds[i])!r:<28} answer {ans!r:<28} label {labels[i]!s:<5} "
                f"grpo-fast {base['out'][i]!s:<5} {name} {r['out'][i]}"
            )
            shown += 1

    if args.table:
        table_accuracy(graders)


def table_accuracy(graders) -> None:
    path = Path(__file__).resolve().parent.parent / "tests" / "verifiers" / "test_math_table.py"
    spec = importlib.util.spec_from_file_location("math_table", path)
    if spec is None or spec.loader is None:
        return
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cases = mod.CASES
    from grpo_fast.verifiers.math import MathVerifier

    with MathVerifier() as v:
        ours = [vd.correct for vd in v.verify_pairs([c[1] for c in cases], [c[2] for c in cases])]
    print(
        f"\ntest table ({len(cases)} cases): grpo-fast {sum((o is True) == c[3] for o, c in zip(ours, cases, strict=False))}"
        f"/{len(cases)}"
    )
    for name, fn in graders:
        if fn is None:
            continue
        out, _, _ = run_sequential(name, fn, [(c[1], c[2]) for c in cases])
        wrong = [c[0] for o, c in zip(out, cases, strict=False) if (o is True) != c[3]]
        print(f"  {name}: {len(cases) - len(wrong)}/{len(cases)}; misses: {', '.join(wrong[:20])}")


# ---------------------------------------------------------------- held-out agreement suite

AGREEMENT_CASES = Path(__file__).resolve().parent / "data" / "math_agreement.jsonl"
_CASE_FIELDS = {"id": str, "class": str, "gold": str, "response": str, "expected": bool, "note": str}


def load_cases(path: Path) -> list[dict]:
    """The suite's lines, each checked: a bad line stops the run naming file, line and field."""
    cases, ids = [], set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                case = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(case, dict):
                raise SystemExit(f"{path}:{lineno}: expected a JSON object")
            for field, kind in _CASE_FIELDS.items():
                if not isinstance(case.get(field), kind):
                    raise SystemExit(f"{path}:{lineno}: field {field!r} must be a {kind.__name__}")
            if case["id"] in ids:
                raise SystemExit(f"{path}:{lineno}: field 'id': duplicate {case['id']!r}")
            ids.add(case["id"])
            cases.append(case)
    if not cases:
        raise SystemExit(f"{path}: no cases")
    return cases


def mv_gold(gold: str) -> str:
    """The gold as math-verify expects it: its LaTeX extraction needs delimiters or a box, so a bare
    answer is wrapped in `$...$`, and a GSM8K solution is cut to the text after `####`."""
    if "####" in gold:
        return gold.split("####")[-1].strip()
    if any(m in gold for m in ("$", "\\boxed", "\\(", "\\[")):
        return gold
    return f"${gold}$"


def math_verify_verdicts(cases: list[dict]) -> tuple[list[bool], list[str | None], float]:
    """math-verify 0.9 with its default extraction configs, in the main thread so that its
    `signal.alarm` timeouts (5 s per parse and per comparison) work. Its timeouts come back as
    False, as it reports them; an exception is a False too."""
    from math_verify import parse, verify

    out, errors = [], []
    start = time.perf_counter()
    for c in cases:
        try:
            out.append(bool(verify(parse(mv_gold(c["gold"])), parse(c["response"]))))
            errors.append(None)
        except Exception as exc:  # a crash on one case is that case's False, as in training
            out.append(False)
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    return out, errors, time.perf_counter() - start


def _git_head() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _write_json(path: Path, data: dict) -> None:
    """Temp file in the same folder, then rename: a crash never leaves a half-written summary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _short(text: str | None, width: int = 48) -> str:
    if text is None:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def agreement(path: Path, json_out: Path | None, workers: int | None) -> None:
    from grpo_fast.verifiers import get_verifier

    cases = load_cases(path)
    n = len(cases)
    print(f"agreement suite: {n} cases from {path}; {os.cpu_count()} cores; python {sys.version.split()[0]}")

    verifier = get_verifier("math", workers=workers)
    try:
        start = time.perf_counter()
        ours = verifier.verify_pairs([c["gold"] for c in cases], [c["response"] for c in cases])
        ours_secs = time.perf_counter() - start
    finally:
        verifier.close()
    # No verdict (a timeout or an error) agrees with neither expectation: the trainer drops the item.
    ours_ok = [v.correct is not None and v.correct == c["expected"] for v, c in zip(ours, cases, strict=True)]

    try:
        mv_out, mv_errors, mv_secs = math_verify_verdicts(cases)
    except ImportError:
        print("math-verify: not importable (pip install math-verify==0.9.0) - its column is left out")
        mv_out, mv_errors, mv_secs = None, None, None
    mv_ok = [o == c["expected"] for o, c in zip(mv_out, cases, strict=True)] if mv_out is not None else None

    classes = sorted({c["class"] for c in cases})
    per_class = {}
    for cls in classes:
        idx = [i for i, c in enumerate(cases) if c["class"] == cls]
        row = {
            "n": len(idx),
            "expected_true": sum(cases[i]["expected"] for i in idx),
            "grpo_fast": sum(ours_ok[i] for i in idx),
        }
        if mv_ok is not None:
            row["math_verify"] = sum(mv_ok[i] for i in idx)
        per_class[cls] = row

    def pct(k: int, m: int) -> str:
        return f"{k:>4}/{m:<4} {100 * k / m:5.1f}%"

    print(f"\n{'class':<16} {'n':>4} {'grpo-fast':>16} {'math-verify':>16}")
    for cls, row in sorted(per_class.items(), key=lambda kv: kv[1]["grpo_fast"] / kv[1]["n"]):
        mv_col = pct(row["math_verify"], row["n"]) if "math_verify" in row else "-"
        print(f"{cls:<16} {row['n']:>4} {pct(row['grpo_fast'], row['n']):>16} {mv_col:>16}")
    total_ours = sum(ours_ok)
    total_mv = sum(mv_ok) if mv_ok is not None else None
    print(
        f"{'all':<16} {n:>4} {pct(total_ours, n):>16} {pct(total_mv, n) if total_mv is not None else '-':>16}"
    )
    print(
        f"\ntime: grpo-fast {ours_secs:.2f} s (one batch); "
        + (f"math-verify {mv_secs:.2f} s (one case at a time)" if mv_secs is not None else "")
    )
    reasons: dict[str, int] = {}
    for v in ours:
        reasons[v.reason] = reasons.get(v.reason, 0) + 1
    print("grpo-fast verdicts: " + ", ".join(f"{r} {k}" for r, k in sorted(reasons.items())))

    disagreements = []
    for i, c in enumerate(cases):
        if ours_ok[i]:
            continue
        v = ours[i]
        disagreements.append(
            {
                "id": c["id"],
                "class": c["class"],
                "gold": c["gold"],
                "expected": c["expected"],
                "extracted": v.extracted,
                "reason": v.reason,
                "source": (v.details or {}).get("source"),
                "math_verify_right": mv_ok[i] if mv_ok else None,
            }
        )
    print(
        f"\ngrpo-fast disagrees with the expected verdict on {len(disagreements)} cases "
        f"(extracted answer, verdict reason, math-verify right?):"
    )
    for d in disagreements:
        mv = {True: "mv ok", False: "mv wrong", None: ""}[d["math_verify_right"]]
        print(
            f"  {d['id']:<20} expected {d['expected']!s:<5} gold {_short(d['gold'], 34):<34} "
            f"extracted {_short(d['extracted'], 30):<30} {d['reason']:<9} {mv}"
        )
    mv_misses = []
    if mv_ok is not None:
        mv_misses = [
            {"id": c["id"], "class": c["class"], "expected": c["expected"], "error": mv_errors[i]}
            for i, c in enumerate(cases)
            if not mv_ok[i]
        ]
        print(f"\nmath-verify disagrees on {len(mv_misses)} cases: " + ", ".join(m["id"] for m in mv_misses))

    if json_out is not None:
        _write_json(
            json_out,
            {
                "cases": n,
                "suite": str(path),
                "commit": _git_head(),
                "agreement": {
                    "grpo_fast": total_ours / n,
                    **({"math_verify": total_mv / n} if mv_ok else {}),
                },
                "correct_counts": {"grpo_fast": total_ours, **({"math_verify": total_mv} if mv_ok else {})},
                "seconds": {"grpo_fast": ours_secs, **({"math_verify": mv_secs} if mv_ok else {})},
                "per_class": per_class,
                "grpo_fast_reasons": reasons,
                "grpo_fast_disagreements": disagreements,
                "math_verify_disagreements": mv_misses,
            },
        )
        print(f"\nsummary written to {json_out}")


if __name__ == "__main__":
    main()
