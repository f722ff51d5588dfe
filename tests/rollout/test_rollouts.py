"""Multi-turn rollouts against the real sandbox daemon: segments, masks and log-prob alignment, the
python session (shared within a rollout, never across rollouts), every limit, hostile programs, and
the chat tool-call format. The model's text is scripted (see scripted.py); tools, formats, daemon
and bookkeeping are the real code."""

from __future__ import annotations

import math

import pytest
from scripted import ScriptedSampler

from grpo_fast.rollout import MODEL, TOOL, RolloutLimits, ToolSampler, rollout_metrics
from grpo_fast.tools import FunctionTool, SandboxTool, build_tools

EOS = "<|im_end|>"


def fence(code: str, lead: str = "") -> str:
    return f"{lead}```python\n{code}\n```\n```output\n"


def by_calls(*turns: str):
    """A script that answers turn k (counted by the ```output markers already in the context)."""

    def script(prompt, ctx, k, tok=None):
        return turns[min(script.tok.decode(ctx).count("```output"), len(turns) - 1)]

    return script


def make(tok, sandbox, script, *, limits=None, waves=2, fmt="code", tools=None, **tool_kw):
    script.tok = tok
    tools = tools if tools is not None else build_tools(["python"], sandbox=sandbox, **tool_kw)
    return ToolSampler(ScriptedSampler(tok, script), tools, tool_format=fmt,
                       limits=limits or RolloutLimits(max_tool_calls=4, max_turns=8, max_tokens=2000), waves=waves)


def test_segments_mask_and_logprobs_line_up_with_the_tokens(qwen_tok, sandbox):
    s = make(qwen_tok, sandbox, by_calls(fence("print(6*7)", "Compute.\n"), fence("print(sum(range(5)))", "Again.\n"),
                                         "So \\boxed{42}." + EOS))
    [g] = s.generate(["What is 6*7?"], 3)
    for r in g.completions:
        assert r.stop_reason == "answer" and r.finish_reason == "stop"
        assert [x.kind for x in r.segments] == [MODEL, TOOL, MODEL, TOOL, MODEL]
        assert [c.output for c in r.tool_calls] == ["42\n", "10\n"]
        assert r.transcript_text == ("Compute.\n```python\nprint(6*7)\n```\n```output\n42\n```\nAgain.\n"
                                     "```python\nprint(sum(range(5)))\n```\n```output\n10\n```\n"
                                     "So \\boxed{42}.")
        # What verifiers judge: the same with the outputs left out, the fences still closed.
        assert r.text == ("Compute.\n```python\nprint(6*7)\n```\n```output\n```\nAgain.\n```python\n"
                          "print(sum(range(5)))\n```\n```output\n```\nSo \\boxed{42}.")
        # Every token is in exactly one segment; the mask is 1 exactly on the model's tokens.
        pos = 0
        for seg in r.segments:
            n = len(seg.token_ids)
            assert r.token_ids[pos:pos + n] == seg.token_ids
            assert r.loss_mask[pos:pos + n] == [int(seg.kind == MODEL)] * n
            if seg.kind == MODEL:
                assert r.logprobs[pos:pos + n] == seg.logprobs
            else:
                assert all(math.isnan(x) for x in r.logprobs[pos:pos + n])
                assert qwen_tok.decode(seg.token_ids) == seg.text
            pos += n
        assert pos == len(r.token_ids) == len(r.loss_mask) == len(r.logprobs)
        # The scripted log-probs encode each token's absolute position: the model's tokens were
        # generated right after everything before them (tool tokens included), none re-tokenized.
        plen = len(g.prompt_ids)
        for i, (m, lp) in enumerate(zip(r.loss_mask, r.logprobs, strict=True)):
            if m:
                assert lp == pytest.approx(-0.01 * (plen + i + 1))
        assert r.turns == 3 and r.num_model_tokens == sum(r.loss_mask)
    m = rollout_metrics(g.completions, s.take_stats())
    assert m["tools/calls_per_rollout"] == 2 and m["tools/turns_per_rollout"] == 3 and m["tools/errors"] == 0
    assert m["tools/time_s"] > 0 and 0 < m["tools/token_share"] < 1


def test_a_session_sees_its_own_earlier_cells_and_never_another_rollouts(qwen_tok, sandbox):
    def script(prompt, ctx, k):
        text = qwen_tok.decode(ctx)
        mine = "ROLL-A" in text
        n = text.count("```output")
        if n == 0:
            return fence("secret = 'alpha'\nprint('set')") if mine else fence("print('nothing set')")
        if n == 1:
            return fence("print(secret)")
        return "done" + EOS

    s = make(qwen_tok, sandbox, script, session=True)
    groups = s.generate(["ROLL-A", "ROLL-B"], 2)
    for r in groups[0].completions:
        assert [c.output for c in r.tool_calls] == ["set\n", "alpha\n"]
    for r in groups[1].completions:
        assert r.tool_calls[0].output == "nothing set\n"
        assert r.tool_calls[1].status == "error" and "NameError" in r.tool_calls[1].output
    # Without a session every cell starts empty, even in the same rollout.
    s2 = make(qwen_tok, sandbox, script, session=False)
    [a] = s2.generate(["ROLL-A"], 1)[:1]
    assert "NameError" in a.completions[0].tool_calls[1].output


