"""Pieces shared by the commands: error display, progress bars, JSON output."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from grpo_fast.errors import GrpoError

F = TypeVar("F", bound=Callable[..., Any])

# Progress and summaries go to stderr so stdout stays clean for `-o -` and `--json`.
console = Console(stderr=True)

on_error_option = click.option(
    "--on-error",
    type=click.Choice(["strict", "report"]),
    default="strict",
    show_default=True,
    help="strict: stop at the first bad line; report: write bad lines with reasons to --rejects and go on.",
)
rejects_option = click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    default=None,
    help="File for rejected lines (with --on-error report). Default: OUT.rejects.jsonl or rejects.jsonl.",
)
score_range_option = click.option(
    "--score-range",
    nargs=2,
    type=float,
    default=(0.0, 1.0),
    show_default=True,
    help="Allowed score interval; use --any-score to accept any finite score.",
)
any_score_option = click.option("--any-score", is_flag=True, help="Accept any finite score (no range check).")
group_key_option = click.option(
    "--group-key", default=None, help="Field grouping flat records (default: prompt_id, then id, then prompt)."
)
max_line_option = click.option(
    "--max-line-bytes", type=click.IntRange(min=1), default=64 << 20, show_default=True, metavar="BYTES",
    help="Longest input line read (line ending excluded); a longer line is a bad line (see --on-error) "
         "and is never held in memory whole.",
)


def reading_options(fn: F) -> F:
    """The input options shared by commands that read rollout files: error policy, rejects file,
    score range, the flat-record group key and the longest line."""
    for option in reversed((on_error_option, rejects_option, score_range_option, any_score_option,
                            group_key_option, max_line_option)):
        fn = option(fn)
    return fn


def default_rejects(on_error: str, rejects: str | None, output: str) -> str | None:
    """The rejects file of a command writing OUTPUT: --rejects, else OUTPUT.rejects.jsonl (rejects.jsonl
    for stdout or a device); None unless --on-error report. It may not be the output itself (both would be
    renamed onto one path and one would be lost)."""
    if on_error != "report":
        return None
    if rejects is None:
        # Beside a regular output file; in the working folder for stdout or a device (/dev/null).
        special = output == "-" or (os.path.exists(output) and not os.path.isfile(output))
        rejects = "rejects.jsonl" if special else output + ".rejects.jsonl"
    same = rejects == output or (output != "-" and os.path.abspath(rejects) == os.path.abspath(output))
    if same or (output != "-" and os.path.exists(rejects) and os.path.exists(output)
                and os.path.samefile(rejects, output)):
        from grpo_fast.errors import ConfigError

        raise ConfigError(f"the rejects file {rejects} is the output file: choose another --rejects path")
    return rejects


def error_line(exc: BaseException) -> str:
    """`error: <message> (file F, line L, field X)`: how every command reports a GrpoError."""
    if isinstance(exc, GrpoError):
        where = ", ".join(x for x in (exc.file and f"file {exc.file}", exc.line and f"line {exc.line}",
                                      exc.field and f"field {exc.field}") if x)
        # The Rust reader's messages start with `FILE:LINE:` already.
        located = bool(exc.file) and exc.message.startswith(f"{exc.file}:")
        text = exc.message + (f" ({where})" if where and not located else "")
    elif isinstance(exc, click.ClickException):
        text = exc.format_message()
    else:
        text = str(exc)
    # One line whatever the message holds, so it can be grepped and read in a batch log.
    return f"{click.style('error:', fg='red')} " + " ".join(text.split("\n"))


def print_error(exc: BaseException) -> None:
    # Plain echo, never wrapped (rich would wrap at the console width) nor read as markup.
    click.echo(error_line(exc), err=True)


def handle_errors(fn: F) -> F:
    """Turn a GrpoError (or a click usage error raised by the command itself) into one `error:`
    line on stderr and exit status 2, with no traceback. Every command's errors go through here."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (GrpoError, click.UsageError) as e:
            print_error(e)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


class OneLineUsageError(click.UsageError):
    """A usage error shown like every other error: one `error:` line (and a pointer to --help)."""

    def show(self, file: Any = None) -> None:
        hint = f" (see {self.ctx.command_path} --help)" if self.ctx is not None else ""
        click.echo(error_line(self) + hint, err=True)


