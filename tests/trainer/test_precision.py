"""Precision that really updates: float32 master weights under bf16 autocast (on CPU here), every
forward under the same autocast (step 1's ratio is exactly 1 and its KL exactly 0), and samplers
that draw from exactly the distribution the trainer scores, whatever generation_config.json says."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from grpo_fast.sampler.transformers_backend import TransformersSampler
from grpo_fast.trainer.config import GRPOConfig
from grpo_fast.trainer.logprobs import sequence_logprobs
from grpo_fast.trainer.loop import GRPOTrainer
from grpo_fast.trainer.toy_tasks import ToyExactVerifier, build_char_tokenizer, build_tiny_model, get_toy_task
from grpo_fast.verifiers.base import Verdict, Verifier


class LengthVerifier(Verifier):
    """Reward grows with the answer's length: every group of a random-init toy model has variance."""

    name = "length"

    def verify_batch(self, items):
        return [Verdict(float(len(it.response)) / 3.0, None, "length") for it in items]


def _trainer(model=None, verifier=None, **kw):
    torch.manual_seed(0)
    tok = build_char_tokenizer()
    base = dict(toy="next_digit", learning_rate=1e-6, prompts_per_step=8, num_generations=8,
                max_completion_length=3, use_chat_template=False, bf16=True, beta=0.04, max_grad_norm=0.0)
    base.update(kw)
    model = build_tiny_model(tok, seed=0) if model is None else model
    return GRPOTrainer(GRPOConfig(**base), model, tok, get_toy_task("next_digit").records,
                       verifier or LengthVerifier())


def _moved_fraction(before, model):
    moved = total = 0
    for b, p in zip(before, model.parameters(), strict=True):
        moved += int((p.detach() != b).sum())
        total += b.numel()
    return moved / total


def test_bf16_autocast_over_float32_weights_moves_every_weight_at_lr_1e6():
    t = _trainer()
    assert all(p.dtype == torch.float32 for p in t.model.parameters())
    before = [p.detach().clone() for p in t.model.parameters()]
    for _ in range(5):
        m = t.step()
        assert m["grad_norm"] > 0
    # Every weight tensor moved, and all but a handful of elements (whose bf16-computed gradient
    # summed to exactly 0 in every step: 12 of 133K here).
    assert all(not torch.equal(b, p.detach()) for b, p in zip(before, t.model.parameters(), strict=True))
    assert _moved_fraction(before, t.model) > 0.999
    assert all(p.dtype == torch.float32 for p in t.model.parameters())


def test_bf16_weights_would_lose_the_same_updates():
    """The control for the test above: the same steps on weights stored in bf16 (what loading the
    model in bf16 did) leave most of them exactly where they were."""
    tok = build_char_tokenizer()
    t = _trainer(model=build_tiny_model(tok, seed=0).to(torch.bfloat16))
    before = [p.detach().clone() for p in t.model.parameters()]
    for _ in range(5):
        t.step()
    assert _moved_fraction(before, t.model) < 0.5


def test_step_one_ratio_is_exactly_one_and_kl_exactly_zero_under_bf16(monkeypatch):
    """The old-policy pass (no grad, num_iterations > 1) and the reference pass run under the same
    autocast as the training forward: at step 1 all three give bit-identical log-probs."""
    import grpo_fast.trainer.loop as loop

    seen = []
    real = loop.grpo_loss

    def spy(logps, old, *a, **kw):
        seen.append((logps.detach().clone(), old.clone(), kw["ref_logps"].clone()))
        return real(logps, old, *a, **kw)

    monkeypatch.setattr(loop, "grpo_loss", spy)
    t = _trainer(num_iterations=2, learning_rate=0.0)
    m = t.step()
    logps, old, ref = seen[0]
    assert torch.equal(logps, old) and torch.equal(logps, ref)
    assert m["kl"] == 0.0 and m["clip_ratio/region_mean"] == 0.0


def test_zero_advantages_control_has_zero_gradient_under_bf16():
    t = _trainer(zero_advantages=True, learning_rate=1e-3)
    before = [p.detach().clone() for p in t.model.parameters()]
    for _ in range(3):
        assert t.step()["grad_norm"] == 0.0
    assert _moved_fraction(before, t.model) == 0.0


def test_bf16_and_float32_agree_on_what_is_learned():
    """bf16 autocast is a compute precision, not another objective: the reward-driven direction of
    the first update agrees with float32's (cosine of the weight deltas)."""
    deltas = []
    for bf16 in (False, True):
        t = _trainer(bf16=bf16, learning_rate=1e-4)
        before = [p.detach().clone() for p in t.model.parameters()]
        t.step()
        deltas.append(torch.cat([(p.detach() - b).flatten() for b, p in zip(before, t.model.parameters(),
                                                                              strict=True)]))
    cos = torch.nn.functional.cosine_similarity(deltas[0], deltas[1], dim=0)
    assert cos > 0.9


