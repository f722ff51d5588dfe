"""Training metrics: one JSON line per step (`metrics.jsonl`, TRL's metric names where they mean the
same), quality-gate warnings, optional TensorBoard / W&B (offline) mirrors, `curves.png` and the
end-of-run summary table."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Thresholds of the quality gates; crossing one prints a warning and is recorded in the step's line.
GATE_KL_MAX = 0.1
GATE_ADV_STD_RANGE = (0.5, 1.5)
GATE_VERIFICATION_MIN = 0.8


def quality_warnings(m: dict[str, float], kl_max: float | None = GATE_KL_MAX, check_adv_std: bool = True) -> list[str]:
    """The gates a step crossed, as short sentences. `check_adv_std` only makes sense for std-normalised
    advantages (grpo, batch_std); dr_grpo and rloo advantages are in reward units."""
    out = []
    kl = m.get("kl")
    if kl is not None and kl_max is not None and kl > kl_max:
        out.append(f"KL {kl:.3f} > {kl_max}: the policy is drifting far from the reference")
    a = m.get("advantage_std")
    # Only groups with signal define the advantage scale; a step without any is reported as zero-std.
    if check_adv_std and a is not None and a > 0 and not (GATE_ADV_STD_RANGE[0] <= a <= GATE_ADV_STD_RANGE[1]):
        out.append(f"advantage std {a:.2f} outside {GATE_ADV_STD_RANGE[0]}-{GATE_ADV_STD_RANGE[1]}")
    v = m.get("verification_rate")
    if v is not None and v < GATE_VERIFICATION_MIN:
        out.append(f"verification rate {v:.0%} < {GATE_VERIFICATION_MIN:.0%}: many completions got no verdict")
    return out


class MetricsLogger:
    """Appends each step's metrics to `<out>/metrics.jsonl` and mirrors them to the loggers in
    `report_to` when their packages are installed (a missing one is reported once, not fatal)."""

    def __init__(self, out_dir: str | Path, report_to: Sequence[str] = (), resume: bool = False,
                 config: dict[str, Any] | None = None, console: Any = None, kl_max: float | None = GATE_KL_MAX,
                 check_adv_std: bool = True):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / "metrics.jsonl"
        self.history: list[dict[str, Any]] = []
        if resume and self.path.exists():
            self.history = [json.loads(x) for x in self.path.read_text().splitlines() if x.strip()]
        elif self.path.exists():
            self.path.unlink()
        self.console = console
        self.kl_max = kl_max
        self.check_adv_std = check_adv_std
        self.warn_counts: dict[str, int] = {}
        self._tb = None
        self._wandb = None
        self.unavailable: list[str] = []
        for r in report_to:
            if r == "tensorboard":
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
                except Exception:  # tensorboard not installed
                    self.unavailable.append("tensorboard")
            elif r == "wandb":
                try:
                    import wandb

                    self._wandb = wandb.init(mode="offline", dir=str(self.out_dir), config=config or {},
                                             project="grpo-fast")
                except Exception:
                    self.unavailable.append("wandb")

    def truncate_to(self, step: int) -> None:
        """On resume: forget lines after the checkpoint's step, so the file has each step once."""
        self.history = [h for h in self.history if h.get("step", 0) <= step]
        # Through a temporary sibling and a rename: a kill midway leaves the old file, never a cut one.
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            with tmp.open("w") as f:
                f.write("".join(json.dumps(h) + "\n" for h in self.history))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def log(self, step: int, metrics: dict[str, float]) -> list[str]:
        line = {"step": step, **{k: _clean(v) for k, v in metrics.items() if not k.startswith("_")}}
        warns = quality_warnings(metrics, self.kl_max, self.check_adv_std)
        if warns:
            line["warnings"] = warns
            for w in warns:
                key = w.split(" ")[0]
                self.warn_counts[key] = self.warn_counts.get(key, 0) + 1
        self.history.append(line)
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")
        if self._tb is not None:
            for k, v in line.items():
                if isinstance(v, (int, float)) and k != "step" and v is not None:
                    self._tb.add_scalar(f"train/{k}", v, step)
        if self._wandb is not None:
            self._wandb.log({f"train/{k}": v for k, v in line.items() if isinstance(v, (int, float))}, step=step)
        return warns

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


