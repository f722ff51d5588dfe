"""`grpo-fast advantages`: write group-relative advantages into every response."""

from __future__ import annotations

import time

import click

from grpo_fast.advantages import METHODS, write_advantages
from grpo_fast.cli._common import (
    console,
    default_rejects,
    fmt,
    handle_errors,
    print_json,
    reading_options,
)


@click.command("advantages")
@click.argument("input", type=click.Path(allow_dash=True))
@click.option("-o", "--output", required=True, type=click.Path(allow_dash=True),
              help="Output file (- for stdout); may be INPUT itself (written aside, then renamed into place).")
@click.option("--method", type=click.Choice(METHODS), default="grpo", show_default=True,
              help="grpo: (r-mean)/(std+eps); dr_grpo: r-mean; rloo: leave-one-out; batch_std: std over the batch.")
@click.option("--eps", type=float, default=1e-4, show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON (to stderr when the records go to stdout with -o -).")
@reading_options
@handle_errors
def advantages(input, output, method, eps, as_json, on_error, rejects, score_range, any_score, group_key,
               max_line_bytes) -> None:
    """Read INPUT, add an `advantage` to every response, write OUTPUT (grouped form).

    Responses without a score get advantage 0; so does every response of a group whose
    scores are all equal or that has fewer than two scores. Flat input is written grouped.
    OUTPUT appears only when complete: it is written to a temporary file beside it and renamed
    at the end, so a failure or a kill leaves an existing OUTPUT as it was.

    \b
    Examples:
      grpo-fast advantages verified.jsonl -o with_adv.jsonl --method rloo
      grpo-fast advantages verified.jsonl -o verified.jsonl
      grpo-fast advantages verified.jsonl.zst -o - | head
    """
    rejects = default_rejects(on_error, rejects, output)
    start = time.perf_counter()
    result = write_advantages(
        input, output, method=method, eps=eps, on_error=on_error, rejects=rejects,
        score_range=None if any_score else tuple(score_range), group_key=group_key,
        max_line_bytes=max_line_bytes,
    )
    seconds = time.perf_counter() - start
    s, r = result["summary"], result["report"]
    # With -o - stdout carries the records and nothing else.
    to_stderr = output == "-"
    if as_json:
        summary = {"summary": s, "read": r, "seconds": seconds, "output": output}
        if rejects is not None:
            summary["rejects_file"] = rejects
        print_json(summary, err=to_stderr)
        return
    a = s["advantages"][method]
    where = f"; rejects written to {rejects}" if rejects is not None else ""
    console.print(
        f"wrote {s['groups']:,} groups / {s['responses']:,} responses to {output} in {seconds:.2f} s; "
        f"{method} advantage mean {fmt(a['mean'])} std {fmt(a['std'])}; "
        f"zero-std groups {s['zero_std_groups']:,}; rejected lines {r['rejected']:,}{where}",
        highlight=False, soft_wrap=True,
    )
