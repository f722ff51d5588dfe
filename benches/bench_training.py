"""Benchmark: GRPO variants on the `digit_sum` toy task (a+b= for single digits, from a random-init
tiny model on CPU), compared with the plain-GRPO prototype settings that plateaued near 0.5.

Each configuration runs through the same `run_training` as `grpo-fast train --toy digit_sum`; the
bench prints exact-match accuracy (sampled, last 50 steps; greedy at the end) per configuration, the
ratio to the plain baseline, and writes one comparison plot.

    python benches/bench_training.py --steps 1200 --seeds 0 --out runs/bench_digit_sum
    python benches/bench_training.py --configs plain,kl --steps 1200 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# name -> (what it changes, GRPOConfig overrides on top of the toy defaults)
# Every configuration states the DAPO-recipe fields (dynamic sampling, clip-higher, updates per batch),
# so a row is exactly what its description says whatever the `--toy digit_sum` defaults are.
_PLAIN = dict(dynamic_sampling=False, skip_zero_std_groups=False, epsilon_high=None, num_iterations=1)

CONFIGS: dict[str, tuple[str, dict]] = {
    "plain": ("prototype: lr 2e-3, G=8, 32 prompts/step, clip 0.2, no KL, exact-match reward",
              dict(_PLAIN, learning_rate=2e-3, beta=0.0)),
    "lowlr": ("lr 5e-4, no KL", dict(_PLAIN, learning_rate=5e-4, beta=0.0)),
    "kl": ("lr 5e-4 + KL 0.02 to the initial model (the `--toy digit_sum` default)",
           dict(_PLAIN, learning_rate=5e-4, beta=0.02)),
    "partial": ("kl + partial credit (toy_digits: right length, right digits) + G=16",
                dict(_PLAIN, learning_rate=5e-4, beta=0.02, verifier="toy_digits", num_generations=16,
                     prompts_per_step=16)),
    "dapo": ("kl + dynamic sampling, zero-std groups skipped, clip 0.2/0.28, 2 updates per batch",
             dict(learning_rate=5e-4, beta=0.02, dynamic_sampling=True, skip_zero_std_groups=True,
                  epsilon_high=0.28, num_iterations=2)),
    "dapo_nokl": ("dapo without the KL anchor (beta 0)",
                  dict(learning_rate=5e-4, beta=0.0, dynamic_sampling=True, skip_zero_std_groups=True,
                       epsilon_high=0.28, num_iterations=2)),
}


def run_one(name: str, seed: int, steps: int, out: Path) -> dict:
    import torch

    from grpo_fast.trainer.config import GRPOConfig
    from grpo_fast.trainer.run import run_training

    torch.set_num_threads(1)
    _, over = CONFIGS[name]
    cfg = GRPOConfig(toy="digit_sum", output_dir=str(out / f"{name}-s{seed}"), seed=seed, max_steps=steps,
                     save_final=False, **over)
    t = time.perf_counter()
    res = run_training(cfg, live=False, explicit={"max_steps", "seed", "save_final", *over})
    acc = [h.get("accuracy") for h in res.history if h.get("accuracy") is not None]
    tail = acc[-50:]
    return {"config": name, "seed": seed, "steps": steps, "acc_last50": sum(tail) / max(len(tail), 1),
            "acc_best50": max((sum(acc[i:i + 50]) / 50 for i in range(max(1, len(acc) - 49))), default=0.0),
            "greedy": res.greedy_accuracy, "wall_s": time.perf_counter() - t,
            "entropy_last": res.history[-1].get("entropy"),
            "zero_std_last": res.history[-1].get("frac_reward_zero_std"),
            "curve": [(h["step"], h.get("accuracy")) for h in res.history]}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    colours = {name: f"C{i}" for i, name in enumerate(CONFIGS)}
    styles = ["-", "--", ":", "-."]
    for r in results:
        xs = [s for s, a in r["curve"] if a is not None]
        ys = [a for _, a in r["curve"] if a is not None]
        w = 25
        roll = [sum(ys[max(0, i - w + 1):i + 1]) / len(ys[max(0, i - w + 1):i + 1]) for i in range(len(ys))]
        ax.plot(xs, roll, color=colours[r["config"]], ls=styles[r["seed"] % len(styles)],
                label=f"{r['config']} (seed {r['seed']})")
    ax.axhline(0.55, ls=":", c="gray", lw=0.8, label="one-digit-only ceiling (0.55)")
    ax.set_xlabel("step")
    ax.set_ylabel("exact-match accuracy (sampled, 25-step mean)")
    ax.set_title("digit_sum: a+b= from a random-init 133K-parameter model, CPU")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="plain,lowlr,kl,partial,dapo")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", default="runs/bench_digit_sum")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    results = []
    for name in args.configs.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            console.print(f"[bold]{name}[/] seed {seed}: {CONFIGS[name][0]}")
            r = run_one(name, seed, args.steps, out)
            results.append(r)
            with (out / "results.jsonl").open("a") as f:
                f.write(json.dumps({k: v for k, v in r.items() if k != "curve"}) + "\n")
    plot(results, out / "digit_sum_accuracy.png")
    base = [r["acc_last50"] for r in results if r["config"] == "plain"]
    base_mean = sum(base) / len(base) if base else None
    t = Table(title=f"digit_sum, {args.steps} steps (alternative compared with: `plain`, the prototype settings)")
    for c in ("config", "seed", "accuracy (last 50 steps)", "best 50-step mean", "greedy", "vs plain", "wall s"):
        t.add_column(c, justify="right")
    for r in results:
        ratio = f"{r['acc_last50'] / base_mean:.2f}x" if base_mean else ""
        t.add_row(r["config"], str(r["seed"]), f"{r['acc_last50']:.3f}", f"{r['acc_best50']:.3f}",
                  f"{r['greedy']:.2f}" if r["greedy"] is not None else "", ratio, f"{r['wall_s']:.0f}")
    console.print(t)
    console.print(f"plot: {out / 'digit_sum_accuracy.png'}")


if __name__ == "__main__":
    main()
