"""Generate `arithmetic_groups.jsonl`: 200 arithmetic word problems, each with a group of 8
sampled-looking responses (some right, some wrong, some without a final answer) and the gold
answer. Deterministic (fixed seed); responses carry no scores: `grpo-fast verify` adds them.

    python examples/make_arithmetic.py [--n 200] [--group 8] [--out examples/arithmetic_groups.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random

NAMES = ["Ava", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade"]
ITEMS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells"]


def problem(rng: random.Random) -> tuple[str, int, list[str]]:
    name, other = rng.sample(NAMES, 2)
    item = rng.choice(ITEMS)
    a, b, c = rng.randint(5, 60), rng.randint(2, 30), rng.randint(2, 9)
    kind = rng.randrange(4)
    if kind == 0:
        q = f"{name} has {a} {item} and buys {b} more. How many {item} does {name} have now?"
        steps = [f"{name} starts with {a} {item}.", f"Adding {b} gives {a} + {b} = {a + b}."]
        ans = a + b
    elif kind == 1:
        a = max(a, b + 1)
        q = f"{name} had {a} {item} and gave {b} to {other}. How many {item} are left?"
        steps = [f"{name} had {a}.", f"After giving away {b}: {a} - {b} = {a - b}."]
        ans = a - b
    elif kind == 2:
        q = f"{name} fills {c} boxes with {b} {item} each. How many {item} is that in total?"
        steps = [f"There are {c} boxes of {b}.", f"{c} \\times {b} = {c * b}."]
        ans = b * c
    else:
        total = b * c
        q = f"{name} shares {total} {item} equally among {c} friends. How many does each friend get?"
        steps = [f"{total} {item} split {c} ways.", f"{total} / {c} = {b}."]
        ans = b
    return q, ans, steps


def response(rng: random.Random, ans: int, steps: list[str]) -> str:
    style = rng.random()
    wrong = rng.random() < 0.4
    shown = ans + rng.choice([-10, -2, -1, 1, 2, 3, 10]) if wrong else ans
    body = " ".join(steps if not wrong else [*steps[:-1], "I think the total changes a bit here."])
    if style < 0.4:
        return f"{body}\nThe answer is \\boxed{{{shown}}}."
    if style < 0.7:
        return f"Let me work it out. {body}\n#### {shown}"
    if style < 0.9:
        return f"{body} So the final answer is {shown}."
    return f"{body} I am not sure how to finish this."  # no final answer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default="examples/arithmetic_groups.jsonl")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w") as f:
        for i in range(args.n):
            q, ans, steps = problem(rng)
            rec = {
                "id": f"arith-{i:04d}",
                "prompt": q,
                "answer": f"#### {ans}",
                "responses": [{"text": response(rng, ans, steps)} for _ in range(args.group)],
            }
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
