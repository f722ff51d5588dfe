"""Training on one's own data, as a new user does it: model-path and Hub mistakes end in one line
(before anything is loaded or written), MATH / GSM8K fields are found and their golds verified, a
batch without gold answers stops the run, prompt templates and system prompts, column renaming,
one error format for train / generate / eval, and one config resolver for the CLI and the API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from grpo_fast.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
MATH_ROWS = [{"problem": f"{d}+1=", "solution": f"We add one: $\\boxed{{{d + 1}}}$."} for d in range(6)]
GSM8K_ROWS = [{"question": f"{d}+1=", "answer": f"{d} plus 1 is <<{d}+1={d + 1}>>{d + 1}.\n#### {d + 1}"}
              for d in range(6)]


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cmd(name):
    from grpo_fast.cli.eval import eval_cmd
    from grpo_fast.cli.generate import generate
    from grpo_fast.cli.train import train

    return {"train": train, "generate": generate, "eval": eval_cmd}[name]


def _args(name, model, data, out):
    extra = {"train": ["--out", str(out / "run"), "-q"], "generate": ["-o", str(out / "g.jsonl")],
             "eval": ["-o", str(out / "e.jsonl")]}[name]
    return ["--model", str(model), "--data", str(data), *extra]


def _ends_in_error_line(r, *needles):
    """A run that started prints its config first; the failure is then its last line."""
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output, r.output
    last = [x for x in r.output.splitlines() if x.strip()][-1]
    assert last.startswith("error: "), r.output
    for n in needles:
        assert n in last, (n, last)
    return last


def _one_error_line(r, *needles):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture
def demo_tree(tmp_path, tiny_checkpoint, monkeypatch):
    """runs/demo as examples/demo.sh leaves it: the model under runs/demo/train/checkpoint-150."""
    shutil.copytree(tiny_checkpoint, tmp_path / "runs" / "demo" / "train" / "checkpoint-150")
    # the run's own config.json (a GRPOConfig) does not make runs/demo/train a model folder
    (tmp_path / "runs" / "demo" / "train" / "config.json").write_text('{"toy": "next_digit", "max_steps": 150}')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if a command gets as far as loading a model."""
    import transformers

    def boom(*a, **k):
        raise AssertionError("a model was loaded before the cheap checks failed")

    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        monkeypatch.setattr(cls, "from_pretrained", boom)


# ---------------------------------------------------------------------------------------------
# the model path and the Hub


@pytest.mark.parametrize("name", ["train", "generate", "eval"])
@pytest.mark.parametrize(("model", "says"), [
    ("runs/demo/checkpoint-150", "no such model folder: runs/demo/checkpoint-150"),
    ("runs/demo", "runs/demo is not a model folder"),
    ("runs/demo/train", "runs/demo/train is not a model folder (its config.json is not a model's)"),
])
def test_a_wrong_model_path_names_the_checkpoint_in_one_line(demo_tree, no_model_loads, name, model, says):
    data = _write(demo_tree / "p.jsonl", GSM8K_ROWS)
    r = CliRunner().invoke(_cmd(name), _args(name, model, data, demo_tree / "out"))
    _one_error_line(r, says, "runs/demo/train/checkpoint-150")
    assert not (demo_tree / "out").exists()  # train made no output folder


@pytest.mark.parametrize("name", ["train", "generate", "eval"])
def test_a_hub_id_offline_fails_fast_in_one_line(tmp_path, monkeypatch, no_model_loads, name):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = _write(tmp_path / "p.jsonl", GSM8K_ROWS)
    t = time.monotonic()
    r = CliRunner().invoke(_cmd(name), _args(name, "nobody-grpo-test/no-such-model", data, tmp_path / "out"))
    _one_error_line(r, "nobody-grpo-test/no-such-model", "Hugging Face cache", "HF_HUB_OFFLINE")
    assert time.monotonic() - t < 10
    assert not (tmp_path / "out").exists()


def test_a_hub_id_without_network_fails_fast(monkeypatch):
    from grpo_fast.errors import ConfigError
    from grpo_fast.trainer import inputs

    monkeypatch.setattr(inputs, "hub_offline", lambda: False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    t = time.monotonic()
    with pytest.raises(ConfigError, match="cannot be reached") as exc:
        inputs.check_model("nobody-grpo-test/no-such-model")
    assert time.monotonic() - t < 10 and "\n" not in exc.value.message


def test_a_cached_hub_model_loads_offline(tmp_path, tiny_checkpoint):
    """A Hub id in the local cache is accepted with HF_HUB_OFFLINE=1 and loaded from it."""
    snap = tmp_path / "hub" / "models--grpo-test--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_checkpoint, snap)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("0" * 40)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "grpo_fast", "eval", "--model", "grpo-test/tiny", "--toy", "next_digit",
                        "--limit", "2", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.splitlines()[0])["prompts"] == 2


