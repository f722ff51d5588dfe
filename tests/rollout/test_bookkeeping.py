"""Token bookkeeping of multi-turn rollouts in the trainer, against a deliberately naive reference:
each rollout scored alone, unpadded, one token at a time, with tool tokens skipped by hand. The
batched path (build_batch, the chunked log-prob pass, grpo_loss with the rollout correction and the
KL term) must give the same loss and the same gradient, so tool tokens provably never enter the
loss, the importance ratio or the KL, and the behaviour log-probs line up with the model's tokens.
Then one real GRPOTrainer step on rollouts from the real daemon."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from scripted import ScriptedSampler

from grpo_fast.rollout import MODEL, RolloutLimits, ToolSampler
from grpo_fast.tools import build_tools
from grpo_fast.trainer.logprobs import sequence_logprobs
from grpo_fast.trainer.loop import build_batch
from grpo_fast.trainer.loss import grpo_loss, rollout_correction

EOS = "<|im_end|>"


def _rollouts(tok, sandbox):
    """Rollouts of different shapes: 0, 1 and 2 tool calls, one cut by the token budget."""
    plans = {
        "a": ["The answer is 3." + EOS],
        "b": ["```python\nprint(2+2)\n```\n```output\n", "So 4." + EOS],
        "c": ["```python\nprint(1)\n```\n```output\n", "```python\nprint('x'*9)\n```\n```output\n", "done" + EOS],
        "d": ["```python\nprint(7)\n```\n```output\n", "z" * 400 + EOS],
    }

    def script(prompt, ctx, k):
        text = tok.decode(ctx)
        key = text.split("<|im_start|>user\n", 1)[1][0]
        return plans[key][min(text.count("```output"), len(plans[key]) - 1)]

    inner = ScriptedSampler(tok, script)
    s = ToolSampler(inner, build_tools(["python"], sandbox=sandbox), limits=RolloutLimits(max_tokens=160))
    groups = s.generate(["a?", "b?", "c?", "d?"], 1)
    rs = [(g.prompt_ids, g.completions[0]) for g in groups]
    assert [len(r.tool_calls) for _, r in rs] == [0, 1, 2, 1]
    assert rs[3][1].stop_reason == "max_tokens"
    return rs


def _naive_logps(model, prompt, completion, temperature):
    """log p(token_t | everything before it) for each completion token, one unpadded sequence."""
    ids = torch.tensor([prompt + completion])
    logits = model(input_ids=ids).logits[0].double() / temperature
    out = []
    for t in range(len(completion)):
        pos = len(prompt) + t
        out.append(torch.log_softmax(logits[pos - 1], -1)[completion[t]])
    return out


@pytest.mark.parametrize("loss_type,level", [("dapo", "token"), ("grpo", "token"), ("dr_grpo", "sequence")])
def test_batched_loss_and_gradient_equal_a_naive_per_rollout_reference(qwen_tok, sandbox, loss_type, level):
    from grpo_fast.trainer.local_model import build_qwen2

    model, _ = build_qwen2(vocab_size=256, seed=1)
    model = model.double()
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.01 * torch.randn_like(p))
    rs = _rollouts(qwen_tok, sandbox)
    adv = [1.0, -0.5, 0.75, -1.25]
    T, beta, L = 0.7, 0.05, 200
    # Behaviour log-probs from "another engine": the sampler's, shifted per token.
    g = torch.Generator().manual_seed(0)

    # ---- batched, as the trainer does it
    rows = []
    for (p, r), a in zip(rs, adv, strict=True):
        lps = [x if math.isnan(x) else x + 0.05 * float(torch.randn((), generator=g)) for x in r.logprobs]
        rows.append((p, r.token_ids, a, r.loss_mask, lps))
    mb = build_batch(rows, qwen_tok.pad_token_id)
    logps, _ = sequence_logprobs(model, mb.input_ids, mb.attention_mask, mb.n_completion, T, chunk_tokens=7)
    with torch.no_grad():
        ref_l, _ = sequence_logprobs(ref, mb.input_ids, mb.attention_mask, mb.n_completion, T)
    old = logps.detach()
    rc = rollout_correction(old, mb.sampler_logps.to(old.dtype), mb.completion_mask)
    out = grpo_loss(logps, old, mb.advantages, mb.completion_mask, beta=beta, ref_logps=ref_l, loss_type=loss_type,
                    importance_sampling_level=level, max_completion_length=L, is_weights=rc.weights)
    model.zero_grad()
    out.loss.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}

    # ---- naive: per rollout, per token, tool tokens skipped explicitly
    model.zero_grad()
    total = torch.zeros((), dtype=torch.float64)
    per_seq, n_tokens = [], 0
    for (p, r), a, row in zip(rs, adv, rows, strict=True):
        lp = _naive_logps(model, p, r.token_ids, T)
        with torch.no_grad():
            rl = _naive_logps(ref, p, r.token_ids, T)
        terms = []
        model_pos = [t for t, seg_kind in enumerate(k for s in r.segments for k in [s.kind] * len(s.token_ids))
                     if seg_kind == MODEL]
        if level == "sequence":
            mean_lr = sum(lp[t] - lp[t].detach() for t in model_pos) / len(model_pos)
        for t in model_pos:
            ratio = torch.exp(mean_lr) if level == "sequence" else torch.exp(lp[t] - lp[t].detach())
            # token TIS, cap 2; the batch keeps sampler log-probs in float32
            w = min(math.exp(min(20.0, float(lp[t].detach()) - float(torch.tensor(row[4][t]).float()))), 2.0)
            d = rl[t] - lp[t]
            terms.append(-ratio * a * w + beta * (torch.exp(d) - d - 1))
        n_tokens += len(terms)
        per_seq.append(terms)
    if loss_type == "grpo":
        total = sum(sum(ts) / len(ts) for ts in per_seq) / len(per_seq)
    elif loss_type == "dapo":
        total = sum(sum(ts) for ts in per_seq) / n_tokens
    else:
        total = sum(sum(ts) for ts in per_seq) / (len(per_seq) * L)
    total.backward()
    assert float(out.loss.detach()) == pytest.approx(float(total.detach()), rel=1e-9, abs=1e-12)
    assert out.num_tokens == n_tokens == sum(sum(r.loss_mask) for _, r in rs)
    for n, p in model.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=1e-7, atol=1e-10)


def test_a_grpo_step_on_rollouts_trains_on_model_tokens_only(qwen_tok, sandbox):
    from grpo_fast.trainer.config import GRPOConfig
    from grpo_fast.trainer.local_model import build_qwen2
    from grpo_fast.trainer.loop import GRPOTrainer
    from grpo_fast.verifiers.registry import build_verifier

    model, tok = build_qwen2(vocab_size=256, seed=0)
    flip = iter(range(10**6))

    def script(prompt, ctx, k):
        text = qwen_tok.decode(ctx)
        if "```output" not in text:
            return "Let me run it.\n```python\nprint(6 * 7)\n```\n```output\n"
        return ("\\boxed{42}" if next(flip) % 2 else "\\boxed{41}") + EOS

    cfg = GRPOConfig(prompts_per_step=2, num_generations=4, max_completion_length=200, learning_rate=1e-3,
                     generation_chunks=1, verifier="math", tools=("python",))
    sampler = ToolSampler(ScriptedSampler(tok, script), build_tools(["python"], sandbox=sandbox),
                          limits=RolloutLimits(max_tokens=200))
    records = [{"prompt": "What is 6*7?", "answer": "42"}, {"prompt": "Six times seven?", "answer": "42"}]
    trainer = GRPOTrainer(cfg, model, tok, records, build_verifier("math"), sampler=sampler)
    before = [p.detach().clone() for p in model.parameters()]
    m = trainer.step()
    trainer.close()
    comps = [c for g in trainer.last_batch.groups for c in g.group.completions]
    assert m["tools/calls_per_rollout"] == 1.0 and m["tools/turns_per_rollout"] == 2.0
    assert m["tools/errors"] == 0 and m["tools/time_s"] > 0 and "tools/wait_s" in m
    assert m["reward"] == pytest.approx(0.5)
    assert m["num_tokens"] == sum(c.num_model_tokens for c in comps) < sum(len(c.token_ids) for c in comps)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    rec = trainer.last_batch.completion_records(8)[0]
    assert [t["role"] for t in rec["turns"]] == ["assistant", "tool", "assistant"]
    assert rec["turns"][1]["calls"][0]["output"] == "42\n"
