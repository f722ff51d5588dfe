"""Generate a realistic rollouts file for benchmarks: grouped records with a prompt, a gold
answer, extra metadata and G responses of reasoning text with scores.

    python benches/gen_rollouts.py --size-mb 1024 --out bench-data/rollouts.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random

WORDS = ("the we so then let compute check value sum product therefore step first next "
         "because total number answer equation both sides divide multiply factor root x y n").split()


LATEX = [r"\frac{%d}{%d}", r"\sqrt{%d}", r"x^{%d} + %d", r"\left(%d - %d\right)", r"\cdot %d", r"\le %d",
         r"\pi r^{%d}", r"\binom{%d}{%d}", "%d\u00b0", "\u2248 %d"]


def text(rng: random.Random, n_words: int, latex: bool = False) -> str:
    words = []
    for _ in range(n_words):
        if latex and rng.random() < 0.15:
            t = rng.choice(LATEX)
            words.append("$" + t % tuple(rng.randint(1, 99) for _ in range(t.count("%d"))) + "$")
        else:
            words.append(rng.choice(WORDS))
    return " ".join(words)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=1024)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench-data/rollouts.jsonl")
    ap.add_argument("--style", choices=["plain", "latex"], default="plain",
                    help="plain: ASCII words; latex: ~15%% of tokens inline LaTeX math, some non-ASCII")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    rng = random.Random(args.seed)
    target = int(args.size_mb * (1 << 20))
    # A pool of pre-made texts keeps generation fast; the reader does not care about repeats.
    latex = args.style == "latex"
    pool = [text(rng, rng.randint(60, 160), latex) + f" \\boxed{{{rng.randint(0, 999)}}}" for _ in range(4000)]
    prompts = [text(rng, rng.randint(20, 50)) + "?" for _ in range(2000)]
    written = 0
    i = 0
    with open(args.out, "w") as f:
        while written < target:
            p_correct = rng.random()
            rec = {
                "id": f"q-{i}",
                "prompt": rng.choice(prompts),
                "answer": str(rng.randint(0, 999)),
                "responses": [
                    {"text": rng.choice(pool), "score": 1.0 if rng.random() < p_correct else 0.0,
                     "correct": None}
                    for _ in range(args.group)
                ],
                "meta": {"source": "bench", "difficulty": rng.randint(1, 5)},
            }
            for r in rec["responses"]:
                r["correct"] = r["score"] == 1.0
            line = json.dumps(rec) + "\n"
            f.write(line)
            written += len(line)
            i += 1
    print(f"wrote {i:,} records, {written / (1 << 20):.0f} MiB to {args.out}")


if __name__ == "__main__":
    main()