def test_a_replayed_session_shows_only_the_new_cells_output_and_swallows_old_errors(qwen_tok, sandbox):
    s = make(qwen_tok, sandbox, by_calls(fence("print('one')\nx = 1"), fence("print('two')\n1/0"),
                                         fence("print(x + 1)"), "ok" + EOS), session=True)
    r = s.generate(["p"], 1)[0].completions[0]
    assert [c.output for c in r.tool_calls] == ["one\n", "two\nZeroDivisionError: division by zero", "2\n"]
    assert [c.status for c in r.tool_calls] == ["ok", "error", "ok"]


def test_max_tool_calls_ends_the_rollout_as_truncated(qwen_tok, sandbox):
    s = make(qwen_tok, sandbox, by_calls(fence("print(1)")), limits=RolloutLimits(max_tool_calls=2, max_tokens=4000))
    r = s.generate(["p"], 1)[0].completions[0]
    assert len(r.tool_calls) == 2 and r.turns == 3
    assert r.stop_reason == "max_tool_calls" and r.finish_reason == "length"
    assert r.segments[-1].kind == MODEL  # the call over the limit is kept as the model wrote it, unanswered


def test_max_turns_ends_the_rollout_as_truncated(qwen_tok, sandbox):
    s = make(qwen_tok, sandbox, by_calls(fence("print(1)")), limits=RolloutLimits(max_tool_calls=10, max_turns=2,
                                                                                   max_tokens=4000))
    r = s.generate(["p"], 1)[0].completions[0]
    assert r.turns == 2 and len(r.tool_calls) == 1 and r.stop_reason == "max_turns"


def test_max_tokens_bounds_model_and_tool_tokens_together(qwen_tok, sandbox):
    s = make(qwen_tok, sandbox, by_calls(fence("print('y' * 60)"), "z" * 500 + EOS),
             limits=RolloutLimits(max_tokens=120))
    r = s.generate(["p"], 1)[0].completions[0]
    assert len(r.token_ids) == 120 and r.stop_reason == "max_tokens" and r.finish_reason == "length"
    assert [x.kind for x in r.segments] == [MODEL, TOOL, MODEL]
    # A result that leaves no room for the model is not appended.
    s = make(qwen_tok, sandbox, by_calls(fence("print('y' * 200)"), "z" + EOS), limits=RolloutLimits(max_tokens=100))
    r = s.generate(["p"], 1)[0].completions[0]
    assert [x.kind for x in r.segments] == [MODEL] and r.stop_reason == "max_tokens"
    assert r.tool_calls[0].status == "ok"  # the call ran and is on record


def test_a_call_over_its_time_limit_is_a_timeout_the_model_sees(qwen_tok, sandbox):
    s = make(qwen_tok, sandbox, by_calls(fence("print('start', flush=True)\nwhile True:\n    pass"), "ok" + EOS),
             timeout_s=0.5)
    r = s.generate(["p"], 2)[0].completions[0]
    c = r.tool_calls[0]
    assert c.status == "timeout" and c.output.startswith("start\n") and "TimeoutError" in c.output
    assert r.stop_reason == "answer"
    assert rollout_metrics([r])["tools/timeouts"] == 1


def test_oversized_output_is_capped_keeping_start_and_end(qwen_tok, sandbox):
    s = make(qwen_tok, sandbox, by_calls(fence("print('A' * 50000 + 'END')"), "ok" + EOS), max_output_chars=300)
    r = s.generate(["p"], 1)[0].completions[0]
    c = r.tool_calls[0]
    assert c.status == "output_limit" and len(c.output) <= 300
    assert c.output.startswith("AAAA") and c.output.rstrip().endswith("END") and "characters cut" in c.output
    # Past the daemon's own per-stream cap the run is stopped; the model is told, in bounded text.
    s = make(qwen_tok, sandbox, by_calls(fence("import sys\nwhile True:\n    sys.stdout.write('B' * 65536)"),
                                         "ok" + EOS), max_output_chars=500)
    c = s.generate(["p"], 1)[0].completions[0].tool_calls[0]
    assert c.status == "output_limit" and len(c.output) <= 500 and "output limit" in c.output


