"""`grpo-fast verify`: score every response of a rollout file with one or more verifiers."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grpo_fast.cli._common import (
    console,
    default_rejects,
    group_key_option,
    handle_errors,
    max_line_option,
    on_error_option,
    pct,
    print_json,
    rejects_option,
)
from grpo_fast.cli.verifier_options import verifier_choice, verifier_options
from grpo_fast.data import RecordWriter, iter_batches, response_record
from grpo_fast.errors import DataError
from grpo_fast.verifiers import VerifyItem, build_verifier, check_fields

# Response fields the verdict details may not overwrite.
_RESERVED = {"text", "score", "correct", "reason", "extracted"}


def _lacks_gold(verdict: Any) -> bool:
    """Whether the verdict (or a part of a composite) had no gold answer to compare with."""
    if verdict.reason == "no_gold":
        return True
    return any(c.reason == "no_gold" for c in (verdict.components or {}).values())


def _apply(resp: dict[str, Any], verdict: Any) -> None:
    resp["score"] = verdict.score
    resp["correct"] = verdict.correct
    resp["reason"] = verdict.reason
    if verdict.extracted is not None:
        resp["extracted"] = verdict.extracted
    for k, v in (verdict.details or {}).items():
        if k not in _RESERVED:
            resp[k] = v


@click.command("verify")
@click.argument("input", type=click.Path(allow_dash=True))
@click.option("-o", "--output", required=True, type=click.Path(allow_dash=True),
              help="Output file (- for stdout); may be INPUT itself (written aside, then renamed into place).")
@verifier_options
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes (default: all cores).")
@click.option("--timeout", type=click.FloatRange(min=0.01), default=3.0, show_default=True,
              help="Seconds per item for checks that may run long (symbolic math, code); overrun = timeout verdict.")
@click.option("--answer-field", default="answer", show_default=True, help="Record field with the gold answer.")
@click.option("--last-number-fallback", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True,
              help="math: use a response's last number when it marks no answer (auto: only for numeric golds).")
@click.option("--chunk-size", type=click.IntRange(min=1), default=8192, show_default=True,
              help="Responses verified per batch.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON (to stderr when the records go to stdout with -o -).")
@click.option("--language", default=None, metavar="LANG",
              help="Language of the programs for --verifier code: python (default); cpp, c, rust, java or "
                   "javascript where the sandbox daemon has the compiler (`grpo-fast sandbox status` lists "
                   "what it runs; an unknown or unavailable one stops before any work). A record's own "
                   "`language` field wins.")
@click.option("--sandbox", default=None, metavar="ENDPOINTS",
              help="Code verifier: sandbox daemons to spread the work over, e.g. "
                   "unix:/run/a.sock,tcp:10.0.0.2:8787 (default: $GRPO_SANDBOX, else the local daemon).")
@on_error_option
@rejects_option
@group_key_option
@max_line_option
@handle_errors
def verify(input, output, verifiers, workers, timeout, answer_field, last_number_fallback, chunk_size, as_json,
           language, sandbox, on_error, rejects, group_key, max_line_bytes, verifier_config,
           **verifier_flags) -> None:
    """Score every response of INPUT and write OUTPUT with `score`, `correct`, `reason`,
    `extracted` and the verifier's details added to each response. All other fields are kept.

    A response without a verdict (timeout, error, missing gold) gets `score: null`: it is counted
    in the summary and left out of training, never silently scored 0. When no response has a gold
    answer at all, the run fails (and writes no OUTPUT file). Flat input (one completion per line)
    keeps each line's fields, its gold answer included, for that line's verdict.

    OUTPUT appears only when complete (written beside it, then renamed), so a failure or a kill
    leaves an existing OUTPUT as it was. With -o - stdout carries only the records; the summary
    (and --json) goes to stderr.

    \b
    Examples:
      grpo-fast verify groups.jsonl -o verified.jsonl
      grpo-fast verify --verifier math=0.9 --verifier format=0.1 groups.jsonl.zst -o verified.jsonl.zst
      grpo-fast verify --verifier mypkg.graders:exact groups.jsonl -o - --timeout 10 --json
      grpo-fast verify --verifier format@gate --verifier math groups.jsonl -o verified.jsonl
      grpo-fast verify --verifier factual --kb capitals.csv qa.jsonl -o verified.jsonl
      grpo-fast verify --verifier format --schema person.schema.json extract.jsonl -o verified.jsonl
      grpo-fast verify --verifier-config verifiers.toml groups.jsonl -o verified.jsonl
    """
    rejects = default_rejects(on_error, rejects, output)
    # Workers import sympy in the background while the first chunk is read and fast-checked.
    options: dict[str, Any] = {"timeout": timeout, "answer_field": answer_field, "eager_workers": True,
                               "last_number_fallback": last_number_fallback}
    if workers is not None:
        options["workers"] = workers
    if sandbox is not None:
        options["sandbox"] = sandbox
    if language is not None:
        options["language"] = language
    start = time.perf_counter()
    reasons: Counter[str] = Counter()
    total = verified = correct = no_gold = groups = 0
    batches = iter_batches(
        input, batch_size=chunk_size, on_error=on_error, rejects=rejects, score_range=None,
        group_key=group_key, records=True, max_line_bytes=max_line_bytes,
    )
    progress = Progress(
        TextColumn("[bold]verify"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[done]:,} responses"),
        TextColumn("{task.fields[rate]:,.0f}/s"),
        TimeElapsedColumn(),
        console=console,
        disable=as_json or not console.is_terminal,
        transient=True,
    )
    choice = verifier_choice(verifiers, verifier_config, **verifier_flags)
    with build_verifier(**choice, **options) as verifier, RecordWriter(output) as writer, progress:
        task = progress.add_task("verify", total=None, done=0, rate=0.0)
        for batch in batches:
            records = batch.records or []
            items, targets = [], []
            for rec in records:
                prompt = rec.get("prompt")
                for resp in rec.get("responses") or []:
                    text = resp.get("text")
                    items.append(VerifyItem(prompt if isinstance(prompt, str) else "",
                                            text if isinstance(text, str) else "", response_record(rec, resp)))
                    targets.append(resp)
            if items and total == 0:
                check_fields(verifier, items)  # a mistyped --answer-field fails here, not as all no_gold
            verdicts = verifier.verify_batch(items) if items else []
            for resp, vd in zip(targets, verdicts, strict=False):
                _apply(resp, vd)
                reasons[vd.reason] += 1
                no_gold += _lacks_gold(vd)
                if vd.score is not None:
                    verified += 1
                    correct += vd.correct is True
            total += len(items)
            groups += len(records)
            writer.write_many(records)
            elapsed = time.perf_counter() - start
            progress.update(task, completed=batch.bytes_read, total=batch.bytes_total,
                            done=total, rate=total / elapsed if elapsed > 0 else 0.0)
        if total and no_gold == total:
            # Raised inside the writer's block: the output file is not put in place.
            raise DataError(
                f"no response in {input} has a gold answer: all {total:,} got no verdict (no_gold). "
                f"The gold is read from the field {answer_field!r} of each record, or of each line of flat "
                "input (--answer-field to read another)", file=input, field=answer_field,
            )
    seconds = time.perf_counter() - start
    report = batches.report()
    summary = {
        "verifier": verifier_config or "+".join(verifiers or ("math",)),
        "records": groups,
        "responses": total,
        "verified": verified,
        "correct": correct,
        "pass_rate": correct / verified if verified else None,
        # As in `stats`: the share of responses that got a verdict.
        "verification_rate": verified / total if total else None,
        "extraction_failures": reasons.get("no_answer", 0),
        "timeouts": reasons.get("timeout", 0),
        "errors": reasons.get("error", 0) + reasons.get("no_gold", 0) + reasons.get("not_in_kb", 0),
        "rejected_lines": report.get("rejected", 0),
        "reasons": dict(reasons),
        "responses_per_second": total / seconds if seconds > 0 else None,
        "seconds": seconds,
        "output": output,
    }
    if on_error == "report":
        summary["rejects"] = rejects
    # With -o - stdout carries the records and nothing else.
    to_stderr = output == "-"
    if as_json:
        print_json(summary, err=to_stderr)
        return
    table = Table(title=f"grpo-fast verify ({summary['verifier']})", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("verified / total", f"{verified:,} / {total:,}")
    table.add_row("verification rate", pct(summary["verification_rate"]))
    table.add_row("pass rate", pct(summary["pass_rate"]))
    table.add_row("extraction failures", f"{summary['extraction_failures']:,}")
    table.add_row("timeouts", f"{summary['timeouts']:,}")
    table.add_row("errors (incl. missing gold)", f"{summary['errors']:,}")
    table.add_row("rejected lines", f"{summary['rejected_lines']:,}")
    rate = summary["responses_per_second"]
    table.add_row("throughput", f"{rate:,.0f} responses/s" if rate else "-")
    table.add_row("wall time", f"{seconds:.2f} s")
    table.add_row("output", output)
    console.print(table)
    if on_error == "report":
        # A plain line: the table would cut a long path to the console's width.
        click.echo(f"{summary['rejected_lines']:,} rejected lines with reasons written to {rejects}", err=True)