class Command(click.Command):
    """A click command whose option errors (`--data` missing a value, an unknown flag, a bad choice)
    print as one `error:` line with exit status 2, like the errors `handle_errors` reports."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if isinstance(exc, OneLineUsageError):
                raise
            raise OneLineUsageError(exc.format_message(), exc.ctx) from exc


def cli_text(text: str | None) -> str | None:
    """A prompt template or system prompt from the command line: `\\n` is a newline and `\\\\` one
    backslash (so `"{question}\\nPut the final answer in \\\\boxed{}."` works in any shell quoting);
    every other backslash stays as written (`\\boxed`, `\\frac`)."""
    if text is None:
        return None
    return re.sub(r"\\([\\n])", lambda m: "\n" if m.group(1) == "n" else "\\", text)


data_options = [
    click.option("--prompt-field", default=None,
                 help="Record field with the prompt (default: the first of prompt, question, problem, query, input)."),
    click.option("--answer-field", default=None,
                 help="Record field with the gold answer, for the verifier (default: the first of answer, solution, "
                      "gold, ground_truth, target). GSM8K's `#### 72` and MATH's \\boxed{} solutions work as they are."),
    click.option("--column", "columns", multiple=True, metavar="SRC=DST",
                 help="Rename a record field as it is read, e.g. --column problem=prompt (repeatable)."),
    click.option("--system-prompt", default=None, help="A system message before every prompt (\\n = newline)."),
    click.option("--prompt-template", default=None, metavar="TEXT",
                 help="Build each prompt from record fields, e.g. \"{question}\\nPut the final answer in \\\\boxed{}.\" "
                      "({field} = the record's field, \\n = newline); applied before the system prompt and the "
                      "chat template."),
]


def with_data_options(fn: F) -> F:
    for opt in reversed(data_options):
        fn = opt(fn)
    return fn


def data_format(prompt_field: str | None, answer_field: str | None, columns: tuple[str, ...],
                system_prompt: str | None, prompt_template: str | None) -> dict[str, Any]:
    """The data options as `load_task_inputs` keywords."""
    from grpo_fast.trainer.config import parse_mapping

    return dict(prompt_field=prompt_field, answer_field=answer_field,
                columns=parse_mapping("columns", list(columns)) if columns else None,
                system_prompt=cli_text(system_prompt), prompt_template=cli_text(prompt_template))


def byte_progress(disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable or not console.is_terminal,
        transient=True,
    )


def clean_json(obj: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    return obj


def print_json(obj: Any, err: bool = False) -> None:
    """JSON on stdout, or on stderr with `err` (when stdout carries the records, `-o -`)."""
    click.echo(json.dumps(clean_json(obj), indent=2), err=err)


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{100 * x:.1f}%"


sampler_options = [
    click.option("--sampler", type=click.Choice(["transformers", "vllm"]), default="transformers", show_default=True,
                 help="transformers (any device) or vllm (a vLLM engine; `--vllm-mode server` for a running "
                      "`grpo-fast vllm-serve`)."),
    click.option("--vllm-mode", type=click.Choice(["colocate", "server"]), default="colocate", show_default=True),
    click.option("--vllm-server-url", default="http://127.0.0.1:8000", show_default=True,
                 help="Server mode: where `grpo-fast vllm-serve` listens (token from $GRPO_VLLM_TOKEN)."),
    click.option("--vllm-gpu-memory-utilization", type=float, default=0.9, show_default=True,
                 help="Colocate: share of GPU memory the engine may take."),
]


def with_sampler_options(fn: F) -> F:
    for opt in reversed(sampler_options):
        fn = opt(fn)
    return fn


def build_cli_sampler(model: str, seed: int, *, sampler: str, vllm_mode: str, vllm_server_url: str,
                      vllm_gpu_memory_utilization: float, **params: Any) -> Any:
    """The sampler of `generate` / `eval`. A vLLM engine loads MODEL itself, so the transformers model
    is loaded only for the transformers sampler."""
    import torch
    from transformers import AutoTokenizer

    from grpo_fast.sampler.factory import build_sampler
    from grpo_fast.trainer.inputs import check_model, load_pretrained

    check_model(model)
    torch.manual_seed(seed)
    tok = load_pretrained(AutoTokenizer.from_pretrained, model, padding_side="left")
    lm = load_sampling_model(model) if sampler == "transformers" else _generation_config_holder(model)
    return build_sampler(sampler, model=lm, tokenizer=tok, model_path=model, seed=seed, vllm_mode=vllm_mode,
                         vllm_server_url=vllm_server_url,
                         vllm_gpu_memory_utilization=vllm_gpu_memory_utilization, **params)


def load_sampling_model(model: str) -> Any:
    """The model for the transformers sampler: on the GPU when there is one; a tiny CPU model runs
    on one thread (per-op overhead dominates it, see docs/training.md)."""
    import torch
    from transformers import AutoModelForCausalLM

    from grpo_fast.trainer.inputs import load_pretrained
    from grpo_fast.trainer.run import is_tiny

    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = load_pretrained(AutoModelForCausalLM.from_pretrained, model, dtype=torch.float32).to(device)
    if is_tiny(lm) and device == "cpu":
        torch.set_num_threads(1)
    return lm


def _generation_config_holder(model: str) -> Any:
    """Something with the checkpoint's `generation_config` (for its extra end-of-turn tokens)."""
    from types import SimpleNamespace

    try:
        from transformers import GenerationConfig

        return SimpleNamespace(generation_config=GenerationConfig.from_pretrained(model))
    except Exception:  # no generation_config.json: the tokenizer's EOS is the only stop token
        return SimpleNamespace(generation_config=None)