@pytest.mark.parametrize(("args", "says"), [
    (["--data", "missing.jsonl"], "no such file or directory: missing.jsonl"),
    (["--data", "p.jsonl", "--verifier", "mth"], "unknown verifier 'mth'"),
    (["--data", "p.jsonl", "--prompt-field", "problem"], "field problem"),
    (["--data", "p.jsonl", "--answer-field", "solution"], "--answer-field solution"),
])
def test_data_and_verifier_are_checked_before_the_model_loads(demo_tree, no_model_loads, args, says):
    _write(demo_tree / "p.jsonl", GSM8K_ROWS)
    r = CliRunner().invoke(_cmd("train"), ["--model", "runs/demo/train/checkpoint-150", *args, "--out", "new/run",
                                           "-q"])
    _one_error_line(r, says)
    assert not (demo_tree / "new").exists()


def test_a_run_failing_at_its_first_step_leaves_no_folder(tmp_path, tiny_checkpoint):
    """The folder a run made is gone again when the run failed before training a step, so the
    corrected command can be run as it is (no --overwrite needed)."""
    data = _write(tmp_path / "p.jsonl", [{"prompt": f"{d}="} for d in range(4)])
    args = ["--model", str(tiny_checkpoint), "--data", str(data), "--verifier", "toy_exact", "--max-steps", "1",
            "--max-completion-length", "2", "--prompts-per-step", "2", "-G", "2", "--out", str(tmp_path / "o"), "-q"]
    r = CliRunner().invoke(_cmd("train"), args)
    _ends_in_error_line(r, "first batch")
    assert not (tmp_path / "o").exists()


def test_help_examples_use_the_path_the_demo_writes():
    from grpo_fast.trainer.config import resolve_config

    for name in ("generate", "eval"):
        r = CliRunner().invoke(_cmd(name), ["--help"])
        assert "runs/demo/train/checkpoint-150" in r.output
        assert "runs/demo/checkpoint-150" not in r.output
    demo = (ROOT / "examples" / "demo.sh").read_text()
    assert "OUT=${OUT:-runs/demo}" in demo and 'grpo-fast train --toy next_digit --out "$OUT/train"' in demo
    cfg, _ = resolve_config(overrides={"toy": "next_digit"})
    assert cfg.max_steps == 150 and cfg.save_final  # so the last checkpoint is checkpoint-150


# ---------------------------------------------------------------------------------------------
# fields: MATH, GSM8K, renaming, missing golds


@pytest.mark.parametrize(("rows", "prompt", "answer", "right", "wrong"), [
    (MATH_ROWS, "problem", "solution", "so the answer is \\boxed{3}", "\\boxed{4}"),
    (GSM8K_ROWS, "question", "answer", "She has 3 left.\n#### 3", "The answer is 2"),
])
def test_math_and_gsm8k_fields_are_found_and_their_golds_verified(tmp_path, rows, prompt, answer, right, wrong):
    from grpo_fast.trainer.inputs import load_task_inputs
    from grpo_fast.verifiers.base import VerifyItem

    inp = load_task_inputs(data=str(_write(tmp_path / "d.jsonl", rows)), verifier="math")
    assert (inp.data.prompt_field, inp.data.answer_field) == (prompt, answer)
    assert inp.data.note.startswith("data: ") and f"'{prompt}'" in inp.data.note and "\n" not in inp.data.note
    assert inp.data.prompts()[:2] == ["0+1=", "1+1="]
    rec = inp.records[2]  # gold 3, stored as a whole solution
    with inp.verifier as v:
        ok, bad = v.verify_batch([VerifyItem("", right, rec), VerifyItem("", wrong, rec)])
    assert (ok.correct, ok.score, bad.correct, bad.score) == (True, 1.0, False, 0.0)


