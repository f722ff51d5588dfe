"""How a model calls a tool, and how the result is written back into its context.

- `code` (ToRL-style tool-integrated reasoning): the model writes a fenced block (```python ... ```)
  and then the marker ```output; generation stops at the marker, the block runs, and its output
  followed by a closing fence is appended; the model continues in the same turn.
- `chat` (the chat template's tool calling, Hermes/Qwen style): the model ends its turn with one or
  more `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks; the results go back as `tool`
  role messages rendered by the tokenizer's own chat template, and a new assistant turn is opened.
  The prompt is rendered with `tools=[schemas]`, so the template describes the tools to the model.

Model tokens are never re-tokenized: a result is rendered to text on its own and tokenized alone."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grpo_fast.errors import ConfigError
from grpo_fast.sampler.base import Prompt
from grpo_fast.tools.base import Tool, ToolCall, ToolResult

FORMATS = ("code", "chat")
OUTPUT_MARKER = "```output"

_FENCE = re.compile(r"```([\w+#.-]*)[ \t]*\n(.*?)```", re.DOTALL)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


@dataclass
class ParsedCall:
    """A call found in a model turn; `error` is set when it could not be understood (the model is
    told so, as a tool result)."""

    name: str
    arguments: dict[str, Any]
    error: str | None = None


class ToolFormat:
    stop_strings: tuple[str, ...] = ()

    def __init__(self, tools: Sequence[Tool]):
        self.tools = {t.name: t for t in tools}

    def encode_prompts(self, sampler: Any, prompts: Sequence[Prompt]) -> tuple[list[str], list[list[int]]]:
        return sampler.encode_prompts(prompts)

    def parse(self, text: str, finish_reason: str) -> list[ParsedCall]:
        raise NotImplementedError

    def result_text(self, tokenizer: Any, model_text: str, end_text: str,
                    calls: Sequence[ParsedCall], results: Sequence[ToolResult]) -> str:
        """The text appended after a model turn that made `calls`: their results and whatever the format
        puts around them. `end_text` is the text of the stop token that ended the turn ("" if none)."""
        raise NotImplementedError


class CodeFenceFormat(ToolFormat):
    """```lang blocks answered by the sandbox tool of that language (an untagged block goes to
    `python`, or to the only code tool there is)."""

    stop_strings = (OUTPUT_MARKER,)

    def __init__(self, tools: Sequence[Tool]):
        super().__init__(tools)
        self.by_language = {t.language: t.name for t in tools if t.language}
        if not self.by_language:
            raise ConfigError("the code tool format needs a code tool (--tools python)", field="tool_format")
        self.default = self.by_language.get("python") or next(iter(self.by_language.values()))

    def parse(self, text: str, finish_reason: str) -> list[ParsedCall]:
        if finish_reason != "stop_string":
            return []
        before = text[:text.rfind(OUTPUT_MARKER)]
        blocks = _FENCE.findall(before)
        if not blocks:
            return [ParsedCall(self.default, {"code": ""}, "no code block before the output marker")]
        lang, code = blocks[-1]
        from grpo_fast.tools import SANDBOX_LANGUAGES

        tag = lang.lower()
        name = self.default if not tag else self.by_language.get(SANDBOX_LANGUAGES.get(tag, tag))
        if name is None:
            return [ParsedCall(tag, {"code": code}, f"no tool runs ```{lang} blocks "
                                                     f"(tools: {', '.join(sorted(self.tools))})")]
        return [ParsedCall(name, {"code": code})]

    def result_text(self, tokenizer: Any, model_text: str, end_text: str,
                    calls: Sequence[ParsedCall], results: Sequence[ToolResult]) -> str:
        return code_result_text(model_text, [r.output for r in results])


def code_result_text(model_text: str, outputs: Sequence[str]) -> str:
    """What the code format appends after a model turn that ended with the output marker: the
    outputs and a closing fence."""
    out = "\n\n".join(outputs)
    if out and not out.endswith("\n"):
        out += "\n"
    # The model's text ends with the marker (and whatever its last token carried past it).
    lead = "" if model_text.endswith("\n") else "\n"
    return f"{lead}{out}```\n"


class ChatToolFormat(ToolFormat):
    """Hermes/Qwen `<tool_call>` JSON blocks; results rendered by the chat template."""

    def __init__(self, tools: Sequence[Tool], tokenizer: Any):
        super().__init__(tools)
        if getattr(tokenizer, "chat_template", None) is None:
            raise ConfigError("the chat tool format needs a tokenizer with a chat template "
                              "(use --tool-format code otherwise)", field="tool_format")
        self.schemas = [t.schema() for t in tools]

    def encode_prompts(self, sampler: Any, prompts: Sequence[Prompt]) -> tuple[list[str], list[list[int]]]:
        tok = sampler.tokenizer
        texts = []
        for p in prompts:
            msgs = p if isinstance(p, list) else [{"role": "user", "content": p}]
            texts.append(tok.apply_chat_template(msgs, tools=self.schemas, tokenize=False, add_generation_prompt=True))
        ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        limit = getattr(sampler, "max_prompt_length", None)
        if limit:
            ids = [x[-limit:] for x in ids]
        return texts, ids

    def parse(self, text: str, finish_reason: str) -> list[ParsedCall]:
        if finish_reason != "stop":
            return []
        calls = []
        for body in _TOOL_CALL.findall(text):
            try:
                obj = json.loads(body)
                name = obj["name"]
                args = obj.get("arguments", obj.get("parameters", {}))
                if isinstance(args, str):
                    args = json.loads(args)
                if not isinstance(name, str) or not isinstance(args, dict):
                    raise TypeError("name must be a string and arguments an object")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                calls.append(ParsedCall("?", {}, f"could not read the tool call ({type(exc).__name__}: {exc})"))
                continue
            if name not in self.tools:
                calls.append(ParsedCall(name, args, f"no tool named {name!r} (tools: {', '.join(sorted(self.tools))})"))
            else:
                calls.append(ParsedCall(name, args))
        return calls

    def result_text(self, tokenizer: Any, model_text: str, end_text: str,
                    calls: Sequence[ParsedCall], results: Sequence[ToolResult]) -> str:
        """The template's rendering of the tool messages and the next assistant opener, taken as the
        text after a placeholder assistant message, so that whatever the template puts between an
        assistant turn and tool messages is there. The model's own end-of-turn token is already in
        its tokens, so its text is dropped from the front."""
        marker = "\x00GRPO_FAST_TURN\x00"
        msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": marker}]
        msgs += [{"role": "tool", "name": c.name, "content": r.output} for c, r in zip(calls, results, strict=True)]
        full = tokenizer.apply_chat_template(msgs, tools=self.schemas, tokenize=False, add_generation_prompt=True)
        after = full[full.index(marker) + len(marker):]
        if end_text and after.startswith(end_text):
            after = after[len(end_text):]
        return after


def build_format(name: str, tools: Sequence[Tool], tokenizer: Any) -> ToolFormat:
    if name == "code":
        return CodeFenceFormat(tools)
    if name == "chat":
        return ChatToolFormat(tools, tokenizer)
    raise ConfigError(f"tool_format: one of {', '.join(FORMATS)}, got {name!r}", field="tool_format")


def to_tool_call(call: ParsedCall, history: list[dict[str, Any]]) -> ToolCall:
    return ToolCall(call.name, call.arguments, list(history))
