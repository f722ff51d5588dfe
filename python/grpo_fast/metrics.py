"""Training metrics: their names (declared here once), one JSON line per step (`metrics.jsonl`, TRL's
metric names where they mean the same), quality-gate warnings, optional TensorBoard / W&B mirrors,
sample completions (`completions.jsonl`), the plain per-step log line, `curves.png` and the
end-of-run summary table."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# Metric names. Every name a step, an evaluation or the summary uses is declared here, once; the
# trainer, the gates, the curves, the summary and the docs test read these constants.

# reward and verification (GRPOTrainer._reward_metrics)
REWARD = "reward"  # mean score over completions with a verdict
REWARD_STD = "reward_std"  # mean within-group std
ACCURACY = "accuracy"  # share judged correct, over verdicts that carry a correctness
FRAC_REWARD_ZERO_STD = "frac_reward_zero_std"
ADVANTAGE_STD = "advantage_std"
VERIFICATION_RATE = "verification_rate"
NO_VERDICT = "no_verdict"
MEAN_LENGTH = "completions/mean_length"
MIN_LENGTH = "completions/min_length"
MAX_LENGTH = "completions/max_length"
CLIPPED_RATIO = "completions/clipped_ratio"
NUM_GROUPS = "num_groups"
# the update (GRPOTrainer._update)
LOSS = "loss"
KL = "kl"
CLIP_LOW = "clip_ratio/low_mean"
CLIP_HIGH = "clip_ratio/high_mean"
CLIP_REGION = "clip_ratio/region_mean"
ENTROPY = "entropy"
GRAD_NORM = "grad_norm"
LEARNING_RATE = "learning_rate"
NUM_TOKENS = "num_tokens"
SKIPPED_UPDATE = "skipped_update"
# timings and throughput (GRPOTrainer.step)
SAMPLING_ROUNDS = "sampling_rounds"
GENERATION_S = "generation_s"
REWARD_WAIT_S = "reward_wait_s"
WEIGHT_SYNC_S = "weight_sync_s"
UPDATE_S = "update_s"
STEP_TIME_S = "step_time_s"
TOKENS_PER_S = "tokens_per_s"
# the sampler-mismatch metrics (trainer.loss.rollout_correction), TRL's names for the first five
SAMPLING_METRICS = (
    "sampling/importance_sampling_ratio/mean",
    "sampling/importance_sampling_ratio/min",
    "sampling/importance_sampling_ratio/max",
    "sampling/sampling_logp_difference/mean",
    "sampling/sampling_logp_difference/max",
    "sampling/kl",  # k3 estimate of KL(sampler || trainer), per token, on the sampler's samples
    "sampling/masked_fraction",  # share of completion tokens dropped (mode="mask")
    "sampling/truncated_fraction",  # share of completion tokens whose weight was clipped (mode="truncate")
)
# multi-turn rollouts with tools (grpo_fast.rollout), logged when the run has tools
TOOLS_CALLS_PER_ROLLOUT = "tools/calls_per_rollout"
TOOLS_TURNS_PER_ROLLOUT = "tools/turns_per_rollout"  # model turns
TOOLS_CALL_RATE = "tools/call_rate"  # share of rollouts with at least one call
TOOLS_ERRORS = "tools/errors"  # calls whose status is not ok (timeouts included), count
TOOLS_TIMEOUTS = "tools/timeouts"  # calls stopped by the per-call time limit, count
TOOLS_ERROR_RATE = "tools/error_rate"  # errors / calls
TOOLS_LIMIT_RATE = "tools/limit_rate"  # share of rollouts ended by a limit (tokens, turns, calls)
TOOLS_TOKEN_SHARE = "tools/token_share"  # tool tokens / all completion tokens (context, not trained on)
TOOLS_TIME_S = "tools/time_s"  # wall time of the tool batches
TOOLS_WAIT_S = "tools/wait_s"  # time generation stood still waiting for tool results
TOOLS_METRICS = (TOOLS_CALLS_PER_ROLLOUT, TOOLS_TURNS_PER_ROLLOUT, TOOLS_CALL_RATE, TOOLS_ERRORS, TOOLS_TIMEOUTS,
                 TOOLS_ERROR_RATE, TOOLS_LIMIT_RATE, TOOLS_TOKEN_SHARE, TOOLS_TIME_S, TOOLS_WAIT_S)
# evaluation on held-out prompts (GRPOTrainer.evaluate)
EVAL_ACCURACY = "eval/accuracy"  # greedy pass@1, over verdicts that carry a correctness
EVAL_MEAN_SCORE = "eval/mean_score"  # mean greedy score over completions with a verdict
EVAL_NUM_PROMPTS = "eval/num_prompts"
EVAL_PREFIX = "eval/"
REWARDS_PREFIX = "rewards/"

REWARD_METRICS = (REWARD, REWARD_STD, ACCURACY, FRAC_REWARD_ZERO_STD, ADVANTAGE_STD, VERIFICATION_RATE, NO_VERDICT,
                  MEAN_LENGTH, MIN_LENGTH, MAX_LENGTH, CLIPPED_RATIO, NUM_GROUPS)
UPDATE_METRICS = (LOSS, KL, CLIP_LOW, CLIP_HIGH, CLIP_REGION, ENTROPY, GRAD_NORM, LEARNING_RATE, NUM_TOKENS)
TIMING_METRICS = (SAMPLING_ROUNDS, GENERATION_S, REWARD_WAIT_S, WEIGHT_SYNC_S, UPDATE_S, STEP_TIME_S, TOKENS_PER_S)
# Every fixed name a training step can log (besides `rewards/<name>/...` and `eval/pass@<k>`).
STEP_METRICS = REWARD_METRICS + UPDATE_METRICS + (SKIPPED_UPDATE,) + TIMING_METRICS + SAMPLING_METRICS + TOOLS_METRICS
EVAL_METRICS = (EVAL_ACCURACY, EVAL_MEAN_SCORE, EVAL_NUM_PROMPTS)


def reward_metric(name: str, stat: str) -> str:
    """`rewards/<name>/<stat>`: one part of the reward (a composite's component, or the only
    verifier), `stat` = mean or std (TRL's names)."""
    return f"{REWARDS_PREFIX}{name}/{stat}"


def eval_pass_at(k: int) -> str:
    """`eval/pass@<k>`: share of eval prompts with at least one correct answer among k samples."""
    return f"{EVAL_PREFIX}pass@{k}"


def is_declared(name: str) -> bool:
    """Whether `name` is one of the declared metrics (or of their `rewards/...`, `eval/pass@k` forms)."""
    if name in STEP_METRICS or name in EVAL_METRICS:
        return True
    if name.startswith(REWARDS_PREFIX):
        return name.rsplit("/", 1)[-1] in ("mean", "std") and name.count("/") >= 2
    return re.fullmatch(r"eval/pass@\d+", name) is not None


# Thresholds of the quality gates; crossing one prints a warning and is recorded in the step's line.
GATE_KL_MAX = 0.1
GATE_ADV_STD_RANGE = (0.5, 1.5)
GATE_VERIFICATION_MIN = 0.8


def quality_warnings(m: dict[str, float], kl_max: float | None = GATE_KL_MAX, check_adv_std: bool = True) -> list[str]:
    """The gates a step crossed, as short sentences. `check_adv_std` only makes sense for std-normalised
    advantages (grpo, batch_std); dr_grpo and rloo advantages are in reward units."""
    out = []
    kl = m.get(KL)
    if kl is not None and kl_max is not None and kl > kl_max:
        out.append(f"KL {kl:.3f} > {kl_max}: the policy is drifting far from the reference")
    a = m.get(ADVANTAGE_STD)
    # Only groups with signal define the advantage scale; a step without any is reported as zero-std.
    if check_adv_std and a is not None and a > 0 and not (GATE_ADV_STD_RANGE[0] <= a <= GATE_ADV_STD_RANGE[1]):
        out.append(f"advantage std {a:.2f} outside {GATE_ADV_STD_RANGE[0]}-{GATE_ADV_STD_RANGE[1]}")
    v = m.get(VERIFICATION_RATE)
    if v is not None and v < GATE_VERIFICATION_MIN:
        out.append(f"verification rate {v:.0%} < {GATE_VERIFICATION_MIN:.0%}: many completions got no verdict")
    return out


def wandb_api_key_configured(env: Mapping[str, str] | None = None) -> bool:
    """Whether W&B credentials are set up: WANDB_API_KEY or WANDB_IDENTITY_TOKEN_FILE, or a netrc
    entry for the W&B host (what `wandb login` writes; $NETRC, else ~/.netrc or ~/_netrc)."""
    import netrc
    from urllib.parse import urlsplit

    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY") or env.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(env.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    if env.get("NETRC"):
        candidates = [Path(env["NETRC"]).expanduser()]
    else:
        home = Path(env.get("HOME") or Path.home())
        candidates = [home / ".netrc", home / "_netrc"]
    for f in candidates:
        try:
            auth = netrc.netrc(str(f)).authenticators(host)
        except (OSError, netrc.NetrcParseError):
            continue
        if auth and auth[2]:
            return True
    return False


def wandb_mode(env: Mapping[str, str] | None = None, offline: bool = False,
               has_key: bool | None = None) -> tuple[str, str | None]:
    """(mode for `wandb.init`, a note to print or None). `WANDB_MODE` in the environment decides when
    set; else `offline` (--wandb-offline) or no API key configured gives offline, with a note saying
    why and how to upload later; else online."""
    env = os.environ if env is None else env
    if env.get("WANDB_MODE"):
        return env["WANDB_MODE"], None
    if offline:
        return "offline", "W&B offline (--wandb-offline): the run is under <out>/wandb; upload it with `wandb sync`"
    if has_key is None:
        has_key = wandb_api_key_configured(env)
    if not has_key:
        return "offline", ("W&B offline: no API key configured (set WANDB_API_KEY or run `wandb login`); the run "
                           "is under <out>/wandb; upload it with `wandb sync`")
    return "online", None


class MetricsLogger:
    """Appends each step's metrics to `<out>/metrics.jsonl` and mirrors them to the loggers in
    `report_to` when their packages are installed (a missing one is reported once, not fatal).
    W&B runs online or offline as `wandb_mode` decides; `notes` holds what to tell the user."""

    def __init__(self, out_dir: str | Path, report_to: Sequence[str] = (), resume: bool = False,
                 config: dict[str, Any] | None = None, console: Any = None, kl_max: float | None = GATE_KL_MAX,
                 check_adv_std: bool = True, wandb_offline: bool = False):
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
        self.notes: list[str] = []
        self.wandb_mode: str | None = None
        for r in report_to:
            if r == "tensorboard":
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
                except Exception:  # tensorboard not installed
                    self.unavailable.append("tensorboard")
            elif r == "wandb":
                self._init_wandb(config, wandb_offline)

    def _init_wandb(self, config: dict[str, Any] | None, offline: bool) -> None:
        try:
            import wandb
        except Exception:
            self.unavailable.append("wandb")
            return
        mode, note = wandb_mode(offline=offline)
        out = str(self.out_dir)
        project = os.environ.get("WANDB_PROJECT") or "grpo-fast"
        try:
            self._wandb = wandb.init(mode=mode, dir=out, config=config or {}, project=project)
        except Exception as exc:
            if mode != "online":
                self.unavailable.append("wandb")
                return
            try:  # no network, a rejected key, ...: keep the run, offline
                self._wandb = wandb.init(mode="offline", dir=out, config=config or {}, project=project)
            except Exception:
                self.unavailable.append("wandb")
                return
            mode, note = "offline", (f"W&B online failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}); "
                                     "logging offline under <out>/wandb; upload it with `wandb sync`")
        self.wandb_mode = mode
        if note:
            self.notes.append(note.replace("<out>", out))

    def truncate_to(self, step: int) -> None:
        """On resume: forget lines after the checkpoint's step, so the file has each step once."""
        self.history = [h for h in self.history if h.get("step", 0) <= step]
        # Through a temporary sibling and a rename: a kill midway leaves the old file, never a cut one.
        _rewrite_jsonl(self.path, self.history)

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
        # eval/... keep their names; the step's metrics go under train/.
        scalars = {(k if k.startswith(EVAL_PREFIX) else f"train/{k}"): v for k, v in line.items()
                   if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)
        return warns

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _rewrite_jsonl(path: Path, lines: Sequence[dict[str, Any]]) -> None:
    """Replace `path` with `lines` atomically (a kill midway leaves the old file, never a cut one)."""
    from grpo_fast.files import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(h) + "\n" for h in lines))


