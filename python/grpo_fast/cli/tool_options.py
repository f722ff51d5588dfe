"""The options that give a model tools (multi-turn rollouts), shared by `train`, `generate` and `eval`
so that `--tools python` means the same thing in each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

# option name -> GRPOConfig field
TOOL_FIELDS = {
    "tools": "tools", "tool": "tool_functions", "tool_format": "tool_format", "max_tool_calls": "max_tool_calls",
    "max_turns": "max_turns", "tool_timeout": "tool_timeout", "tool_max_output_chars": "tool_max_output_chars",
    "tool_session": "tool_session", "tool_sandbox": "tool_sandbox", "tool_setup_code": "tool_setup_code",
}


def _split(ctx: Any, param: Any, value: tuple[str, ...]) -> tuple[str, ...] | None:
    out = tuple(x.strip() for v in value for x in v.split(",") if x.strip())
    return out or None


def with_tool_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the tool options; every default is None, so the config (or GRPOConfig's default) decides."""
    opts = [
        click.option("--tools", multiple=True, callback=_split, metavar="LANG[,LANG]",
                     help="Code tools the model may call, run in the sandbox: python (also cpp, c, rust, java, "
                          "javascript). Turns on multi-turn rollouts."),
        click.option("--tool", multiple=True, callback=_split, metavar="MODULE:FN",
                     help="A Python function as a tool (repeatable; schema from its signature and docstring; "
                          "needs --tool-format chat)."),
        click.option("--tool-format", type=click.Choice(["code", "chat"]), default=None,
                     help="code: ```python ... ``` then ```output (ToRL-style; default); chat: the chat "
                          "template's tool calls."),
        click.option("--max-tool-calls", type=int, default=None, help="Most tool calls per rollout [4]."),
        click.option("--max-turns", type=int, default=None, help="Most model turns per rollout [8]."),
        click.option("--tool-timeout", type=float, default=None, help="Seconds per tool call [5]."),
        click.option("--tool-max-output-chars", type=int, default=None,
                     help="Characters of tool output shown to the model [2048]."),
        click.option("--tool-session/--no-tool-session", default=None,
                     help="Later python cells of a rollout see earlier definitions (replayed)."),
        click.option("--tool-sandbox", default=None, metavar="ENDPOINTS",
                     help="Sandbox daemons for the code tools (default $GRPO_SANDBOX, else a local daemon)."),
        click.option("--tool-setup-code", default=None, help="Python run silently before every cell."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def pop_tool_overrides(opts: dict[str, Any]) -> dict[str, Any]:
    """Removes the tool options from `opts` and returns the ones given, as GRPOConfig fields."""
    out = {}
    for flag, name in TOOL_FIELDS.items():
        v = opts.pop(flag, None)
        if v is not None:
            out[name] = v
    return out


def wrap_sampler(sampler: Any, overrides: dict[str, Any], max_tokens: int) -> Any:
    """`sampler` as a tool sampler when `overrides` name tools (checked as GRPOConfig checks them)."""
    if not overrides.get("tools") and not overrides.get("tool_functions"):
        return sampler
    from grpo_fast.trainer.config import GRPOConfig
    from grpo_fast.trainer.loop import with_tools

    cfg = GRPOConfig.from_dict({**overrides, "max_completion_length": max_tokens})
    return with_tools(cfg, sampler)
