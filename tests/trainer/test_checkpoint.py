"""Checkpoints: HF-format model + tokenizer + optimiser + RNG + trainer state, and `--resume`
continuing bit-for-bit on CPU."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from grpo_fast.trainer.checkpoint import latest_checkpoint
from grpo_fast.trainer.config import GRPOConfig
from grpo_fast.trainer.run import run_training

TIMING = ("step_time_s", "generation_s", "reward_wait_s", "update_s", "tokens_per_s")


def _cfg(out, **kw):
    base = dict(toy="next_digit", output_dir=str(out), seed=3, max_steps=6, prompts_per_step=8,
                num_generations=4, beta=0.05, num_iterations=2, lr_scheduler_type="cosine", warmup_steps=2,
                generation_chunks=2)
    base.update(kw)
    return GRPOConfig(**base)


def _metrics(path):
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in path.read_text().splitlines()]


def test_checkpoint_contents(tmp_path):
    run_training(_cfg(tmp_path / "a", max_steps=2), live=False, explicit={"max_steps", "prompts_per_step",
                                                                           "num_generations"})
    ck = latest_checkpoint(tmp_path / "a")
    assert ck is not None and ck.name == "checkpoint-2"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "optimizer.pt", "rng_state_0.pt",
                 "trainer_state.json", "ref_model.safetensors"):
        assert (ck / name).exists(), name
    # trainer_state.json (written last) records every other file's size, and the small ones' sha256
    manifest = json.loads((ck / "trainer_state.json").read_text())["files"]
    assert sorted(manifest) == sorted(p.name for p in ck.iterdir() if p.name != "trainer_state.json")
    assert all(manifest[n]["size"] == (ck / n).stat().st_size for n in manifest)
    assert "sha256" in manifest["optimizer.pt"] and "sha256" in manifest["rng_state_0.pt"]
    assert not list((tmp_path / "a").glob(".*"))  # no temporaries left behind
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(ck)
    tok = AutoTokenizer.from_pretrained(ck)
    assert tok.decode(tok("3=")["input_ids"], skip_special_tokens=True) == "3="
    assert sum(p.numel() for p in model.parameters()) > 50_000


def test_resume_is_bit_for_bit(tmp_path):
    explicit = {"max_steps", "prompts_per_step", "num_generations", "seed"}
    # One straight run of 6 steps with checkpoints every 3 ...
    run_training(_cfg(tmp_path / "straight", save_steps=3), live=False, explicit=explicit)
    # ... and a run resumed from the step-3 checkpoint into a fresh directory.
    (tmp_path / "resumed").mkdir()
    run_training(_cfg(tmp_path / "resumed"), resume=str(tmp_path / "straight" / "checkpoint-3"), live=False,
                 explicit=explicit)
    a = load_file(str(tmp_path / "straight" / "checkpoint-6" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoint-6" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ref_a = load_file(str(tmp_path / "straight" / "checkpoint-6" / "ref_model.safetensors"))
    ref_b = load_file(str(tmp_path / "resumed" / "checkpoint-6" / "ref_model.safetensors"))
    assert ref_a.keys() == ref_b.keys() and all(torch.equal(ref_a[k], ref_b[k]) for k in ref_a)
    ma = _metrics(tmp_path / "straight" / "metrics.jsonl")[3:]
    mb = _metrics(tmp_path / "resumed" / "metrics.jsonl")
    assert [m["step"] for m in mb] == [4, 5, 6]
    assert ma == mb
    # The weights moved during steps 4-6 (the comparison is not between two untouched models).
    c = load_file(str(tmp_path / "straight" / "checkpoint-3" / "model.safetensors"))
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_resume_latest_continues_in_place(tmp_path):
    explicit = {"max_steps", "prompts_per_step", "num_generations"}
    run_training(_cfg(tmp_path / "r", max_steps=2), live=False, explicit=explicit)
    run_training(_cfg(tmp_path / "r", max_steps=4), resume="latest", live=False, explicit=explicit)
    steps = [m["step"] for m in _metrics(tmp_path / "r" / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4]
    assert latest_checkpoint(tmp_path / "r").name == "checkpoint-4"
