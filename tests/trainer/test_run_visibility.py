"""Watching a run: plain per-step lines outside a terminal and uncut paths, per-reward metrics and an
honest accuracy, sample completions (completions.jsonl), evaluation during training with the best
checkpoint, the W&B mode decision, and metric names declared once."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from grpo_fast import metrics as M
from grpo_fast.cli.train import train
from grpo_fast.metrics import MetricsLogger, format_step_line, wandb_api_key_configured, wandb_mode
from grpo_fast.sampler.base import Completion, CompletionGroup
from grpo_fast.trainer import checkpoint as ck
from grpo_fast.trainer.config import GRPOConfig
from grpo_fast.trainer.loop import GRPOTrainer, ScoredGroup, accuracy, part_reward_metrics
from grpo_fast.trainer.run import run_training
from grpo_fast.trainer.toy_tasks import get_toy_task
from grpo_fast.verifiers import Verdict, VerifyItem, build_verifier

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"
SMALL = dict(toy="next_digit", prompts_per_step=4, num_generations=4)


def _run(out: Path, console: Console | None = None, live: bool = True, **fields):
    """run_training with the toy task's small batch; the fields given here win over its defaults."""
    values = {**SMALL, "output_dir": str(out), "eval_prompts": 0, **fields}
    resume, overwrite = values.pop("resume", None), values.pop("overwrite", False)
    return run_training(GRPOConfig(**values), console=console or Console(file=io.StringIO()), live=live,
                        resume=resume, overwrite=overwrite, explicit=set(values))


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _cli() -> list[str]:
    exe = shutil.which("grpo-fast")
    return [exe] if exe else [sys.executable, "-m", "grpo_fast"]


