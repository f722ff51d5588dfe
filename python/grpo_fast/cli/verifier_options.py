"""The command-line options that choose and configure verifiers (`--verifier`, `--verifier-config`,
and the options of the `factual`, `format` and `code` verifiers), shared by the commands that verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from grpo_fast.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

# option name -> (verifier it belongs to, constructor parameter)
_PART_FLAGS = {
    "kb": ("factual", "kb"),
    "kb_key": ("factual", "kb_key"),
    "factual_metric": ("factual", "metric"),
    "factual_threshold": ("factual", "threshold"),
    "format_mode": ("format", "mode"),
    "schema": ("format", "schema"),
    "schema_field": ("format", "schema_field"),
    "regex": ("format", "pattern"),
    "code_dedupe": ("code", "dedupe"),
}
_OPTIONS = [
    click.option(
        "--verifier",
        "verifiers",
        multiple=True,
        help="NAME, NAME=WEIGHT or NAME@gate / NAME@primary (math, factual, format, code, per_record, an "
        "entry point, or module:attr); repeat or comma-join to combine [default: math].",
    ),
    click.option(
        "--verifier-config",
        type=click.Path(dir_okay=False),
        default=None,
        help="A TOML, YAML or JSON file listing the verifiers, their weights, roles and options.",
    ),
    click.option(
        "--kb",
        type=click.Path(dir_okay=False),
        default=None,
        help="factual: knowledge base (JSONL, CSV or Parquet).",
    ),
    click.option(
        "--kb-key",
        type=click.Choice(["auto", "question", "id"]),
        default=None,
        help="factual: look records up by question or id [default: auto].",
    ),
    click.option(
        "--factual-metric",
        type=click.Choice(["exact", "f1"]),
        default=None,
        help="factual: exact match or token F1 [default: exact].",
    ),
    click.option(
        "--factual-threshold",
        type=click.FloatRange(min=0.0, max=1.0, min_open=True),
        default=None,
        help="factual: the F1 that counts as correct with --factual-metric f1 [default: 0.8].",
    ),
    click.option(
        "--format-mode",
        type=click.Choice(["r1", "json", "regex", "xml"]),
        default=None,
        help="format: what the response must be [default: json with --schema, regex with --regex, else r1].",
    ),
    click.option(
        "--schema",
        default=None,
        metavar="FILE|JSON",
        help="format: the JSON Schema responses must satisfy (a file or inline JSON).",
    ),
    click.option(
        "--schema-field", default=None, help="format: record field holding a per-record JSON Schema."
    ),
    click.option(
        "--regex", default=None, metavar="PATTERN", help="format: a regex the response must match in full."
    ),
    click.option(
        "--code-dedupe/--no-code-dedupe",
        default=None,
        help="code: run each distinct program of a batch once and give its copies the same verdict "
        "[default: on]; turn it off when programs draw random numbers or read the clock and copies "
        "should be judged independently.",
    ),
]


def verifier_options(fn: F) -> F:
    """Add the verifier-choosing options to a command (they arrive as keyword arguments)."""
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def verifier_choice(verifiers: tuple[str, ...], verifier_config: str | None, **flags: Any) -> dict[str, Any]:
    """The keyword arguments of `build_verifier` for the options above: specs or a config file, and
    the factual/format flags as options of those verifiers alone (a flag for a verifier that is not
    chosen is an error, not silently ignored)."""
    if verifier_config is not None and verifiers:
        raise ConfigError("give --verifier or --verifier-config, not both", field="verifier")
    part_options: dict[str, dict[str, Any]] = {}
    for key, value in flags.items():
        if value is None:
            continue
        if key not in _PART_FLAGS:
            raise TypeError(f"unknown verifier flag {key}")
        name, param = _PART_FLAGS[key]
        part_options.setdefault(name, {})[param] = value
    kwargs: dict[str, Any] = {"part_options": part_options}
    if verifier_config is not None:
        kwargs["config"] = verifier_config
    else:
        kwargs["specs"] = list(verifiers) or ["math"]
    return kwargs
