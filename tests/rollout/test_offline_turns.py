"""Offline training from files with `turns` (what `grpo-fast generate --tools` writes) rebuilds the
rollouts the online path trained on: the same tokens, model/tool segments and loss mask (tool text is
never trained on), in both tool formats; a malformed turn is an error naming file, line and field."""

from __future__ import annotations

import json

import pytest
from scripted import ScriptedSampler

from grpo_fast.cli.generate import response_record
from grpo_fast.errors import DataError
from grpo_fast.rollout import Rollout, RolloutLimits, ToolSampler
from grpo_fast.tools import FunctionTool, build_tools
from grpo_fast.trainer.config import GRPOConfig
from grpo_fast.trainer.loop import GRPOTrainer, micro_batches

EOS = "<|im_end|>"
CODE = ["Let me compute.\n```python\nprint(6 * 7)\n```\n```output\n",
        "Check again.\n```python\nprint(7 * 6)\n```\n```output\n",
        "So \\boxed{42}." + EOS]


def mul(a: int, b: int) -> int:
    """Multiply.

    Args:
        a: a factor
        b: the other factor
    """
    return a * b


CHAT = ['<tool_call>{"name": "mul", "arguments": {"a": 6, "b": 7}}</tool_call>' + EOS, "It is 42." + EOS]


def online(tok, sandbox, fmt, turns, max_tokens=2000):
    def script(prompt, ctx, k):
        text = tok.decode(ctx)
        return turns[min(text.count("```output") + text.count("<|im_start|>tool"), len(turns) - 1)]

    tools = build_tools(["python"], sandbox=sandbox) if fmt == "code" else [FunctionTool(mul)]
    s = ToolSampler(ScriptedSampler(tok, script), tools, tool_format=fmt,
                    limits=RolloutLimits(max_tokens=max_tokens))
    groups = s.generate(["What is 6*7?"], 2)
    s.close()
    return groups[0]


def offline(tmp_path, tok, group, fmt, max_len=2000, score=(1.0, 0.0), edit=None):
    responses = [{**response_record(c, Rollout), "score": sc}
                 for c, sc in zip(group.completions, score, strict=True)]
    rec = {"prompt": group.prompt, "responses": responses}
    if edit:
        edit(rec)
    f = tmp_path / "groups.jsonl"
    f.write_text(json.dumps({"prompt": "unused", "responses": [{"text": "x", "score": 0.0}]}) + "\n"
                 + json.dumps(rec) + "\n")
    from grpo_fast.trainer.local_model import build_qwen2

    model, _ = build_qwen2(vocab_size=256, seed=0)
    cfg = GRPOConfig(offline=True, data=str(f), tool_format=fmt, max_completion_length=max_len,
                     prompts_per_step=1, learning_rate=1e-3)
    return GRPOTrainer(cfg, model, tok, [json.loads(x) for x in f.read_text().splitlines()], None)


@pytest.mark.parametrize(("fmt", "turns"), [("code", CODE), ("chat", CHAT)])
def test_offline_rollouts_have_the_online_tokens_segments_and_mask(qwen_tok, sandbox, tmp_path, fmt, turns):
    g = online(qwen_tok, sandbox, fmt, turns)
    t = offline(tmp_path, qwen_tok, g, fmt)
    sg = t.offline_data[1]
    assert sg.group.prompt_ids == g.prompt_ids
    for live, back in zip(g.completions, sg.group.completions, strict=True):
        assert isinstance(back, Rollout)
        assert back.token_ids == live.token_ids
        assert back.loss_mask == live.loss_mask and 0 in back.loss_mask
        assert [s.kind for s in back.segments] == [s.kind for s in live.segments]
        assert back.finish_reason == live.finish_reason == "stop" and back.stop_reason == "answer"
        assert back.transcript_text == live.transcript_text
    # The trainer's rows carry the per-token mask: tool tokens are not in the loss or its normaliser.
    t.cfg.prompts_per_step = 2
    m = t.step()
    assert m["num_tokens"] == sum(c.num_model_tokens for c in g.completions) + 2  # + the flat "x" and EOS
    t.close()


def test_offline_rollouts_are_cut_at_the_length_limit_like_online_ones(qwen_tok, sandbox, tmp_path):
    g = online(qwen_tok, sandbox, "code", CODE)
    full = g.completions[0]
    limit = len(full.segments[0].token_ids) + 3  # inside the first tool segment
    back = offline(tmp_path, qwen_tok, g, "code", max_len=limit).offline_data[1].group.completions[0]
    assert back.token_ids == full.token_ids[:limit] and back.loss_mask == full.loss_mask[:limit]
    assert back.finish_reason == "length" and back.stop_reason == "max_tokens"
    rows = [(g.prompt_ids, back.token_ids, 1.0, back.loss_mask)]
    [mb] = micro_batches(rows, 0, "cpu")
    assert mb.completion_mask[0].tolist() == [float(x) for x in full.loss_mask[:limit]]


@pytest.mark.parametrize(("case", "edit", "field"), [
    ("a tool turn first", lambda r: r["responses"][1]["turns"].insert(0, {"role": "tool", "content": "x"}),
     "responses[1].turns[0].role"),
    ("content not a string", lambda r: r["responses"][0]["turns"][1].update(content=7),
     "responses[0].turns[1].content"),
    ("unknown stop reason", lambda r: r["responses"][0].update(stop_reason="tired"),
     "responses[0].stop_reason"),
    ("turns not a list", lambda r: r["responses"][1].update(turns="hello"), "responses[1].turns"),
])
def test_a_malformed_turn_names_file_line_and_field(qwen_tok, sandbox, tmp_path, case, edit, field):
    g = online(qwen_tok, sandbox, "code", CODE)
    with pytest.raises(DataError) as e:
        offline(tmp_path, qwen_tok, g, "code", edit=edit)
    assert (e.value.line, e.value.field) == (2, field), case
    assert e.value.file == str(tmp_path / "groups.jsonl")