def test_columns_rename_fields_before_they_are_looked_up(tmp_path):
    from grpo_fast.trainer.prompt_data import load_prompt_data

    rows = [{"q": "1+1=", "gold_text": "#### 2", "id": 7}]
    d = load_prompt_data(_write(tmp_path / "d.jsonl", rows), columns={"q": "prompt", "gold_text": "answer"})
    assert d.records == [{"prompt": "1+1=", "answer": "#### 2", "id": 7}]
    assert (d.prompt_field, d.answer_field, d.note) == ("prompt", "answer", None)
    with pytest.raises(DataError, match="--column x=prompt") as exc:
        load_prompt_data(tmp_path / "d.jsonl", columns={"x": "prompt"})
    assert (exc.value.line, exc.value.field) == (1, "x")


def test_records_without_a_prompt_field_name_what_they_have(tmp_path):
    from grpo_fast.trainer.prompt_data import load_prompt_data

    with pytest.raises(DataError, match="has: text, label") as exc:
        load_prompt_data(_write(tmp_path / "d.jsonl", [{"text": "1+1=", "label": "2"}]))
    assert "--prompt-field" in exc.value.message and exc.value.line == 1


def test_train_with_math_fields_verifies_every_completion(tmp_path, tiny_checkpoint):
    """`--prompt-field problem` used to verify nothing (the gold was looked for in `answer`)."""
    data = _write(tmp_path / "math.jsonl", MATH_ROWS)
    r = CliRunner().invoke(_cmd("train"), [
        "--model", str(tiny_checkpoint), "--data", str(data), "--prompt-field", "problem", "--answer-field", "solution",
        "--max-steps", "1", "--max-completion-length", "2", "--prompts-per-step", "2", "-G", "2",
        "--out", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 0, r.output
    line = json.loads((tmp_path / "o" / "metrics.jsonl").read_text().splitlines()[0])
    assert line["verification_rate"] == 1.0
    cfg = json.loads((tmp_path / "o" / "config.json").read_text())
    assert (cfg["prompt_field"], cfg["answer_field"]) == ("problem", "solution")


def test_missing_gold_stops_the_run_at_the_first_batch(tmp_path, tiny_checkpoint):
    data = _write(tmp_path / "p.jsonl", [{"problem": f"{d}+1=", "result": str(d + 1)} for d in range(4)])
    r = CliRunner().invoke(_cmd("train"), [
        "--model", str(tiny_checkpoint), "--data", str(data), "--max-steps", "3", "--max-completion-length", "2",
        "--prompts-per-step", "2", "-G", "2", "--out", str(tmp_path / "o"), "-q"])
    line = _ends_in_error_line(r, "first batch", "'answer'", "--answer-field")
    assert "problem, result" in line


def test_trainer_step_raises_on_a_batch_without_golds(tmp_path):
    """The Python API stops too: `GRPOTrainer.step` raises a DataError naming the field."""
    from grpo_fast.trainer.config import GRPOConfig
    from grpo_fast.trainer.loop import GRPOTrainer
    from grpo_fast.trainer.run import resolve_verifier
    from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    cfg = GRPOConfig(prompts_per_step=2, num_generations=2, max_completion_length=2, use_chat_template=False,
                     generation_chunks=1)
    t = GRPOTrainer(cfg, build_tiny_model(tok), tok, [{"prompt": "1="}, {"prompt": "2="}],
                    resolve_verifier("math", answer_field="gold"))
    with pytest.raises(DataError, match="'gold'") as exc:
        t.step()
    assert exc.value.field == "gold" and t.step_count == 0
    t.close()


# ---------------------------------------------------------------------------------------------
# prompt templates and system prompts


def test_template_and_system_prompt_come_before_the_chat_template():
    from grpo_fast.sampler.base import encode_prompts
    from grpo_fast.trainer.local_model import build_tokenizer
    from grpo_fast.trainer.prompt_data import PromptFormat

    tok = build_tokenizer(vocab_size=200)
    fmt = PromptFormat("question", "Think first.", "{question}\nPut the final answer in \\boxed{}. {{x}}")
    msgs = fmt.build({"question": "1+1?"})
    assert msgs == [{"role": "system", "content": "Think first."},
                    {"role": "user", "content": "1+1?\nPut the final answer in \\boxed{}. {x}"}]
    texts, _ = encode_prompts(tok, [msgs])
    assert texts[0] == ("<|im_start|>system\nThink first.<|im_end|>\n<|im_start|>user\n1+1?\nPut the final answer "
                        "in \\boxed{}. {x}<|im_end|>\n<|im_start|>assistant\n")
    # no chat template: the system prompt is joined with a newline; chat messages keep one system turn
    assert PromptFormat("q", "S", None, use_chat_template=False).build({"q": "1+1?"}) == "S\n1+1?"
    chat = [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}]
    assert PromptFormat("m", "new").build({"m": chat}) == [{"role": "system", "content": "new"}, chat[1]]
    # {prompt} is the prompt field, whatever it is called
    assert PromptFormat("problem", None, "Q: {prompt}").build({"problem": "2+2"}) == "Q: 2+2"


def test_a_template_field_the_records_lack_is_an_error_naming_it(tmp_path, no_model_loads):
    data = _write(tmp_path / "p.jsonl", GSM8K_ROWS)
    for name in ("train", "generate", "eval"):
        r = CliRunner().invoke(_cmd(name), [*_args(name, "nobody/x", data, tmp_path / "out"),
                                            "--prompt-template", "{problem}\\nAnswer:"])
        _one_error_line(r, "{problem}", "has: question, answer", f"file {data}, line 1, field problem")


def test_train_print_config_takes_the_data_flags(tmp_path):
    r = CliRunner().invoke(_cmd("train"), [
        "--model", "m", "--data", "d.jsonl", "--prompt-field", "question", "--answer-field", "answer",
        "--column", "q=question", "--system-prompt", "Be brief.", "--no-chat-template",
        "--prompt-template", "{question}\\nPut the final answer in \\\\boxed{}.", "--print-config"])
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert cfg["prompt_template"] == "{question}\nPut the final answer in \\boxed{}."
    assert (cfg["prompt_field"], cfg["answer_field"], cfg["columns"]) == ("question", "answer", {"q": "question"})
    assert (cfg["system_prompt"], cfg["use_chat_template"]) == ("Be brief.", False)


def test_generate_and_eval_apply_the_template(tmp_path, tiny_checkpoint):
    """The template reaches the sampler in generate and eval (checked on the prompt the model saw)."""
    from grpo_fast.sampler.transformers_backend import TransformersSampler

    seen = []
    orig = TransformersSampler.generate

    def spy(self, prompts, n, **kw):
        seen.extend(prompts)
        return orig(self, prompts, n, **kw)

    data = _write(tmp_path / "p.jsonl", GSM8K_ROWS[:2])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TransformersSampler, "generate", spy)
        for name in ("generate", "eval"):
            r = CliRunner().invoke(_cmd(name), [*_args(name, tiny_checkpoint, data, tmp_path),
                                                "--prompt-template", "{question} ", "--max-new-tokens", "2"])
            assert r.exit_code == 0, r.output
    assert seen == ["0+1= ", "1+1= "] * 2
    # records without a `prompt` get the one the model was given, so `grpo-fast verify` reads them
    groups = [json.loads(x) for x in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert [g["prompt"] for g in groups] == ["0+1= ", "1+1= "] and groups[0]["question"] == "0+1="
    from grpo_fast.cli.verify import verify

    r = CliRunner().invoke(verify, [str(tmp_path / "g.jsonl"), "-o", str(tmp_path / "v.jsonl"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["verification_rate"] == 1.0
    # eval read the gold from GSM8K's `answer` (`#### 1`): every completion got a verdict
    recs = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert all(resp["reason"] != "no_gold" for rec in recs for resp in rec["responses"])


def test_cli_text_reads_newlines_and_keeps_latex():
    from grpo_fast.cli._common import cli_text

    assert cli_text("{q}\\nPut it in \\boxed{}.") == "{q}\nPut it in \\boxed{}."
    assert cli_text("\\\\boxed{} \\frac") == "\\boxed{} \\frac"
    assert cli_text(None) is None


# ---------------------------------------------------------------------------------------------
# one error format, one config resolver, one verifier builder, one toy-or-data choice


def test_train_generate_and_eval_report_bad_data_the_same_way(tmp_path, no_model_loads):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "1=", "answer": "2"}\n{not json\n')
    lines = set()
    for name in ("train", "generate", "eval"):
        r = CliRunner().invoke(_cmd(name), _args(name, "nobody/x", data, tmp_path / "out"))
        lines.add(_one_error_line(r, "invalid JSON", f"(file {data}, line 2)"))
    assert len(lines) == 1


def test_option_errors_are_one_error_line():
    for name in ("train", "generate", "eval"):
        r = CliRunner().invoke(_cmd(name), ["--no-such-flag"])
        _one_error_line(r, "--no-such-flag", "--help")


def test_one_resolver_for_the_cli_print_config_and_the_api(tmp_path, monkeypatch):
    from grpo_fast.trainer import config

    f = tmp_path / "c.toml"
    f.write_text('preset = "dapo"\ntoy = "digit_sum"\nlearning_rate = 1e-3\n')
    calls = []
    real = config.resolve_config
    monkeypatch.setattr(config, "resolve_config", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    r = CliRunner().invoke(_cmd("train"), ["--config", str(f), "--max-steps", "7", "--set", "beta=0.5",
                                           "--print-config"])
    assert r.exit_code == 0, r.output
    assert len(calls) == 1
    cfg, explicit = real(f, overrides={"max_steps": 7, "beta": 0.5})
    assert json.loads(r.stdout) == cfg.to_dict()
    # file and flags beat the toy's defaults, the preset beats them too, the rest are the toy's
    assert (cfg.learning_rate, cfg.max_steps, cfg.beta, cfg.epsilon_high) == (1e-3, 7, 0.5, 0.28)
    assert (cfg.verifier, cfg.max_completion_length, cfg.use_chat_template) == ("toy_exact", 3, False)
    assert {"learning_rate", "max_steps", "beta", "toy", "epsilon_high"} <= explicit
    # toy defaults applied twice change nothing (run_training applies them again)
    assert config.toy_defaults(cfg, explicit) == cfg


def test_resolve_verifier_goes_through_the_registry_builder(monkeypatch):
    from grpo_fast.trainer.run import resolve_verifier
    from grpo_fast.verifiers import registry

    calls = []
    real = registry.build_verifier
    monkeypatch.setattr(registry, "build_verifier", lambda spec, **o: calls.append((spec, o)) or real(spec, **o))
    v = resolve_verifier("math=0.9,format=0.1", answer_field="solution")
    assert calls == [("math=0.9,format=0.1", {"answer_field": "solution"})]
    assert v.parts[0][0].answer_field == "solution"
    v.close()


def test_train_generate_and_eval_share_the_toy_or_data_choice(tmp_path, tiny_checkpoint, monkeypatch):
    from grpo_fast.trainer import inputs, run

    calls = []
    real = inputs.load_task_inputs
    monkeypatch.setattr(inputs, "load_task_inputs", lambda **k: calls.append(k) or real(**k))
    monkeypatch.setattr(run, "_loop", lambda *a, **k: None)  # no steps: only the choice matters here
    for name, args in (("generate", ["-o", str(tmp_path / "g.jsonl"), "--max-new-tokens", "1", "--limit", "1"]),
                       ("eval", ["--max-new-tokens", "1", "--limit", "1"]),
                       ("train", ["--max-steps", "1", "--out", str(tmp_path / "t"), "-q", "--set", "eval_prompts=0"])):
        r = CliRunner().invoke(_cmd(name), ["--model", str(tiny_checkpoint), "--toy", "next_digit", *args])
        assert r.exit_code == 0, r.output
    assert [c["toy"] for c in calls] == ["next_digit"] * 3


def test_error_line_is_one_line_with_the_location_once():
    import click

    from grpo_fast.cli._common import error_line
    from grpo_fast.errors import GrpoError

    assert click.unstyle(error_line(GrpoError("bad", file="f.jsonl", line=2, field="x"))) == \
        "error: bad (file f.jsonl, line 2, field x)"
    # the Rust reader's messages carry the location already
    assert click.unstyle(error_line(GrpoError("f.jsonl:2: x: bad", file="f.jsonl", line=2, field="x"))) == \
        "error: f.jsonl:2: x: bad"
    assert click.unstyle(error_line(GrpoError("two\nlines"))) == "error: two lines"


@pytest.mark.parametrize(("name", "fields", "golds"), [
    ("math_problems.jsonl", ("problem", "solution"), ["11", "\\frac{5}{6}", "4", "24", "6", "2", "5\\sqrt{2}", "12"]),
    ("gsm8k_questions.jsonl", ("question", "answer"), ["42", "260", "26", "7"]),
])
def test_the_example_math_files_as_docs_training_md_uses_them(name, fields, golds):
    """docs/training.md "Train on your own math data": the fields are picked, the golds extracted."""
    from grpo_fast import _native
    from grpo_fast.trainer.inputs import load_task_inputs

    inp = load_task_inputs(data=str(ROOT / "examples" / name), verifier="math")
    assert (inp.data.prompt_field, inp.data.answer_field) == fields
    stored = [r[fields[1]] for r in inp.records]
    assert list(_native.math_check_batch(stored, ["x"] * len(stored), "auto")[3]) == golds
    inp.verifier.close()
