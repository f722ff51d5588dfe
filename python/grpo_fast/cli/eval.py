"""`grpo-fast eval`: pass@k, maj@k, accuracy, verification rate and length of a model on prompts
scored by a verifier, or of completions sampled elsewhere (`--from`); against a baseline when given."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from grpo_fast.cli._common import Command, handle_errors, with_data_options, with_sampler_options
from grpo_fast.cli.tool_options import with_tool_options
from grpo_fast.errors import ConfigError


@click.command(
    name="eval",
    cls=Command,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option("--model", default=None, help="A local path (e.g. a training checkpoint) or Hub id.")
@click.option(
    "--from",
    "from_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Evaluate completions sampled elsewhere instead of a model: grouped or flat records, verified "
    "(`grpo-fast verify` output) or, with --verifier, verified here.",
)
@click.option(
    "--data",
    type=click.Path(),
    default=None,
    help="Prompts with gold fields (JSONL / Parquet / datasets dir).",
)
@click.option(
    "--toy", type=click.Choice(["next_digit", "digit_sum"]), default=None, help="Evaluate on a toy task."
)
@click.option(
    "--verifier",
    default=None,
    help="Verifier name or mix (default: math; the toy's own with --toy; with --from: the stored verdicts).",
)
@click.option(
    "-n",
    "--num-samples",
    type=int,
    default=1,
    show_default=True,
    help="Completions per prompt: 1 = greedy decoding; > 1 = sampled at --temperature.",
)
@click.option(
    "-k",
    "ks",
    default=None,
    metavar="K[,K...]",
    help="pass@k and maj@k for these k, e.g. 1,8,16 (default: 1 and n). A prompt with fewer than k "
    "judged completions is left out of that k and counted as skipped.",
)
@click.option(
    "--baseline",
    default=None,
    metavar="MODEL",
    help="Also evaluate MODEL on the same prompts and settings and report the difference.",
)
@click.option(
    "--baseline-from",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --from: a verified file of the baseline's completions for the same prompts.",
)
@click.option(
    "--retention",
    type=float,
    default=0.95,
    show_default=True,
    help="The capability-retention gate: pass@1(model) / pass@1(baseline) must reach this.",
)
@with_data_options
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True, help="For -n > 1.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--limit", type=int, default=None, help="Evaluate the first N prompts only.")
@click.option("--chat-template/--no-chat-template", default=True, show_default=True)
@click.option(
    "--output", "-o", type=click.Path(), default=None, help="Also write the model's scored groups here."
)
@click.option(
    "--report", type=click.Path(dir_okay=False), default=None, help="Write the report as JSON here."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an evaluation of the same -o (else --report) file that was stopped: the groups it "
    "finished and scored, kept beside it in FILE.partial, are not sampled again. Refused when the input or an "
    "option that decides the samples changed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@with_sampler_options
@with_tool_options
@handle_errors
def eval_cmd(
    model: str | None,
    from_file: str | None,
    data: str | None,
    toy: str | None,
    verifier: str | None,
    num_samples: int,
    ks: str | None,
    baseline: str | None,
    baseline_from: str | None,
    retention: float,
    prompt_field: str | None,
    answer_field: str | None,
    columns: tuple[str, ...],
    system_prompt: str | None,
    prompt_template: str | None,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    limit: int | None,
    chat_template: bool,
    output: str | None,
    report: str | None,
    seed: int,
    resume: bool,
    as_json: bool,
    **sampler_opts: Any,
) -> None:
    """Evaluate MODEL: generate -n completions per prompt, verify them, and report accuracy, mean
    score, verification rate (share of completions with a verdict), mean length, unbiased pass@k
    (1 - C(n-c,k)/C(n,k)) and maj@k (is the most frequent answer of k completions right?) for each
    -k. With --baseline, the same for a second model on the same prompts, the difference, pass@1 above
    the baseline and capability retention (pass@1 / baseline pass@1). A table goes to stderr; --json
    prints the report on stdout and --report writes it to a file.

    With -o or --report, the scored groups are kept batch by batch in FILE.partial beside the first of
    them until the run ends: a run stopped by Ctrl-C or SIGTERM (exit status 130 or 143), kill -9 or a
    crash continues with the same command and --resume.

    \b
    Examples:
      grpo-fast eval --model runs/demo/train/checkpoint-150 --toy next_digit
      grpo-fast eval --model ./ckpt --data test.jsonl -n 16 -k 1,8,16 --temperature 0.7 --report eval.json
      grpo-fast eval --model ./ckpt --baseline Qwen/Qwen2.5-0.5B --data test.jsonl -n 8 -k 1,8
      grpo-fast eval --from verified.jsonl -k 1,4,8 --json
      grpo-fast eval --from groups.jsonl --verifier math -k 1,8 --baseline-from base_verified.jsonl
    """
    from rich.console import Console

    from grpo_fast.evaluation import parse_ks

    console = Console(stderr=True)
    run = None
    if num_samples < 1:
        raise ConfigError(f"-n must be >= 1, got {num_samples}", field="num_samples")
    if not 0 < retention:
        raise ConfigError(f"--retention must be > 0, got {retention}", field="retention")
    k_list = parse_ks(ks) if ks else sorted({1, num_samples})
    if from_file:
        if model or baseline or data or toy:
            raise ConfigError(
                "--from evaluates completions from a file: leave out --model, --baseline, --data and "
                "--toy (use --baseline-from for the baseline's file)",
                field="from",
            )
        main = _from_file(from_file, verifier, answer_field, limit, k_list, console)
        base = (
            _from_file(baseline_from, verifier, answer_field, limit, k_list, console)
            if baseline_from
            else None
        )
        if output:
            raise ConfigError(
                "-o writes the completions a model generated; with --from they are in the file already",
                field="output",
            )
        if resume:
            raise ConfigError("--resume continues sampling; --from samples nothing", field="resume")
    else:
        if not model:
            raise ConfigError(
                "give --model MODEL (or --from FILE with completions sampled elsewhere)", field="model"
            )
        if baseline_from:
            raise ConfigError(
                "--baseline-from goes with --from; to compare two models use --baseline MODEL",
                field="baseline_from",
            )
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {batch_size}", field="batch_size")
        main, base, run = _from_models(
            model,
            baseline,
            toy=toy,
            data=data,
            verifier=verifier,
            num_samples=num_samples,
            k_list=k_list,
            limit=limit,
            chat_template=chat_template,
            fmt=(prompt_field, answer_field, columns, system_prompt, prompt_template),
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            batch_size=batch_size,
            seed=seed,
            output=output,
            report=report,
            resume=resume,
            sampler_opts=sampler_opts,
            console=console,
        )
    try:
        res = build_report(main, base, k_list, retention)
        if report:
            from grpo_fast.files import atomic_write_text

            atomic_write_text(report, json.dumps(res, indent=2) + "\n")
    except BaseException:
        if run is not None:
            run.close()  # every group is kept: --resume writes the report without sampling
        raise
    if run is not None:
        run.discard()
    if as_json:
        click.echo(json.dumps(res))
    console.print(report_table(res))
    if report:
        console.print(f"report: {report}", markup=False, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# sources of verified samples


class _Evaluated:
    """One evaluated side (model or file): its label, samples per prompt, settings, length unit."""

    def __init__(
        self,
        label: str,
        source: str,
        keys: list[str],
        groups: list[list[Any]],
        length_unit: str,
        settings: dict[str, Any],
    ):
        self.label, self.source, self.keys, self.groups = label, source, keys, groups
        self.length_unit, self.settings = length_unit, settings


def _from_models(
    model: str,
    baseline: str | None,
    *,
    toy: str | None,
    data: str | None,
    verifier: str | None,
    num_samples: int,
    k_list: list[int],
    limit: int | None,
    chat_template: bool,
    fmt: tuple,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    seed: int,
    output: str | None,
    report: str | None,
    resume: bool,
    sampler_opts: dict[str, Any],
    console: Any,
) -> tuple[_Evaluated, _Evaluated | None, Any]:
    """The model's (and the baseline's) scored samples, and the run that kept them: its progress
    file, complete, stays until the caller has written the report (`discard`)."""
    from grpo_fast.cli._common import data_format
    from grpo_fast.cli.tool_options import pop_tool_overrides
    from grpo_fast.evaluation import samples_from_record
    from grpo_fast.resume import (
        PartialRun,
        chunks,
        fingerprint,
        keeps_progress,
        model_identity,
        run_until_stopped,
        sampler_identity,
    )
    from grpo_fast.trainer.inputs import check_model, load_task_inputs

    if toy:
        chat_template = False  # the toy tokenizer has no chat template; toy prompts are raw text
    # The cheap checks (data, fields, verifier, model paths, an earlier run) before any model is loaded.
    data_fmt = data_format(*fmt)
    inputs = load_task_inputs(
        toy=toy,
        data=data,
        verifier=verifier,
        limit=limit,
        use_chat_template=chat_template,
        **data_fmt,
    )
    check_model(model)
    if baseline:
        check_model(baseline)
    if inputs.toy is not None:
        max_new_tokens = min(max_new_tokens, inputs.toy.max_completion_length)
    if inputs.data.note:
        console.print(inputs.data.note, markup=False, highlight=False, soft_wrap=True)
    if num_samples < max(k_list):
        console.print(
            f"note: -n {num_samples} completions per prompt: pass@k and maj@k for k > {num_samples} "
            "are undefined",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    settings = {
        "num_samples": num_samples,
        "decoding": "greedy" if num_samples == 1 else "sampled",
        "temperature": 0.0 if num_samples == 1 else temperature,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "verifier": getattr(inputs.verifier, "name", None),
        "data": toy or data,
    }
    sampler_opts = dict(sampler_opts)
    tool_overrides = pop_tool_overrides(sampler_opts)  # --tools: each sample is a multi-turn rollout
    sides = [model, baseline] if baseline else [model]
    records = inputs.records
    prompts = inputs.data.prompts(records)
    n = len(records)
    # Items: every prompt for the model, then every prompt for the baseline.
    keys = [
        fingerprint(side, r, p) for side in range(len(sides)) for r, p in zip(records, prompts, strict=True)
    ]
    # What decides the scored samples; -k, --retention and where the sandbox runs do not.
    options = dict(
        model=model_identity(model),
        baseline=model_identity(baseline) if baseline else None,
        toy=toy,
        verifier=verifier,
        num_samples=num_samples,
        temperature=settings["temperature"],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        chat_template=chat_template,
        seed=seed,
        **data_fmt,
        **sampler_identity(sampler_opts, tool_overrides),
    )
    target = next((f for f in (output, report) if f and keeps_progress(f)), None)
    try:
        run = PartialRun(target, command="eval", options=options, keys=keys, resume=resume)
    except BaseException:
        inputs.verifier.close()
        raise
    for note in run.notes:
        console.print(note, markup=False, highlight=False, soft_wrap=True)
    with run_until_stopped(run, console):
        try:
            if run.done:
                console.print(
                    f"resuming: {run.done} of {run.total} groups were finished in {run.path}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            for s, which in enumerate(sides):
                if run.done < (s + 1) * n:  # a side already finished loads no model
                    _generate_and_verify(
                        which,
                        inputs,
                        prompts,
                        run,
                        s * n,
                        num_samples,
                        max_new_tokens,
                        temperature,
                        batch_size,
                        chat_template,
                        seed,
                        tool_overrides,
                        sampler_opts,
                    )
        finally:
            inputs.verifier.close()
        if output:
            from grpo_fast.data import RecordWriter

            with RecordWriter(output) as w:
                for chunk in chunks(run.lines(0, n), 1024):
                    w.write_lines(chunk)
        out = []
        for s, which in enumerate(sides):
            groups = [samples_from_record(rec, "tokens") for rec in run.records(s * n, (s + 1) * n)]
            out.append(_Evaluated(which, "model", [str(i) for i in range(n)], groups, "tokens", settings))
    return out[0], (out[1] if baseline else None), run


def _generate_and_verify(
    model: str,
    inputs: Any,
    prompts: list[Any],
    run: Any,
    lo: int,
    num_samples: int,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    chat_template: bool,
    seed: int,
    tool_overrides: dict[str, Any],
    sampler_opts: dict[str, Any],
) -> None:
    """Samples and scores MODEL's groups that `run` has not finished (items lo.. lo + prompts, item
    lo + i being prompt i), keeping each batch before the next."""
    from grpo_fast.cli._common import build_cli_sampler
    from grpo_fast.cli.tool_options import wrap_sampler
    from grpo_fast.resume import sample_batches
    from grpo_fast.verifiers.base import VerifyItem

    records, ver = inputs.records, inputs.verifier
    sampler = build_cli_sampler(
        model,
        seed,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        use_chat_template=chat_template,
        **sampler_opts,
    )
    sampler = wrap_sampler(sampler, dict(tool_overrides), max_new_tokens)

    def sample(a: int, b: int) -> list[dict[str, Any]]:
        # One sample per prompt is greedy decoding (temperature 0).
        groups = sampler.generate(
            prompts[a - lo : b - lo],
            num_samples,
            records=records[a - lo : b - lo],
            temperature=0.0 if num_samples == 1 else None,
        )
        items = [VerifyItem(g.prompt_text, c.text, g.record) for g in groups for c in g.completions]
        verdicts = ver.verify_batch(items)
        out, k = [], 0
        for g in groups:
            out.append(_scored_record(g, verdicts[k : k + len(g.completions)]))
            k += len(g.completions)
        return out

    try:
        # The same seeds for model and baseline: batch k of each draws from the same stream.
        sample_batches(run, lo, lo + len(records), batch_size, seed, sample)
    finally:
        sampler.close()


def _scored_record(g: Any, verdicts: list) -> dict[str, Any]:
    """A group with its verdicts, as -o writes it."""
    rec = dict(g.record)
    # A record without a `prompt` gets the one the model was given, so `verify` reads the file.
    rec.setdefault("prompt", g.prompt if isinstance(g.prompt, str) else g.prompt_text)
    rec["responses"] = [
        {
            "text": c.text,
            "num_tokens": len(c.token_ids),
            "finish_reason": c.finish_reason,
            "score": v.score,
            "correct": v.correct,
            "reason": v.reason,
            "extracted": v.extracted,
        }
        for c, v in zip(g.completions, verdicts, strict=True)
    ]
    return rec


def _from_file(
    path: str,
    verifier: str | None,
    answer_field: str | None,
    limit: int | None,
    k_list: list[int],
    console: Any,
) -> _Evaluated:
    """The samples of a file of grouped or flat records: the stored verdicts, or verdicts of
    `verifier` when one is named."""
    from grpo_fast.data import iter_records
    from grpo_fast.evaluation import length_unit_of, samples_from_record

    records = []
    for rec in iter_records(path, score_range=None):
        records.append(rec)
        if limit is not None and len(records) >= limit:
            break
    if not records:
        raise ConfigError(f"{path}: no records to evaluate", field="from")
    ver_name = None
    if verifier:
        ver_name = _verify_records(records, verifier, answer_field)
    else:
        verified = sum(_has_verdict(r) for rec in records for r in rec.get("responses") or [])
        if not verified:
            raise ConfigError(
                f"{path}: no response has a verdict (no `score`, `correct` or `reason`): verify it "
                "first (grpo-fast verify) or name a verifier here (--verifier math)",
                field="from",
            )
    unit = length_unit_of(records)
    groups = [samples_from_record(rec, unit) for rec in records]
    keys = [_record_key(rec, i) for i, rec in enumerate(records)]
    n_max = max((len(g) for g in groups), default=0)
    if n_max < max(k_list):
        console.print(
            f"note: {path}: at most {n_max} completions per prompt: pass@k and maj@k for k > {n_max} "
            "are undefined",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    settings = {"num_samples": n_max, "verifier": ver_name or "stored verdicts", "data": path}
    return _Evaluated(path, "file", keys, groups, unit, settings)


def _has_verdict(response: dict[str, Any]) -> bool:
    return response.get("score") is not None or response.get("correct") is not None or "reason" in response


def _record_key(rec: dict[str, Any], i: int) -> str:
    # Prompts match between a model's and a baseline's files by id, else by prompt text.
    for f in ("prompt_id", "id"):
        if rec.get(f) is not None:
            return f"{f}:{json.dumps(rec[f], sort_keys=True)}"
    p = rec.get("prompt")
    return (
        "prompt:" + (p if isinstance(p, str) else json.dumps(p, sort_keys=True)) if p is not None else f"#{i}"
    )


# Fields of a response that are its text or an earlier verdict, not record fields for the verifier.
_VERDICT_FIELDS = ("text", "score", "correct", "reason", "extracted")


def _verify_records(records: list[dict[str, Any]], spec: str, answer_field: str | None) -> str:
    """Verify every response of `records` in place (score, correct, reason, extracted)."""
    from grpo_fast.trainer.inputs import resolve_verifier
    from grpo_fast.trainer.prompt_data import ANSWER_FIELDS
    from grpo_fast.verifiers.base import VerifyItem

    field = answer_field or next(
        (
            f
            for f in ANSWER_FIELDS
            if any(f in r or any(f in x for x in r.get("responses") or []) for r in records)
        ),
        None,
    )
    ver = resolve_verifier(spec, **({"answer_field": field} if field else {}))
    try:
        items, where = [], []
        for rec in records:
            base = {k: v for k, v in rec.items() if k != "responses"}
            prompt = rec.get("prompt")
            for r in rec.get("responses") or []:
                # A flat line's own fields (its gold among them) stay on its response when grouped.
                own = {k: v for k, v in r.items() if k not in _VERDICT_FIELDS}
                items.append(
                    VerifyItem(
                        prompt if isinstance(prompt, str) else "",
                        r.get("text") or "",
                        {**base, **own} if own else base,
                    )
                )
                where.append(r)
        for r, v in zip(where, ver.verify_batch(items), strict=True):
            r.update(score=v.score, correct=v.correct, reason=v.reason, extracted=v.extracted)
        return str(getattr(ver, "name", spec))
    finally:
        ver.close()


# ---------------------------------------------------------------------------------------------
# the report


def build_report(
    main: _Evaluated, base: _Evaluated | None, k_list: list[int], retention: float
) -> dict[str, Any]:
    """The JSON report: the model's metrics at the top level (`model`, `prompts`, `accuracy`,
    `pass@k`, ...), and with a baseline `baseline` (its metrics) and `comparison`."""
    from grpo_fast.evaluation import compare, summarize

    main_groups, base_groups, note = main.groups, base.groups if base else None, None
    if base is not None and main.source == "file":
        # Files may hold different prompts: compare on the ones both have.
        common = set(main.keys) & set(base.keys)
        if not common:
            raise ConfigError(
                f"{main.label} and {base.label} have no prompt in common (matched by prompt_id, id "
                "or prompt text)",
                field="baseline_from",
            )
        bidx = {k: i for i, k in enumerate(base.keys)}
        pairs = [
            (g, base.groups[bidx[k]]) for k, g in zip(main.keys, main.groups, strict=True) if k in common
        ]
        main_groups, base_groups = [p[0] for p in pairs], [p[1] for p in pairs]
        dropped = len(main.keys) - len(pairs), len(base.keys) - len(pairs)
        if any(dropped):
            note = (
                f"compared on the {len(pairs)} prompts both files have ({dropped[0]} only in {main.label}, "
                f"{dropped[1]} only in {base.label})"
            )
    res: dict[str, Any] = {
        "model": main.label,
        "source": main.source,
        **main.settings,
        **summarize(main_groups, k_list, main.length_unit),
    }
    res["samples_per_prompt"] = main.settings["num_samples"]
    if base is not None:
        bres = {
            "model": base.label,
            "source": base.source,
            **base.settings,
            **summarize(base_groups or [], k_list, base.length_unit),
        }
        res["baseline"] = bres
        res["comparison"] = compare(res, bres, retention)
        if note:
            res["comparison"]["note"] = note
    return _json_safe(res)


def _json_safe(value: Any) -> Any:
    # JSON has no NaN: an undefined value is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _metric_rows(res: dict[str, Any]) -> list[str]:
    keys = ["accuracy", "mean_score", "verification_rate", "mean_length"]
    keys += sorted((k for k in res if k.startswith("pass@")), key=lambda k: int(k.split("@")[1]))
    keys += sorted((k for k in res if k.startswith("maj@")), key=lambda k: int(k.split("@")[1]))
    return keys


def _fmt(v: Any, key: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "pass" if v else "FAIL"
    if isinstance(v, float):
        return f"{v:.1f}" if key == "mean_length" else f"{v:.4f}"
    return str(v)


def report_table(res: dict[str, Any]) -> Any:
    """The report as a rich table: one row per metric, a column per model, the difference."""
    from rich.table import Table

    base = res.get("baseline")
    unit = res.get("length_unit", "tokens")
    t = Table(
        title=f"eval {res['model']}: {res['prompts']} prompts x {res['samples_per_prompt']} "
        f"({res['responses']} completions)"
    )
    t.add_column("metric")
    t.add_column("model", justify="right")
    if base is not None:
        t.add_column("baseline", justify="right")
        t.add_column("difference", justify="right")
    counts = res.get("k", {})
    for key in _metric_rows(res):
        label = f"mean_length ({unit})" if key == "mean_length" else key
        if "@" in key:
            c = counts.get(key.split("@")[1], {})
            if c.get("skipped"):
                label += f" ({c['prompts']} prompts, {c['skipped']} skipped: n < k)"
        row = [label, _fmt(res.get(key), key)]
        if base is not None:
            d = res["comparison"]["difference"].get(key)
            row += [_fmt(base.get(key), key), "n/a" if d is None else f"{d:+.4f}"]
        t.add_row(*row)
    if base is not None:
        comp = res["comparison"]
        t.add_section()
        t.add_row(
            "pass@1 above baseline",
            _fmt(comp["pass@1_above_baseline"]),
            "",
            _fmt(comp["gates"]["pass@1_above_baseline"]),
        )
        gate = next(k for k in comp["gates"] if k.startswith("capability_retention"))
        t.add_row(gate.replace("_", " "), _fmt(comp["capability_retention"]), "", _fmt(comp["gates"][gate]))
    return t
