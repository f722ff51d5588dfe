"""Pieces shared by the commands: error display, progress bars, JSON output."""

from __future__ import annotations

import json
import math
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


def reading_options(fn: F) -> F:
    """The input options shared by commands that read rollout files: error policy, rejects file,
    score range and the flat-record group key."""
    for option in reversed((on_error_option, rejects_option, score_range_option, any_score_option,
                            group_key_option)):
        fn = option(fn)
    return fn


def handle_errors(fn: F) -> F:
    """Turn GrpoError into a clean one-line message and exit status 2 (no traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GrpoError as e:
            # Plain echo: one unwrapped line that users can grep and editors can jump to.
            click.echo(f"error: {e}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


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


def print_json(obj: Any) -> None:
    click.echo(json.dumps(clean_json(obj), indent=2))


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{100 * x:.1f}%"


def load_sampling_model(model: str, seed: int) -> tuple[Any, Any]:
    """(tokenizer, model) for the generate and eval commands: seeded, left-padded, on the GPU when
    there is one; tiny CPU models run on one thread (per-op overhead dominates them, see
    docs/training.md)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model, padding_side="left")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = AutoModelForCausalLM.from_pretrained(model).to(device)
    if sum(p.numel() for p in lm.parameters()) < 50_000_000 and device == "cpu":
        torch.set_num_threads(1)
    return tok, lm