def _quiet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS", "TTY_INTERACTIVE")}
    return {**env, "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------------------------------------
# 1. outside a terminal: one plain line per step, paths never cut


def test_train_outside_a_terminal_prints_a_line_per_step_and_whole_paths(tmp_path):
    # A path well beyond the 80 columns rich assumes when stderr is not a terminal.
    out = tmp_path / ("a_rather_long_folder_name_for_a_training_run_" * 2) / "nested" / "out"
    r = subprocess.run([*_cli(), "train", "--toy", "next_digit", "--max-steps", "3", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env=_quiet_env())
    assert r.returncode == 0, r.stderr[-3000:]
    err = r.stderr.splitlines()
    steps = [x for x in err if re.match(r"step \d+/3  reward ", x)]
    assert [x.split()[1] for x in steps] == ["1/3", "2/3", "3/3"], r.stderr
    for x in steps:
        for label in ("reward", "accuracy", "kl", "entropy", "len", "s/step"):
            assert f" {label} " in f" {x} ", (label, x)
    assert not [x for x in err if x.startswith("train ")]  # no progress bar written into the log
    # Every path on one line, whole (the summary puts them below the table).
    for name, path in (("metrics", out / "metrics.jsonl"), ("curves", out / "curves.png"),
                       ("checkpoint", out / "checkpoint-3")):
        assert f"{name}: {path}" in err, (name, r.stderr[-2000:])
    assert any(f"all in {out}/config.json" in x for x in err)


def test_a_terminal_keeps_the_progress_bar_and_gets_no_plain_lines(tmp_path):
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    _run(tmp_path / "t", console, max_steps=2)
    text = buf.getvalue()
    assert re.search(r"train.*━.*2/2", text)
    assert not re.search(r"^step \d+/2  reward", text, re.M)


def test_quiet_prints_no_step_lines(tmp_path):
    buf = io.StringIO()
    _run(tmp_path / "q", Console(file=buf, width=80), live=False, max_steps=2)
    assert "step 1/2" not in buf.getvalue()


def test_step_line_shows_the_sampler_mismatch_when_there_is_one():
    m = {M.REWARD: 0.5, M.ACCURACY: float("nan"), M.KL: 0.01, M.ENTROPY: 1.2, M.MEAN_LENGTH: 7.0,
         M.STEP_TIME_S: 0.25, "sampling/kl": 1e-4, "sampling/sampling_logp_difference/mean": 0.002}
    line = format_step_line(7, 10, m)
    assert line.startswith("step 7/10  reward 0.500  accuracy n/a  kl 0.0100")
    assert "0.25 s/step" in line and "sampling/kl 0.0001" in line and "sampling/sampling_logp_difference/mean" in line
    assert "sampling/" not in format_step_line(7, 10, {M.REWARD: 0.5})


# ---------------------------------------------------------------------------------------------
# 2. per-reward metrics and an honest accuracy

GOOD = "<think>2 + 2 = 4</think> So \\boxed{4}."
NO_THINK = "2 + 2 = 4, so \\boxed{4}."
WRONG = "<think>2 + 2 = 5</think> So \\boxed{5}."


def _group(texts: list[str], verdicts: list[Verdict]) -> ScoredGroup:
    comps = [Completion(t, [1, 2, 3], None, "stop") for t in texts]
    g = CompletionGroup("What is 2 + 2?", "What is 2 + 2?", [5, 6], comps, {"answer": "4"})
    return ScoredGroup(g, [math.nan if v.score is None else float(v.score) for v in verdicts], verdicts)


def test_composite_accuracy_is_the_correctness_verifiers_and_each_part_is_logged(trainer):
    texts = [GOOD, NO_THINK, NO_THINK, WRONG]
    with build_verifier(["math=0.9", "format=0.1"]) as v:
        verdicts = v.verify_batch([VerifyItem("What is 2 + 2?", t, {"answer": "4"}) for t in texts])
    trainer = trainer
    m = trainer._reward_metrics([_group(texts, verdicts)], __import__("numpy").zeros(4))
    # Three right answers, two of them without <think>: accuracy 3/4 (format would have made it 1/4).
    assert m[M.ACCURACY] == pytest.approx(0.75)
    assert m[M.reward_metric("math", "mean")] == pytest.approx(0.75)
    assert m[M.reward_metric("format", "mean")] == pytest.approx(0.5)
    assert m[M.reward_metric("format", "std")] == pytest.approx(0.5)
    assert m[M.REWARD] == pytest.approx((1.0 + 0.9 + 0.9 + 0.1) / 4)


def test_a_score_without_correctness_is_not_incorrect():
    scored = [Verdict(0.5, None, "scored"), Verdict(0.2, None, "scored")]
    assert math.isnan(accuracy(scored))
    assert accuracy([*scored, Verdict(1.0, True, "correct"), Verdict(0.0, False, "wrong")]) == 0.5
    assert part_reward_metrics(scored, "mine") == {"rewards/mine/mean": pytest.approx(0.35),
                                                  "rewards/mine/std": pytest.approx(0.15)}


@pytest.mark.parametrize("flags", [["--verifier", "toy_exact=0.9", "--verifier", "format=0.1"],
                                   ["--verifier", "toy_exact=0.9,format=0.1"]])
def test_train_takes_a_composite_verifier_either_way(tmp_path, flags):
    out = tmp_path / "c"
    r = CliRunner().invoke(train, ["--toy", "next_digit", "--max-steps", "2", "--out", str(out), "-q",
                                   "--prompts-per-step", "8", *flags])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "config.json").read_text())["verifier"] == "toy_exact=0.9,format=0.1"
    for line in _lines(out / "metrics.jsonl"):
        for key in ("rewards/toy_exact/mean", "rewards/toy_exact/std", "rewards/format/mean", "rewards/format/std"):
            assert key in line, key
        assert line["rewards/format/mean"] == 0.0  # toy answers have no <think>
        # accuracy is toy_exact's judgement, not "every part passed" (which format never does here)
        assert line["accuracy"] == pytest.approx(line["rewards/toy_exact/mean"])
        assert line["reward"] == pytest.approx(0.9 * line["rewards/toy_exact/mean"])


# ---------------------------------------------------------------------------------------------
# metric names: declared once, used by the trainer, documented


def test_every_metric_a_step_logs_is_declared_and_documented(trainer):
    m = trainer.step()
    undeclared = [k for k in m if not M.is_declared(k)]
    assert undeclared == []
    docs = DOCS.read_text()
    missing = [k for k in (*M.STEP_METRICS, *M.EVAL_METRICS) if f"`{k}`" not in docs and
               f"`{k.rsplit('/', 1)[0]}/" not in docs and f"`/{k.rsplit('/', 1)[-1]}`" not in docs]
    assert missing == []
    for needle in ("rewards/<name>/mean", "eval/pass@k", "completions.jsonl", "checkpoint-best", "WANDB_MODE",
                   "--wandb-offline", "--eval-data", "--eval-steps"):
        assert needle in docs, needle


@pytest.fixture
def trainer():
    import torch

    from grpo_fast.trainer.toy_tasks import ToyExactVerifier, build_char_tokenizer, build_tiny_model

    torch.manual_seed(0)
    tok = build_char_tokenizer()
    cfg = GRPOConfig(toy="next_digit", learning_rate=2e-3, prompts_per_step=4, num_generations=4,
                     max_completion_length=2, use_chat_template=False, max_steps=10)
    t = GRPOTrainer(cfg, build_tiny_model(tok), tok, get_toy_task("next_digit").records, ToyExactVerifier())
    yield t
    t.close()