# ------------------------------------------------------------------------------- the sampled distribution
@pytest.fixture(scope="module")
def checkpoint_with_sampling_defaults(tmp_path_factory):
    """A model folder whose generation_config.json carries Qwen2.5-Instruct's sampling defaults."""
    d = tmp_path_factory.mktemp("gencfg")
    tok = build_char_tokenizer()
    build_tiny_model(tok, seed=2).save_pretrained(d)
    tok.save_pretrained(d)
    f = d / "generation_config.json"
    cfg = json.loads(f.read_text())
    cfg.update({"repetition_penalty": 1.1, "top_k": 20, "top_p": 0.8, "temperature": 0.7, "do_sample": True,
                "no_repeat_ngram_size": 2})
    f.write_text(json.dumps(cfg))
    return d


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.3, 0, 1.0)])
def test_sampler_ignores_the_checkpoints_generation_config(checkpoint_with_sampling_defaults, temperature,
                                                           top_k, top_p):
    """The sampler's log-probs of what it drew are exactly log_softmax(logits / T) of the model: a
    repetition penalty, no-repeat n-grams or top-k/top-p from generation_config.json would show up
    as a difference (the penalty alone moves seen ids by up to 0.19 nats)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = checkpoint_with_sampling_defaults
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(d)
    assert model.generation_config.repetition_penalty == 1.1  # the file really carries it
    torch.manual_seed(0)
    s = TransformersSampler(model, tok, max_new_tokens=12, temperature=temperature, top_k=top_k, top_p=top_p,
                            use_chat_template=False)
    groups = s.generate(["3+3=", "12+7="], n=6)
    repeats = 0
    for g in groups:
        for c in g.completions:
            ids = torch.tensor([g.prompt_ids + c.token_ids])
            with torch.no_grad():
                lp, _ = sequence_logprobs(model, ids, torch.ones_like(ids), len(c.token_ids), temperature)
            assert torch.allclose(lp[0], torch.tensor(c.logprobs), atol=1e-5)
            seq = g.prompt_ids + c.token_ids
            repeats += len(seq) - len(set(itertools.pairwise(seq))) - 1
    assert repeats > 0  # repeated bigrams occurred, so no_repeat_ngram_size was not applied
    assert model.generation_config.repetition_penalty == 1.1  # restored after generate


def test_sampler_applies_top_k_and_top_p_it_is_given(checkpoint_with_sampling_defaults):
    """With top-k the recorded log-probs are of the renormalised top-k distribution: higher than the
    full distribution's, and every sampled token is among the k most likely."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = checkpoint_with_sampling_defaults
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(d)
    torch.manual_seed(1)
    s = TransformersSampler(model, tok, max_new_tokens=6, top_k=3, use_chat_template=False)
    g = s.generate(["5="], n=8)[0]
    for c in g.completions:
        ids = torch.tensor([g.prompt_ids + c.token_ids])
        with torch.no_grad():
            logits = model(ids).logits[0, len(g.prompt_ids) - 1:-1]
        full = logits.log_softmax(-1).gather(-1, torch.tensor(c.token_ids)[:, None])[:, 0]
        top3 = logits.topk(3, dim=-1).indices
        assert all(t in top3[i] for i, t in enumerate(c.token_ids))
        assert (torch.tensor(c.logprobs) >= full - 1e-6).all()


def test_trainer_sampler_keeps_no_logprobs_it_does_not_need():
    """The trainer's transformers sampler runs the policy itself: its log-probs are the trainer's,
    so it does not record them at all."""
    t = _trainer(verifier=ToyExactVerifier(), bf16=False)
    g = t.sampler.generate(["3="], 2)
    assert all(c.logprobs is None for c in g[0].completions)
    assert t.sampler.shares_policy


def test_resume_keeps_the_runs_precision(tmp_path):
    """A run started with bf16 resumes with bf16 even when the resume command does not repeat it; an
    explicit setting wins."""
    from grpo_fast.trainer.run import run_training

    base = dict(toy="next_digit", max_steps=2, prompts_per_step=4, num_generations=4)
    run_training(GRPOConfig(output_dir=str(tmp_path / "a"), bf16=True, **base), live=False)
    res = run_training(GRPOConfig(output_dir=str(tmp_path / "a"), **{**base, "max_steps": 3}), resume="latest",
                       live=False, explicit={"max_steps"})
    assert json.loads((res.out_dir / "config.json").read_text())["bf16"] is True
    res = run_training(GRPOConfig(output_dir=str(tmp_path / "a"), bf16=False, **{**base, "max_steps": 4}),
                       resume="latest", live=False, explicit={"max_steps", "bf16"})
    assert json.loads((res.out_dir / "config.json").read_text())["bf16"] is False
