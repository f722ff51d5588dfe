"""The shipped training examples run as documented (a few steps each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grpo_fast.cli.train import train
from grpo_fast.trainer.config import GRPOConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _ok(args):
    r = CliRunner().invoke(train, [*args, "-q", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_toy_config_file_is_the_demo():
    cfg = GRPOConfig.load(EXAMPLES / "train_toy.toml")
    assert (cfg.toy, cfg.max_steps, cfg.beta, cfg.gate_kl_max) == ("next_digit", 150, 0.02, None)


def test_toy_config_file_runs(tmp_path):
    out = _ok(["--config", str(EXAMPLES / "train_toy.toml"), "--max-steps", "2", "--out", str(tmp_path / "a")])
    assert out["steps"] == 2


def test_online_training_from_a_prompts_file(tmp_path, tiny_checkpoint):
    out = _ok(["--model", str(tiny_checkpoint), "--data", str(EXAMPLES / "toy_prompts.jsonl"), "--verifier",
               "toy_exact", "--max-steps", "2", "--max-completion-length", "2", "--out", str(tmp_path / "b")])
    assert out["steps"] == 2
    line = json.loads((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()[0])
    assert line["verification_rate"] == 1.0


def test_offline_training_from_scored_groups(tmp_path, tiny_checkpoint):
    out = _ok(["--model", str(tiny_checkpoint), "--data", str(EXAMPLES / "toy_train_verified.jsonl"), "--offline",
               "--max-steps", "2", "--max-completion-length", "2", "--out", str(tmp_path / "c")])
    line = json.loads((tmp_path / "c" / "metrics.jsonl").read_text().splitlines()[0])
    assert out["steps"] == 2 and line["no_verdict"] > 0


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("train_*.toml")))
def test_every_training_config_example_loads(name):
    GRPOConfig.load(EXAMPLES / name)


def test_online_training_with_chat_messages_and_a_chat_template(tmp_path):
    """Prompts given as chat messages go through the tokenizer's chat template during training."""
    from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}={% endif %}"
    build_tiny_model(tok).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": str(d)}], "answer": str(d + 1)}) + "\n"
                            for d in range(9)))
    out = _ok(["--model", str(tmp_path / "m"), "--data", str(data), "--prompt-field", "messages", "--verifier",
               "toy_exact", "--max-steps", "2", "--max-completion-length", "2", "--out", str(tmp_path / "o")])
    assert out["steps"] == 2
    # The template survived the save and is what the sampler feeds the model.
    from transformers import AutoTokenizer

    from grpo_fast.sampler import format_prompt

    loaded = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert format_prompt(loaded, [{"role": "user", "content": "3"}]) == "3="