# ---------------------------------------------------------------------------------------------
# 3. sample completions


def test_last_batch_holds_the_steps_groups_and_advantages(trainer):
    t = trainer
    assert t.last_batch is None
    t.step()
    b = t.last_batch
    assert b.step == 1 and len(b.groups) == 4 and len(b.advantages) == 16
    rows = b.completion_records(2)
    assert len(rows) == 8 and {r["group"] for r in rows} == {0, 1}
    assert rows[0]["completion"] is b.groups[0].group.completions[0].text  # the text itself, not a copy
    for gi in (0, 1):
        adv = [r["advantage"] for r in rows if r["group"] == gi]
        assert adv == pytest.approx(list(b.advantages[gi * 4:gi * 4 + 4]))
        assert sum(adv) == pytest.approx(0.0, abs=1e-6)  # group-relative
    assert {"step", "prompt", "completion", "score", "advantage", "correct", "reason", "extracted", "rewards"} <= set(rows[0])


def test_completions_jsonl_every_n_steps_and_a_table_in_a_terminal(tmp_path):
    out = tmp_path / "s"
    buf = io.StringIO()
    _run(out, Console(file=buf, force_terminal=True, width=160), max_steps=4, log_completions_steps=2,
         log_completions_count=2, save_steps=2)
    rows = _lines(out / "completions.jsonl")
    assert [r["step"] for r in rows] == [2] * 8 + [4] * 8
    assert all(r["prompt"].endswith("=") and isinstance(r["completion"], str) for r in rows)
    assert all(isinstance(r["advantage"], float) and r["score"] in (0.0, 1.0) for r in rows)
    assert "completions at step 2" in buf.getvalue() and "completions at step 4" in buf.getvalue()
    # A resume from step 2 rewrites the later lines instead of doubling them.
    _run(out, live=False, max_steps=4, log_completions_steps=2, log_completions_count=2, save_steps=2,
         resume=str(out / "checkpoint-2"))
    again = _lines(out / "completions.jsonl")
    assert [r["step"] for r in again] == [2] * 8 + [4] * 8
    assert again == rows  # the run is deterministic on CPU
    # 0 turns it off; --overwrite removes the file with the run.
    _run(out, live=False, max_steps=2, log_completions_steps=0, overwrite=True)
    assert not (out / "completions.jsonl").exists()


# ---------------------------------------------------------------------------------------------
# 4. evaluation during training and the best checkpoint


@pytest.fixture
def eval_file(tmp_path):
    f = tmp_path / "held_out.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in get_toy_task("next_digit").records[:6]))
    return f


def test_eval_every_n_steps_and_at_the_end_without_changing_training(tmp_path, eval_file):
    plain = _run(tmp_path / "a", live=False, max_steps=5, log_completions_steps=0)
    buf = io.StringIO()
    ev = dict(max_steps=5, log_completions_steps=0, eval_data=str(eval_file), eval_steps=2, eval_num_samples=3,
              eval_max_prompts=4, save_steps=2)
    _run(tmp_path / "b", Console(file=buf, width=100), **ev)
    lines = _lines(tmp_path / "b" / "metrics.jsonl")
    evals = [h for h in lines if "eval/accuracy" in h]
    assert [h["step"] for h in evals] == [2, 4, 5]  # every 2 steps and at the end
    for h in evals:
        assert 0.0 <= h["eval/accuracy"] <= 1.0 and 0.0 <= h["eval/mean_score"] <= 1.0
        assert 0.0 <= h["eval/pass@3"] <= 1.0 and h["eval/num_prompts"] == 4
    assert re.search(r"^eval at step 2: accuracy \d\.\d+  pass@3 \d\.\d+  mean_score \d\.\d+  \(4 prompts\)",
                     buf.getvalue(), re.M)
    # The evaluations draw from their own RNG: the training run is the same step for step.
    strip = lambda h: {k: v for k, v in h.items() if not k.startswith("eval/") and not k.endswith("_s")  # noqa: E731
                       and k != "tokens_per_s"}
    assert [strip(h) for h in lines] == [strip(h) for h in plain.history]
    # ... and resumes bit-for-bit, evaluations included.
    _run(tmp_path / "b", live=False, resume=str(tmp_path / "b" / "checkpoint-2"), **ev)
    timing = lambda h: {k: v for k, v in h.items() if not k.endswith("_s") and k != "tokens_per_s"}  # noqa: E731
    assert [timing(h) for h in _lines(tmp_path / "b" / "metrics.jsonl")] == [timing(h) for h in lines]
    assert [k for k, _, _ in M._eval_curves(lines)] == ["eval/accuracy", "eval/pass@3"]
    assert (tmp_path / "b" / "curves.png").stat().st_size > 0