class CompletionLog:
    """Sample completions in `<out>/completions.jsonl`: one JSON line per completion (step, prompt,
    completion, score, advantage, correct, reason, extracted, per-part rewards, ...), appended every
    `log_completions_steps` steps, like TRL's `log_completions`. A fresh run starts the file anew; a
    resumed one keeps the lines up to the checkpoint's step."""

    def __init__(self, out_dir: str | Path, resume: bool = False):
        self.path = Path(out_dir) / "completions.jsonl"
        if not resume and self.path.exists():
            self.path.unlink()

    def truncate_to(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = []
        for x in self.path.read_text().splitlines():
            try:
                row = json.loads(x)
            except ValueError:  # half a line left by a kill
                continue
            if row.get("step", 0) <= step:
                keep.append(row)
        _rewrite_jsonl(self.path, keep)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            with self.path.open("a") as f:
                f.write("".join(json.dumps({k: _clean(v) for k, v in r.items()}) + "\n" for r in rows))


def render_completions(console: Any, rows: Sequence[dict[str, Any]], step: int, width: int = 60) -> None:
    """A small table of sample completions (terminal only; the file has them all in full)."""
    from rich.table import Table
    from rich.text import Text

    def short(x: Any) -> str:
        t = x if isinstance(x, str) else json.dumps(x)
        t = " ".join(t.split())
        return t if len(t) <= width else t[:width - 1] + "…"

    def num(x: Any) -> str:
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"

    table = Table(title=f"completions at step {step}", title_justify="left", show_lines=False)
    for col, just in (("prompt", "left"), ("completion", "left"), ("score", "right"), ("advantage", "right"),
                      ("extracted", "left"), ("rewards", "left")):
        table.add_column(col, justify=just, overflow="fold" if col == "completion" else "ellipsis")
    last_prompt = None
    for r in rows:
        prompt = short(r.get("prompt"))
        rewards = r.get("rewards") or {}
        table.add_row(Text(prompt if prompt != last_prompt else ""), Text(short(r.get("completion", ""))),
                      num(r.get("score")), num(r.get("advantage")), Text(short(r.get("extracted") or "")),
                      " ".join(f"{k} {num(v)}" for k, v in rewards.items()))
        last_prompt = prompt
    console.print(table)


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return format(v, spec)


# The plain per-step line outside a terminal: (metric, label, format).
LOG_LINE_FIELDS = (
    (REWARD, "reward", ".3f"), (ACCURACY, "accuracy", ".3f"), (KL, "kl", ".4f"), (ENTROPY, "entropy", ".3f"),
    (MEAN_LENGTH, "len", ".1f"),
)
# Sampler-mismatch metrics shown in the line when the step has them.
LOG_LINE_SAMPLING = ("sampling/sampling_logp_difference/mean", "sampling/kl", "sampling/importance_sampling_ratio/mean")


def format_step_line(step: int, max_steps: int, m: Mapping[str, Any]) -> str:
    """One plain line for a logged step (what `train` prints per step when stderr is not a terminal):
    `step 3/150  reward 0.312  accuracy 0.250  kl 0.0012  entropy 1.234  len 12.0  0.41 s/step`, then
    the sampler-mismatch metrics when present."""
    parts = [f"step {step}/{max_steps}"]
    parts += [f"{label} {_fmt(m.get(key), spec)}" for key, label, spec in LOG_LINE_FIELDS]
    parts.append(f"{_fmt(m.get(STEP_TIME_S), '.2f')} s/step")
    parts += [f"{key} {_fmt(m[key], '.4g')}" for key in LOG_LINE_SAMPLING if key in m]
    return "  ".join(parts)


def format_eval_line(step: int, m: Mapping[str, Any]) -> str:
    """`eval at step 10: accuracy 0.500  pass@4 0.750  mean_score 0.512  (100 prompts)`."""
    keys = [EVAL_ACCURACY, *sorted(k for k in m if re.fullmatch(r"eval/pass@\d+", k)), EVAL_MEAN_SCORE]
    body = "  ".join(f"{k.removeprefix(EVAL_PREFIX)} {_fmt(m.get(k), '.3f')}" for k in keys if k in m)
    n = m.get(EVAL_NUM_PROMPTS)
    return f"eval at step {step}: {body}" + (f"  ({int(n)} prompts)" if n is not None else "")


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


CURVE_PANELS = (
    (REWARD, "reward (mean)"),
    (FRAC_REWARD_ZERO_STD, "zero-std groups"),
    (ENTROPY, "entropy (nats/token)"),
    (KL, "KL to reference"),
    (MEAN_LENGTH, "completion length"),
    (CLIP_REGION, "clipped tokens"),
)


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write a grid of per-step curves (reward with a rolling mean, zero-std share, entropy, KL,
    length, clip share) as a PNG; the eval metrics (`eval/accuracy`, `eval/pass@k`), where logged,
    are drawn with markers on the reward panel. Uses the Agg backend: no display needed."""
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
            ax.plot(xs, vs, lw=1, alpha=0.5 if key == REWARD else 1.0, label=label)
            if key == REWARD and len(vs) >= 5:
                w = min(max(10, len(vs) // 40), len(vs))
                roll = [sum(vs[max(0, i - w + 1):i + 1]) / len(vs[max(0, i - w + 1):i + 1]) for i in range(len(vs))]
                ax.plot(xs, roll, lw=2, label=f"rolling mean ({w})")
                if any(h.get(ACCURACY) is not None for h in history):
                    acc = [(s, h.get(ACCURACY)) for s, h in zip(steps, history, strict=True) if h.get(ACCURACY) is not None]
                    if acc and any(a != v for (_, a), v in zip(acc, vs, strict=False)):
                        ax.plot(*zip(*acc, strict=True), lw=1, ls="--", label="accuracy (exact)")
                ax.set_ylim(-0.02, 1.02)
                ax.legend(loc="lower right", fontsize=8)
        if key == REWARD:
            drawn = False
            for ekey, style, elabel in _eval_curves(history):
                epts = [(h["step"], h[ekey]) for h in history if h.get(ekey) is not None]
                if epts:
                    ax.plot(*zip(*epts, strict=True), style, lw=1.5, ms=5, label=elabel)
                    drawn = True
            if drawn:
                ax.set_ylim(-0.02, 1.02)
                ax.legend(loc="lower right", fontsize=8)
        if key in (KL, CLIP_REGION) and pts and not any(v for _, v in pts):
            label += " (none: beta = 0)" if key == KL else " (none: on-policy, 1 update per batch)"
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


def _eval_curves(history: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(metric, line style, label) of the eval metrics in `history`, for the reward panel."""
    keys = sorted({k for h in history for k in h if re.fullmatch(r"eval/pass@\d+", k)})
    return [(EVAL_ACCURACY, "o-", "eval accuracy (greedy)")] + [(k, "s--", k.removeprefix(EVAL_PREFIX) + " (eval)")
                                                                  for k in keys]


SUMMARY_METRICS = (REWARD, ACCURACY, REWARD_STD, FRAC_REWARD_ZERO_STD, ENTROPY, KL, MEAN_LENGTH, CLIP_REGION,
                   GRAD_NORM, REWARD_WAIT_S, TOKENS_PER_S)


def summary_rows(history: Sequence[dict[str, Any]], window: int = 10) -> list[tuple[str, str, str, str]]:
    """(metric, first window mean, last window mean, best) rows for the end-of-run table: the
    `SUMMARY_METRICS`, each reward part's mean (when there are several) and the eval metrics (their
    windows count evaluations)."""
    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    parts = sorted({k for h in history for k in h if k.startswith(REWARDS_PREFIX) and k.endswith("/mean")})
    parts = parts if len(parts) > 1 else []  # one verifier's part is `reward` itself
    evals = [k for k, _, _ in _eval_curves(history)] + [EVAL_MEAN_SCORE]
    higher_better = {REWARD, ACCURACY, *parts, *evals}
    rows = []
    for key in (*SUMMARY_METRICS, *parts, *evals):
        vals = [h[key] for h in history if h.get(key) is not None]
        if not vals:
            continue
        first, last = mean(vals[:window]), mean(vals[-window:])
        best = max(vals) if key in higher_better else float("nan")
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
                   window: int = 10, paths: dict[str, str] | None = None) -> None:
    """The end-of-run table; `paths` (name -> file or folder) follow it one per line, never cut or
    wrapped, whatever the console's width (outside a terminal rich assumes 80 columns)."""
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    table.add_column("metric")
    table.add_column(f"first {window} steps", justify="right")
    table.add_column(f"last {window} steps", justify="right")
    table.add_column("best", justify="right")
    for row in summary_rows(history, window):
        table.add_row(*row)
    rewards = [(h["step"], h[REWARD]) for h in history if h.get(REWARD) is not None]
    if len(rewards) >= 2:
        picks = sorted({rewards[round(i * (len(rewards) - 1) / 5)] for i in range(6)})
        table.add_row("reward at step", "", "  ".join(f"{s}:{r:.2f}" for s, r in picks), "")
    hit = first_step_reaching(history, REWARD, 0.9, window)
    table.add_row(f"reward >= 0.9 ({window}-step mean)", "", f"step {hit}" if hit else "not reached", "")
    for k, v in (extra or {}).items():
        table.add_row(k, "", v, "")
    console.print(table)
    for k, v in (paths or {}).items():
        console.print(f"{k}: {v}", soft_wrap=True, markup=False, highlight=False)
