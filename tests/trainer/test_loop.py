"""The online loop's pieces on the real tiny model and real verifiers: no-verdict handling, dynamic
sampling, zero-std skipping, verification in worker threads, num_iterations, offline training,
metrics gates and the `train` command."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence

import pytest
import torch
from click.testing import CliRunner

from grpo_fast.metrics import quality_warnings
from grpo_fast.sampler.base import Completion, CompletionGroup
from grpo_fast.trainer.config import GRPOConfig
from grpo_fast.trainer.loop import GRPOTrainer, PromptStream, ScoredGroup
from grpo_fast.trainer.toy_tasks import ToyExactVerifier, build_char_tokenizer, build_tiny_model, get_toy_task
from grpo_fast.verifiers.base import Verdict, VerifyItem


class AbstainOnDigit(ToyExactVerifier):
    """The toy verifier, but "no verdict" for responses starting with a given digit, and it records
    which thread each batch ran on."""

    def __init__(self, digit: str = "7"):
        self.digit = digit
        self.threads: list[str] = []
        self.batches = 0

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        self.threads.append(threading.current_thread().name)
        self.batches += 1
        out = super().verify_batch(items)
        return [Verdict(None, None, "abstain") if it.response.startswith(self.digit) else v
                for it, v in zip(items, out, strict=True)]


def make_trainer(verifier=None, seed=0, model=None, **kw):
    torch.manual_seed(seed)
    tok = build_char_tokenizer()
    base = dict(toy="next_digit", learning_rate=2e-3, prompts_per_step=8, num_generations=8,
                max_completion_length=2, use_chat_template=False, max_steps=10, seed=seed)
    base.update(kw)
    cfg = GRPOConfig(**base)
    task = get_toy_task("next_digit")
    model = build_tiny_model(tok, seed=seed) if model is None else model
    return GRPOTrainer(cfg, model, tok, task.records, verifier or ToyExactVerifier())


def _hand_group(tok, prompt: str, answers: list[str], scores: list[float | None]) -> ScoredGroup:
    pid = tok(prompt)["input_ids"]
    comps = [Completion(a, tok(a, add_special_tokens=False)["input_ids"] + [tok.eos_token_id], [0.0] * (len(a) + 1),
                        "stop") for a in answers]
    g = CompletionGroup(prompt, prompt, pid, comps, {"answer": "?"})
    return ScoredGroup(g, [math.nan if s is None else s for s in scores],
                       [Verdict(s, None, "hand") for s in scores])


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_no_verdict_completions_are_excluded_and_counted(loss_type):
    """A completion without a verdict changes nothing: the update equals the update on the group with
    that completion removed (it is left out of the group statistics and of every normaliser)."""
    # No gradient clipping, and gradients compared (not only weights): Adam's first step is ~lr * sign(g),
    # which would hide a rescaled gradient.
    a = make_trainer(loss_type=loss_type, max_grad_norm=0.0)
    b = make_trainer(loss_type=loss_type, max_grad_norm=0.0)
    tok = a.tokenizer
    with_none = [_hand_group(tok, "3=", ["4", "5", "7", "4"], [1.0, 0.0, None, 0.0])]
    without = [_hand_group(tok, "3=", ["4", "5", "4"], [1.0, 0.0, 0.0])]
    ma = a.train_on_groups(with_none)
    b.train_on_groups(without)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-8, rtol=1e-5)
        assert torch.allclose(p, q, atol=1e-7)
    assert ma["no_verdict"] == 1 and ma["verification_rate"] == pytest.approx(0.75)
    assert any("verification rate" in w for w in quality_warnings(ma))


def test_abstaining_verifier_online_step_reports_rate():
    ver = AbstainOnDigit("7")
    t = make_trainer(ver)
    m = t.step()
    assert 0.0 <= m["verification_rate"] <= 1.0
    assert m["no_verdict"] == round((1 - m["verification_rate"]) * 64)


def test_verification_runs_in_worker_threads_beside_generation():
    ver = AbstainOnDigit("x")
    t = make_trainer(ver, generation_chunks=4, verifier_workers=2)
    m = t.step()
    assert ver.batches == 4  # 8 prompts in 4 chunks: each chunk verified on its own
    assert all(name.startswith("grpo-verify") for name in ver.threads)
    assert m["reward_wait_s"] >= 0.0 and m["generation_s"] > 0.0
    t.close()


def test_zero_std_groups_skipped_equals_training_on_the_rest():
    tok = build_char_tokenizer()
    mixed = [_hand_group(tok, "3=", ["4", "5"], [1.0, 0.0]), _hand_group(tok, "5=", ["1", "2"], [0.0, 0.0])]
    only = mixed[:1]
    a = make_trainer(skip_zero_std_groups=True, loss_type="grpo", max_grad_norm=0.0)
    b = make_trainer(loss_type="grpo", max_grad_norm=0.0)
    ma = a.train_on_groups(mixed)
    b.train_on_groups(only)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-8, rtol=1e-5)
    assert ma["frac_reward_zero_std"] == 0.5
    # Kept (not skipped), the zero-std group's rows dilute the per-sequence mean: half the gradient.
    # (Weights are not compared: Adam's first step is ~lr * sign(g), blind to that scale.)
    mc = make_trainer(loss_type="grpo").train_on_groups(mixed)
    mb = make_trainer(loss_type="grpo").train_on_groups(only)
    assert mc["grad_norm"] == pytest.approx(mb["grad_norm"] / 2, rel=1e-4) and mb["grad_norm"] > 0


def test_a_step_with_nothing_to_learn_does_not_touch_the_weights():
    """All groups zero-std and skipped: no optimiser step (Adam momentum would otherwise move weights)."""
    tok = build_char_tokenizer()
    t = make_trainer(skip_zero_std_groups=True)
    t.train_on_groups([_hand_group(tok, "3=", ["4", "5"], [1.0, 0.0])])  # builds Adam momentum
    before = _params(t.model)
    m = t.train_on_groups([_hand_group(tok, "3=", ["5", "5"], [0.0, 0.0])])
    assert m["skipped_update"] == 1.0 and math.isnan(m["entropy"])
    assert all(torch.equal(p, q) for p, q in zip(before, _params(t.model), strict=True))


def test_dynamic_sampling_keeps_only_groups_with_signal():
    t = make_trainer(dynamic_sampling=True, max_sampling_rounds=6, prompts_per_step=4)
    kept, sampled, rounds = t.collect({})
    assert all(g.std > 0 for g in kept) and len(kept) <= 4
    # At random init most groups are all-wrong, so refilling took more than one round.
    assert rounds > 1
    assert len(sampled) == 4 * rounds


def test_num_iterations_reuses_the_batch_against_stored_old_logprobs():
    """Second and later updates are off-policy: the ratio moves away from 1 and tokens get clipped."""
    tok = build_char_tokenizer()
    groups = [_hand_group(tok, f"{d}=", [str((d + 1) % 10), str(d), str((d + 5) % 10), "12"], [1.0, 0.0, 0.0, 0.0])
              for d in range(6)]
    m = make_trainer(num_iterations=4, learning_rate=3e-2, epsilon=0.05).train_on_groups(groups)
    assert m["clip_ratio/region_mean"] > 0
    m1 = make_trainer(num_iterations=1, learning_rate=3e-2, epsilon=0.05).train_on_groups(groups)
    assert m1["clip_ratio/region_mean"] == 0  # on-policy single update: the ratio is exactly 1


def test_reference_model_only_with_kl_and_refreshed():
    assert make_trainer(beta=0.0).ref_model is None
    t = make_trainer(beta=0.1, ref_model_sync_steps=2, learning_rate=1e-2)
    groups = [_hand_group(t.tokenizer, "3=", ["4", "5", "6"], [1.0, 0.0, 0.0])]
    t.train_on_groups(groups)
    m = t.train_on_groups(groups)
    assert m["kl"] > 0  # the policy had moved away from the reference during step 2
    # After step 2 the reference was synced: it equals the policy.
    for p, q in zip(t.model.parameters(), t.ref_model.parameters(), strict=True):
        assert torch.equal(p, q)
    t.train_on_groups(groups)
    assert any(not torch.equal(p, q) for p, q in zip(t.model.parameters(), t.ref_model.parameters(), strict=True))


def test_prompt_stream_is_a_permutation_per_epoch_and_shards_by_rank():
    recs = [{"i": i} for i in range(10)]
    s = PromptStream(recs, seed=1)
    first = [r["i"] for r in s.take(10)]
    assert sorted(first) == list(range(10))
    r0 = PromptStream(recs, seed=1, rank=0, world=2).take(5)
    r1 = PromptStream(recs, seed=1, rank=1, world=2).take(5)
    assert sorted(x["i"] for x in r0 + r1) == list(range(10))


def test_offline_training_raises_the_rewarded_answer(tmp_path):
    from grpo_fast.trainer.run import run_training

    tok = build_char_tokenizer()
    build_tiny_model(tok, seed=0).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    data = tmp_path / "verified.jsonl"
    with data.open("w") as f:
        for d in range(10):
            right = str((d + 1) % 10)
            wrong = [str((d + k) % 10) for k in (2, 3, 5)]
            resp = [{"text": right, "score": 1.0}] + [{"text": w, "score": 0.0} for w in wrong]
            resp.append({"text": "9", "score": None})  # no verdict: excluded
            f.write(json.dumps({"prompt": f"{d}=", "answer": right, "responses": resp}) + "\n")
    cfg = GRPOConfig(model=str(tmp_path / "model"), data=str(data), offline=True, output_dir=str(tmp_path / "out"),
                     learning_rate=3e-3, max_steps=60, prompts_per_step=10, use_chat_template=False,
                     max_completion_length=2)
    res = run_training(cfg, live=False)
    assert len(res.history) == 60 and res.history[0]["no_verdict"] == 10
    # Greedy answers from the saved weights: the offline signal taught the mapping.
    from transformers import AutoModelForCausalLM

    t = make_trainer(model=AutoModelForCausalLM.from_pretrained(res.final_checkpoint))
    assert t.greedy_accuracy(get_toy_task("next_digit").records) >= 0.8
    before = make_trainer()
    assert before.greedy_accuracy(get_toy_task("next_digit").records) <= 0.2


@pytest.mark.parametrize(("metrics", "expect"), [
    ({"kl": 0.2, "advantage_std": 1.0, "verification_rate": 1.0}, ["KL"]),
    ({"kl": 0.01, "advantage_std": 0.3, "verification_rate": 1.0}, ["advantage"]),
    ({"kl": 0.01, "advantage_std": 1.7, "verification_rate": 1.0}, ["advantage"]),
    ({"kl": 0.01, "advantage_std": 0.0, "verification_rate": 1.0}, []),  # no signal at all is not a scale problem
    ({"kl": 0.01, "advantage_std": 0.9, "verification_rate": 0.7}, ["verification"]),
    ({"kl": 0.01, "advantage_std": 0.9, "verification_rate": 0.95}, []),
])
def test_quality_gates(metrics, expect):
    assert [w.split(" ")[0] for w in quality_warnings(metrics)] == expect


def test_advantage_gate_is_off_for_unnormalised_estimators():
    m = {"kl": 0.0, "advantage_std": 0.3, "verification_rate": 1.0}
    assert quality_warnings(m, check_adv_std=False) == []
    assert quality_warnings({**m, "kl": 0.5}, kl_max=None, check_adv_std=False) == []


def test_train_command_runs_the_toy_demo_and_prints_json(tmp_path):
    from grpo_fast.cli.train import train

    r = CliRunner().invoke(train, ["--toy", "next_digit", "--max-steps", "3", "--out", str(tmp_path / "d"),
                                   "--json", "-q", "--set", "warmup_steps=1"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["steps"] == 3 and (tmp_path / "d" / "curves.png").exists()
    cfg = json.loads((tmp_path / "d" / "config.json").read_text())
    assert cfg["warmup_steps"] == 1 and cfg["max_completion_length"] == 2


def test_train_command_preset_and_override_in_print_config():
    from grpo_fast.cli.train import train

    r = CliRunner().invoke(train, ["--preset", "deepseek-r1", "--lr", "1e-5", "--print-config"])
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert cfg["epsilon"] == 10.0 and cfg["learning_rate"] == 1e-5 and cfg["num_generations"] == 16


def test_train_command_reports_bad_config_without_traceback():
    from grpo_fast.cli.train import train

    r = CliRunner().invoke(train, ["--toy", "next_digit", "--set", "loss_type=mean"])
    assert r.exit_code == 2
    assert "loss_type" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(("toy", "lr", "steps"), [("next_digit", 2e-3, 150), ("digit_sum", 5e-4, 1200)])
def test_toy_defaults_apply_unless_set(toy, lr, steps):
    from grpo_fast.cli.train import train

    r = CliRunner().invoke(train, ["--toy", toy, "--print-config"])
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert (cfg["learning_rate"], cfg["max_steps"], cfg["beta"], cfg["use_chat_template"]) == (lr, steps, 0.02, False)
    r = CliRunner().invoke(train, ["--toy", toy, "--lr", "1e-4", "--beta", "0", "--print-config"])
    cfg = json.loads(r.stdout)
    assert (cfg["learning_rate"], cfg["beta"]) == (1e-4, 0.0)