def test_best_checkpoint_is_kept_atomically_and_never_resumed_as_latest(tmp_path, eval_file, monkeypatch):
    values = {2: 0.25, 4: 0.75, 6: 0.5}
    seen = []

    def fake_evaluate(self, records, num_samples=1, seed=None):
        seen.append((self.step_count, len(records), num_samples))
        return {M.EVAL_ACCURACY: values[self.step_count], M.EVAL_MEAN_SCORE: 0.0, M.EVAL_NUM_PROMPTS: len(records)}

    monkeypatch.setattr(GRPOTrainer, "evaluate", fake_evaluate)
    out = tmp_path / "best"
    res = _run(out, live=False, max_steps=6, eval_data=str(eval_file), eval_steps=2,
               save_best_metric="eval/accuracy", save_final=False, log_completions_steps=0)
    assert seen == [(2, 6, 1), (4, 6, 1), (6, 6, 1)]
    best = ck.best_checkpoint_dir(out)
    state = ck.verify_checkpoint(best)
    assert state["step"] == 4 and state["best"] == {"metric": "eval/accuracy", "value": 0.75, "step": 4}
    assert not list(out.glob(".checkpoint-best*"))  # no temporaries left
    assert res.final_checkpoint is None and ck.latest_checkpoint(out) is None  # the best is not "latest"
    r = CliRunner().invoke(train, ["--toy", "next_digit", "--out", str(out), "-q", "--resume", "latest"])
    assert r.exit_code == 2 and "no checkpoint" in r.output
    # It loads as a model, and a resumed run keeps the best so far.
    assert ck.read_best(out, "eval/accuracy")["value"] == 0.75 and ck.read_best(out, "eval/mean_score") is None
    assert {p.name for p in ck.run_outputs(out)} >= {"checkpoint-best", "metrics.jsonl"}


def test_eval_config_is_checked():
    with pytest.raises(Exception, match="save_best_metric"):
        GRPOConfig(save_best_metric="eval/accuracy")
    with pytest.raises(Exception, match="eval/pass@4"):
        GRPOConfig(eval_data="x.jsonl", save_best_metric="eval/pass@4")
    with pytest.raises(Exception, match="eval_num_samples"):
        GRPOConfig(eval_num_samples=0)
    GRPOConfig(eval_data="x.jsonl", eval_num_samples=4, save_best_metric="eval/pass@4")


def test_train_eval_flags_reach_the_config(tmp_path, eval_file):
    r = CliRunner().invoke(train, ["--toy", "next_digit", "--eval-data", str(eval_file), "--eval-steps", "5",
                                   "--wandb-offline", "--print-config"])
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert (cfg["eval_data"], cfg["eval_steps"], cfg["wandb_offline"]) == (str(eval_file), 5, True)


# ---------------------------------------------------------------------------------------------
# 5. W&B: online when a key is configured, else offline with a note


@pytest.mark.parametrize(("env", "offline", "has_key", "mode", "note"), [
    ({"WANDB_MODE": "disabled"}, False, True, "disabled", None),
    ({"WANDB_MODE": "online"}, True, False, "online", None),  # WANDB_MODE decides
    ({}, True, True, "offline", "--wandb-offline"),
    ({}, False, False, "offline", "no API key"),
    ({}, False, True, "online", None),
])
def test_wandb_mode_decision(env, offline, has_key, mode, note):
    got, why = wandb_mode(env, offline=offline, has_key=has_key)
    assert got == mode
    assert (why is None) if note is None else (note in why and "wandb sync" in why)


def test_wandb_key_is_found_in_the_environment_or_netrc(tmp_path):
    assert wandb_api_key_configured({"WANDB_API_KEY": "x" * 40, "HOME": str(tmp_path)})
    assert not wandb_api_key_configured({"HOME": str(tmp_path)})
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    os.chmod(tmp_path / ".netrc", 0o600)
    assert wandb_api_key_configured({"HOME": str(tmp_path)})
    assert not wandb_api_key_configured({"HOME": str(tmp_path), "WANDB_BASE_URL": "https://wandb.example.org"})
    assert wandb_mode({"HOME": str(tmp_path)}) == ("online", None)


def test_wandb_without_a_key_logs_offline_and_says_so(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for k in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "NETRC", "WANDB_BASE_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    log = MetricsLogger(tmp_path / "run", report_to=("wandb",))
    try:
        assert log.unavailable == [] and log.wandb_mode == "offline"
        assert len(log.notes) == 1 and "no API key" in log.notes[0] and str(tmp_path / "run") in log.notes[0]
        log.log(1, {"reward": 0.5})
    finally:
        log.close()
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
