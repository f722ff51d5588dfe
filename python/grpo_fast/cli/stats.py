"""`grpo-fast stats`: a one-screen summary of rollout files."""

from __future__ import annotations

import os
import time
from typing import Any

import click
from rich.table import Table

from grpo_fast import _native
from grpo_fast.cli._common import (
    byte_progress,
    console,
    fmt,
    handle_errors,
    pct,
    print_json,
    reading_options,
)
from grpo_fast.data import iter_batches


def summarize_file(path: str, eps: float, progress: Any = None, **read_kwargs: Any) -> tuple[dict, dict]:
    acc = _native.StatsAccumulator(eps)
    it = iter_batches(path, **read_kwargs)
    size = os.path.getsize(path) if path != "-" and os.path.exists(path) else None
    task = progress.add_task(os.path.basename(path), total=size) if progress else None
    for batch in it:
        acc.add(batch.scores, batch.offsets, batch.correct, batch.text_bytes)
        if progress is not None:
            progress.update(task, completed=batch.bytes_read)
    return acc.to_dict(), it.report()


def _size_distribution(sizes: dict[int, int]) -> str:
    items = sorted(sizes.items())
    shown = ", ".join(f"{k}x{v}" for k, v in items[:6])
    return shown + (f", ... ({len(items)} sizes)" if len(items) > 6 else "")


def render(path: str, s: dict, report: dict, seconds: float) -> Table:
    t = Table(title=f"[bold]{path}[/]", show_header=False, title_justify="left", min_width=60)
    t.add_column("metric", style="cyan")
    t.add_column("value", justify="right")
    t.add_row("prompts (groups)", f"{s['groups']:,}")
    t.add_row("responses", f"{s['responses']:,}")
    t.add_row("group size (size x count)", _size_distribution(s["group_sizes"]))
    t.add_row("mean score", fmt(s["mean_score"]))
    t.add_row("pass rate (score 1 or correct)", pct(s["pass_rate"]))
    t.add_row("verification rate", pct(s["verification_rate"]))
    t.add_row("zero-std groups", f"{s['zero_std_groups']:,} ({pct(s['zero_std_fraction'])})")
    t.add_row("groups with < 2 scores", f"{s['small_groups']:,}")
    t.add_row("mean within-group std", fmt(s["mean_group_std"]))
    for name, a in s["advantages"].items():
        t.add_row(f"advantage {name} mean / std", f"{fmt(a['mean'])} / {fmt(a['std'])}")
    t.add_row("mean response length (bytes)", fmt(s["mean_text_bytes"], 1))
    bad = report["rejected"]
    t.add_row("bad lines", f"[red]{bad:,}[/]" if bad else "0")
    t.add_row("blank lines", f"{report['blank_lines']:,}")
    t.add_row("time", f"{seconds:.2f} s")
    return t


def _combine_rejects(parts: list[str], final: str) -> None:
    """Writes the rejects of several inputs, in input order, as one file (put in place whole)."""
    from grpo_fast.data import RecordWriter

    with RecordWriter(final) as w:
        for part in parts:
            with open(part, encoding="utf-8") as f:
                batch: list[str] = []
                for line in f:
                    batch.append(line.rstrip("\n"))
                    if len(batch) >= 4096:
                        w.write_lines(batch)
                        batch = []
                if batch:
                    w.write_lines(batch)


@click.command("stats")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON to stdout instead of tables.")
@click.option("--eps", type=float, default=1e-4, show_default=True, help="eps added to the std in grpo advantages.")
@reading_options
@handle_errors
def stats(files, as_json, eps, on_error, rejects, score_range, any_score, group_key, max_line_bytes) -> None:
    """Summarise rollout FILES (.jsonl, .jsonl.gz, .jsonl.zst, - for stdin).

    Reports prompts, responses, group size distribution, mean score, pass rate, zero-std
    groups, advantage mean/std for every estimator, verification rate and bad lines.
    With --on-error report, bad lines go to FILE.rejects.jsonl per file, or all of them (in file
    order, each naming its file and line) to the one --rejects file.

    \b
    Examples:
      grpo-fast stats examples/arithmetic_groups.jsonl
      grpo-fast stats runs/*.jsonl.zst --json > stats.json
      grpo-fast stats messy.jsonl --on-error report --rejects bad.jsonl
    """
    # One --rejects file for several inputs: each reader writes a part beside it, joined at the end.
    shared = on_error == "report" and rejects is not None and len(files) > 1
    if shared:
        for path in files:
            if path != "-" and os.path.exists(path) and os.path.exists(rejects) and os.path.samefile(path, rejects):
                from grpo_fast.errors import ConfigError

                raise ConfigError(f"the rejects file {rejects} is the input file {path}: choose another --rejects path")
    folder, name = os.path.split(os.path.abspath(rejects)) if shared else ("", "")
    parts: list[str] = []
    results = []
    try:
        with byte_progress(disable=as_json) as progress:
            for i, path in enumerate(files):
                start = time.perf_counter()
                rej = rejects
                if on_error == "report" and rej is None:
                    # Beside a regular input file; in the working folder for stdin or a pipe.
                    rej = path + ".rejects.jsonl" if os.path.isfile(path) else "rejects.jsonl"
                read_to = rej
                if shared:
                    read_to = os.path.join(folder, f".{name}.part{i}-{os.getpid()}.jsonl")
                    parts.append(read_to)
                summary, report = summarize_file(
                    path, eps, progress,
                    on_error=on_error, rejects=read_to,
                    score_range=None if any_score else tuple(score_range), group_key=group_key,
                    max_line_bytes=max_line_bytes,
                )
                results.append((path, summary, report, time.perf_counter() - start, rej))
        if shared:
            _combine_rejects(parts, rejects)
    finally:
        for part in parts:
            if os.path.exists(part):
                os.unlink(part)
    if as_json:
        print_json([{"file": p, **s, "read": r, "seconds": sec, "rejects_file": rej}
                    for p, s, r, sec, rej in results])
        return
    for path, summary, report, sec, rej in results:
        console.print(render(path, summary, report, sec))
        if report["rejected"]:
            for e in report["first_rejects"][:5]:
                field = f" {e['field']}:" if e["field"] else ""
                console.print(f"  [red]line {e['line']}[/]:{field} {e['error']}", highlight=False)
        if rej is not None:
            console.print(f"  {report['rejected']:,} rejected lines with reasons written to {rej}",
                          highlight=False, soft_wrap=True)