HOSTILE = [
    ("fork_bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"),
    ("memory", "x = bytearray(1 << 34)"),
    ("kill_parent", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('alive')"),
    ("network", "import socket\ns = socket.socket()\ns.connect(('1.1.1.1', 80))\nprint('connected')"),
    ("escape_replay", "__sys.stdout = None\nraise SystemExit(3)"),
]


@pytest.mark.parametrize("name,code", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_program_is_contained_like_any_other_run(qwen_tok, sandbox, name, code):
    s = make(qwen_tok, sandbox, by_calls(fence(code), fence("print('after', 6 * 7)"), "ok" + EOS), timeout_s=2.0,
             session=True)
    r = s.generate(["p"], 1)[0].completions[0]
    first, second = r.tool_calls
    assert first.status != "ok" or name == "kill_parent", first
    assert "connected" not in first.output
    # The rollout goes on, the next cell runs (replaying the hostile one silently) and the daemon serves.
    assert second.output.endswith("after 42\n"), second
    assert sandbox.run("print(1)")["stdout"] == "1\n"


def test_calls_from_many_rollouts_go_to_the_sandbox_in_one_batch_per_wave(qwen_tok, sandbox):
    sent = []

    class Counting:
        def map(self, items, chunk_size=32):
            sent.append(len(items))
            return sandbox.map(items, chunk_size)

        def close(self):
            pass

    tools = [SandboxTool("python", client=Counting())]
    s = make(qwen_tok, sandbox, by_calls(fence("print(1)"), "ok" + EOS), tools=tools, waves=2)
    groups = s.generate(["a", "b", "c"], 4)
    assert all(r.tool_calls[0].output == "1\n" for g in groups for r in g.completions)
    assert sent == [6, 6]  # 12 rollouts, two waves, one batch each
    inner = s.inner
    assert [c["rows"] for c in inner.calls] == [6, 6, 6, 6]  # generation per wave, interleaved with tools


def test_code_blocks_in_other_languages_and_broken_calls(qwen_tok, sandbox):
    tools = build_tools(["python", "c"], sandbox=sandbox)
    s = make(qwen_tok, sandbox, by_calls("no code here\n```output\n", "```ruby\nputs 1\n```\n```output\n",
                                         "```c\n#include <stdio.h>\nint main(){printf(\"%d\\n\", 7*6);}\n```\n```output\n",
                                         "ok" + EOS), tools=tools)
    r = s.generate(["p"], 1)[0].completions[0]
    assert [c.status for c in r.tool_calls] == ["bad_call", "unknown_tool", "ok"]
    assert r.tool_calls[2].output == "42\n"


def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Args:
        a: the first term
        b: the second term
    """
    return a + b


def test_chat_format_function_tools_and_template_rendering(qwen_tok, sandbox):
    call = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 40}}\n</tool_call>' + EOS

    def script(prompt, ctx, k):
        text = qwen_tok.decode(ctx)
        n = text.count("<|im_start|>tool")
        return [call, '<tool_call>{"name": "add", "arguments": {"c": 1}}</tool_call>'
                      '<tool_call>{"name": "mul"}</tool_call><tool_call>not json</tool_call>' + EOS,
                "The sum is 42." + EOS][min(n, 2)]

    tools = [FunctionTool(add), *build_tools(["python"], sandbox=sandbox)]
    s = ToolSampler(ScriptedSampler(qwen_tok, script), tools, tool_format="chat",
                    limits=RolloutLimits(max_tokens=2000))
    [g] = s.generate(["add 2 and 40"], 1)
    r = g.completions[0]
    assert [c.status for c in r.tool_calls] == ["ok", "bad_call", "unknown_tool", "bad_call"]
    assert r.tool_calls[0].output == "42"
    # The tool turn is the template's rendering of a tool message plus the next assistant opener; the
    # model's own end-of-turn token stays in its tokens and is not repeated.
    assert r.segments[1].text == "\n<|im_start|>tool\n42<|im_end|>\n<|im_start|>assistant\n"
    assert r.segments[0].token_ids[-1] == qwen_tok.eos_token_id
    assert r.final_text == "The sum is 42." and r.stop_reason == "answer"


def test_function_tool_schema_from_signature_and_docstring():
    t = FunctionTool(add)
    assert t.schema() == {"type": "function", "function": {
        "name": "add", "description": "Add two integers.",
        "parameters": {"type": "object", "properties": {
            "a": {"type": "integer", "description": "the first term"},
            "b": {"type": "integer", "description": "the second term"}}, "required": ["a"]}}}


def test_function_tool_limits():
    import time

    def slow(seconds: float) -> str:
        time.sleep(seconds)
        return "woke"

    def loud() -> str:
        return "x" * 10_000

    def broken() -> None:
        raise KeyError("nope")

    from grpo_fast.tools import ToolCall

    t = FunctionTool(slow, timeout_s=0.3)
    out = t.run_batch([ToolCall("slow", {"seconds": 0.01}), ToolCall("slow", {"seconds": 5})])
    assert [o.status for o in out] == ["ok", "timeout"] and out[0].output == "woke"
    assert FunctionTool(loud, max_output_chars=100).run_batch([ToolCall("loud", {})])[0].status == "output_limit"
    err = FunctionTool(broken).run_batch([ToolCall("broken", {})])[0]
    assert err.status == "error" and "KeyError" in err.output
    t.close()