CURVE_PANELS = (
    ("reward", "reward (mean)"),
    ("frac_reward_zero_std", "zero-std groups"),
    ("entropy", "entropy (nats/token)"),
    ("kl", "KL to reference"),
    ("completions/mean_length", "completion length"),
    ("clip_ratio/region_mean", "clipped tokens"),
)


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write a grid of per-step curves (reward with a rolling mean, zero-std share, entropy, KL,
    length, clip share) as a PNG. Uses the Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    steps = [h["step"] for h in history]
    for ax, (key, label) in zip(axes.flat, CURVE_PANELS, strict=False):
        ys = [h.get(key) for h in history]
        pts = [(s, y) for s, y in zip(steps, ys, strict=True) if y is not None]
        if pts:
            xs, vs = zip(*pts, strict=True)
            ax.plot(xs, vs, lw=1, alpha=0.5 if key == "reward" else 1.0, label=label)
            if key == "reward" and len(vs) >= 5:
                w = min(max(10, len(vs) // 40), len(vs))
                roll = [sum(vs[max(0, i - w + 1):i + 1]) / len(vs[max(0, i - w + 1):i + 1]) for i in range(len(vs))]
                ax.plot(xs, roll, lw=2, label=f"rolling mean ({w})")
                if any(h.get("accuracy") is not None for h in history):
                    acc = [(s, h.get("accuracy")) for s, h in zip(steps, history, strict=True) if h.get("accuracy") is not None]
                    if acc and any(a != v for (_, a), v in zip(acc, vs, strict=False)):
                        ax.plot(*zip(*acc, strict=True), lw=1, ls="--", label="accuracy (exact)")
                ax.set_ylim(-0.02, 1.02)
                ax.legend(loc="lower right", fontsize=8)
        if key in ("kl", "clip_ratio/region_mean") and pts and not any(v for _, v in pts):
            label += " (none: beta = 0)" if key == "kl" else " (none: on-policy, 1 update per batch)"
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def summary_rows(history: Sequence[dict[str, Any]], window: int = 10) -> list[tuple[str, str, str, str]]:
    """(metric, first window mean, last window mean, best) rows for the end-of-run table."""
    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    rows = []
    for key in ("reward", "accuracy", "reward_std", "frac_reward_zero_std", "entropy", "kl",
                "completions/mean_length", "clip_ratio/region_mean", "grad_norm", "reward_wait_s", "tokens_per_s"):
        vals = [h[key] for h in history if h.get(key) is not None]
        if not vals:
            continue
        first, last = mean(vals[:window]), mean(vals[-window:])
        best = max(vals) if key in ("reward", "accuracy") else float("nan")
        rows.append((key, f"{first:.4g}", f"{last:.4g}", "" if math.isnan(best) else f"{best:.4g}"))
    return rows


def first_step_reaching(history: Sequence[dict[str, Any]], key: str, threshold: float, window: int = 10) -> int | None:
    """First step at which the rolling mean of `key` over `window` logged steps reaches `threshold`."""
    vals: list[float] = []
    for h in history:
        v = h.get(key)
        if v is None:
            continue
        vals.append(v)
        if len(vals) >= window and sum(vals[-window:]) / window >= threshold:
            return int(h["step"])
    return None


def render_summary(history: Sequence[dict[str, Any]], console: Any, title: str, extra: dict[str, str] | None = None,
                   window: int = 10) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    table.add_column("metric")
    table.add_column(f"first {window} steps", justify="right")
    table.add_column(f"last {window} steps", justify="right")
    table.add_column("best", justify="right")
    for row in summary_rows(history, window):
        table.add_row(*row)
    rewards = [(h["step"], h["reward"]) for h in history if h.get("reward") is not None]
    if len(rewards) >= 2:
        picks = sorted({rewards[round(i * (len(rewards) - 1) / 5)] for i in range(6)})
        table.add_row("reward at step", "", "  ".join(f"{s}:{r:.2f}" for s, r in picks), "")
    hit = first_step_reaching(history, "reward", 0.9, window)
    table.add_row(f"reward >= 0.9 ({window}-step mean)", "", f"step {hit}" if hit else "not reached", "")
    for k, v in (extra or {}).items():
        table.add_row(k, "", v, "")
    console.print(table)
