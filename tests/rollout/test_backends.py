"""The samplers' token-level continuation that rollouts are built on, with a real (random-init)
model: stop strings cut exactly where their text is completed, and a rollout through the
transformers sampler keeps the model's own tokens and log-probs."""

from __future__ import annotations

import math

import torch

from grpo_fast.rollout import RolloutLimits, ToolSampler
from grpo_fast.sampler.base import stop_string_end
from grpo_fast.sampler.transformers_backend import TransformersSampler
from grpo_fast.tools import build_tools


def test_continue_ids_stops_at_the_token_completing_a_stop_string(qwen_tok):
    from grpo_fast.trainer.local_model import build_qwen2

    model, tok = build_qwen2(vocab_size=256, seed=3)
    s = TransformersSampler(model, tok, max_new_tokens=60, return_logprobs=True)
    torch.manual_seed(0)
    rows = [tok("ab")["input_ids"], tok("hello there")["input_ids"], tok("x")["input_ids"]]
    stops = ["e", "7", "q"]  # common enough characters that most rows hit one
    free = s.continue_ids(rows, max_new_tokens=60, temperature=1.0)
    torch.manual_seed(0)
    cut = s.continue_ids(rows, stop_strings=stops, max_new_tokens=60, temperature=1.0)
    hit = 0
    for f, c in zip(free, cut, strict=True):
        # Same random stream: the stopped row is a prefix of the free one, cut at the first stop string.
        assert f.token_ids[:len(c.token_ids)] == c.token_ids
        end = stop_string_end(tok, f.token_ids, stops)
        if c.finish_reason == "stop_string":
            hit += 1
            assert len(c.token_ids) == end and any(x in c.text for x in stops)
            assert not any(x in tok.decode(c.token_ids[:-1]) for x in stops)
        else:
            assert end is None or (f.finish_reason == "stop" and end >= len(f.token_ids))
        assert len(c.logprobs) == len(c.token_ids)
        assert c.logprobs == f.logprobs[:len(c.token_ids)]
    assert hit >= 1


def test_a_rollout_through_the_transformers_sampler(qwen_tok, sandbox):
    from grpo_fast.trainer.local_model import build_qwen2

    model, tok = build_qwen2(vocab_size=256, seed=0)
    inner = TransformersSampler(model, tok, max_new_tokens=40, return_logprobs=True)
    s = ToolSampler(inner, build_tools(["python"], sandbox=sandbox), limits=RolloutLimits(max_tokens=40))
    torch.manual_seed(0)
    groups = s.generate(["What is 2+2?", "Name a prime."], 3, temperature=1.0)
    for g in groups:
        for r in g.completions:
            # A random model answers in one turn; its tokens and log-probs are the sampler's own.
            assert r.turns >= 1 and len(r.token_ids) <= 40
            assert len(r.logprobs) == len(r.token_ids) == len(r.loss_mask)
            assert all(not math.isnan(x) for x, m in zip(r.logprobs, r.loss_mask, strict=True) if m)
    s.close()
