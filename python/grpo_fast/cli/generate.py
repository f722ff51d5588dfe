"""`grpo-fast generate`: sample a group of completions per prompt (transformers or vLLM)."""

from __future__ import annotations

import json
from typing import Any

import click

from grpo_fast.cli._common import Command, handle_errors, with_data_options, with_sampler_options
from grpo_fast.cli.tool_options import pop_tool_overrides, with_tool_options
from grpo_fast.data import RecordWriter


@click.command(
    name="generate",
    cls=Command,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option("--model", required=True, help="Policy: a local path (e.g. a training checkpoint) or Hub id.")
@click.option("--data", type=click.Path(), default=None, help="Prompts (JSONL / Parquet / datasets dir).")
@click.option(
    "--toy",
    type=click.Choice(["next_digit", "digit_sum"]),
    default=None,
    help="Use a toy task's prompts instead of --data.",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(),
    help="Groups file to write (JSONL, .gz/.zst by extension).",
)
@click.option(
    "-n", "--num-generations", type=int, default=8, show_default=True, help="Completions per prompt."
)
@with_data_options
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--top-p", type=float, default=1.0, show_default=True)
@click.option("--top-k", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True, help="Prompts per generate call.")
@click.option("--limit", type=int, default=None, help="Only the first N prompts.")
@click.option(
    "--chat-template/--no-chat-template",
    default=True,
    show_default=True,
    help="Format string prompts with the tokenizer's chat template when it has one.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue a run of this output that was stopped (Ctrl-C, SIGTERM, kill -9, a crash): the groups "
    "it finished, kept in OUTPUT.partial, are not sampled again. Refused when the input or an option "
    "that decides the samples changed. With no earlier run, starts one.",
)
@with_sampler_options
@with_tool_options
@handle_errors
def generate(
    model: str,
    data: str | None,
    toy: str | None,
    output: str,
    num_generations: int,
    prompt_field: str | None,
    answer_field: str | None,
    columns: tuple[str, ...],
    system_prompt: str | None,
    prompt_template: str | None,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    batch_size: int,
    limit: int | None,
    chat_template: bool,
    seed: int,
    resume: bool,
    **sampler_opts: Any,
) -> None:
    """Sample NUM_GENERATIONS completions per prompt and write one grouped record per prompt:
    the input record plus `responses: [{text, num_tokens, finish_reason, logprob}]` (`logprob`: the
    completion's summed log-prob under the sampling distribution), ready for `grpo-fast verify`.
    With tools (--tools python) each response is a multi-turn rollout: `text` is the whole
    transcript, and `turns` (assistant and tool turns, each tool call with its status), `tool_calls`,
    `stop_reason` and `num_model_tokens` are added; `logprob` sums the model's tokens only.

    The groups go to OUTPUT.partial as they finish (synced after every batch); OUTPUT appears, whole, when
    every prompt is done. A run stopped by Ctrl-C or SIGTERM exits with 130 or 143 and says how far it got;
    the same command with --resume continues it (also after kill -9), sampling each remaining batch from
    the same seed as a run that never stopped would.

    \b
    Examples:
      grpo-fast generate --model runs/demo/train/checkpoint-150 --toy next_digit -n 4 -o groups.jsonl
      grpo-fast generate --model Qwen/Qwen2.5-0.5B-Instruct --data prompts.jsonl -n 8 -o groups.jsonl
      grpo-fast generate --model Qwen/Qwen2.5-0.5B-Instruct --data prompts.jsonl -n 8 --sampler vllm -o groups.jsonl
      grpo-fast generate --model ./ckpt --data gsm8k.jsonl --prompt-template "{question}\\nPut the final answer in \\\\boxed{}." -o groups.jsonl
      grpo-fast generate --model ./ckpt --data gsm8k.jsonl --tools python --max-tool-calls 4 -o groups.jsonl
      grpo-fast generate --model ./ckpt --data big.jsonl -n 16 -o groups.jsonl --resume   # after a stop
    """
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from grpo_fast.cli._common import data_format
    from grpo_fast.errors import ConfigError
    from grpo_fast.resume import (
        PartialRun,
        chunks,
        fingerprint,
        model_identity,
        run_until_stopped,
        sampler_identity,
    )
    from grpo_fast.trainer.inputs import check_model, load_task_inputs

    console = Console(stderr=True)
    for name, value in (("-n", num_generations), ("--batch-size", batch_size)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}", field=name.lstrip("-").replace("-", "_"))
    # The cheap checks (data, fields, model path, an earlier run to resume) before the model is loaded.
    fmt = data_format(prompt_field, answer_field, columns, system_prompt, prompt_template)
    inputs = load_task_inputs(
        toy=toy, data=data, need_verifier=False, limit=limit, use_chat_template=chat_template, **fmt
    )
    check_model(model)
    records = inputs.records
    if inputs.data.note:
        console.print(inputs.data.note, markup=False, highlight=False, soft_wrap=True)
    tool_overrides = pop_tool_overrides(sampler_opts)
    prompts = inputs.data.prompts(records)
    # What decides the samples; where the sandbox runs (tool_sandbox) does not.
    options = dict(
        model=model_identity(model),
        toy=toy,
        num_generations=num_generations,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        batch_size=batch_size,
        chat_template=chat_template,
        seed=seed,
        **fmt,
        **sampler_identity(sampler_opts, tool_overrides),
    )
    run = PartialRun(
        output,
        command="generate",
        options=options,
        keys=[fingerprint(r, p) for r, p in zip(records, prompts, strict=True)],
        resume=resume,
    )
    for note in run.notes:
        console.print(note, markup=False, highlight=False, soft_wrap=True)
    with run_until_stopped(run, console):
        direct = None if run.path is not None else RecordWriter(output)  # stdout or a device: as they come
        if run.done:
            console.print(
                f"resuming: {run.done} of {run.total} groups were finished in {run.path}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        if not run.complete:
            _sample_all(
                run,
                model,
                seed,
                records,
                prompts,
                num_generations,
                batch_size,
                tool_overrides,
                dict(
                    max_new_tokens=max_new_tokens,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=top_k,
                    use_chat_template=chat_template,
                    **sampler_opts,
                ),
                Progress(console=console),
                direct,
            )
        n_tokens = n_stop = 0
        with direct or RecordWriter(output) as w:
            for chunk in chunks(run.lines(), 1024):
                if direct is None:
                    w.write_lines(chunk)
                for line in chunk:
                    for r in json.loads(line)["responses"]:
                        n_tokens += r["num_tokens"]
                        n_stop += r["finish_reason"] == "stop"
        run.discard()
    total = len(records) * num_generations
    t = Table(title=f"generate -> {output}")
    t.add_column("prompts", justify="right")
    t.add_column("completions", justify="right")
    t.add_column("mean tokens", justify="right")
    t.add_column("stopped (EOS)", justify="right")
    t.add_row(
        str(len(records)), str(total), f"{n_tokens / max(total, 1):.1f}", f"{n_stop / max(total, 1):.0%}"
    )
    console.print(t)


def _sample_all(
    run: Any,
    model: str,
    seed: int,
    records: list[dict[str, Any]],
    prompts: list[Any],
    num_generations: int,
    batch_size: int,
    tool_overrides: dict[str, Any],
    params: dict[str, Any],
    progress: Any,
    direct: Any,
) -> None:
    """Samples the groups `run` has not finished, keeping each batch before the next."""
    from grpo_fast.cli._common import build_cli_sampler
    from grpo_fast.cli.tool_options import wrap_sampler
    from grpo_fast.resume import sample_batches
    from grpo_fast.rollout import Rollout

    sampler = build_cli_sampler(model, seed, **params)
    sampler = wrap_sampler(sampler, tool_overrides, params["max_new_tokens"])
    try:
        with progress:
            task = progress.add_task("generate", total=run.total, completed=run.done)

            def sample(a: int, b: int) -> list[dict[str, Any]]:
                out = []
                for g in sampler.generate(prompts[a:b], num_generations, records=records[a:b]):
                    rec = dict(g.record)
                    # A record without a `prompt` gets the one the model was given, so `verify` reads the file.
                    rec.setdefault("prompt", g.prompt if isinstance(g.prompt, str) else g.prompt_text)
                    rec["responses"] = [response_record(c, Rollout) for c in g.completions]
                    out.append(rec)
                return out

            def kept(lines: list[str]) -> None:
                if direct is not None:
                    direct.write_lines(lines)
                progress.advance(task, len(lines))

            sample_batches(run, 0, run.total, batch_size, seed, sample, kept)
    finally:
        sampler.close()


def response_record(c: Any, rollout_type: type) -> dict[str, Any]:
    """One completion as a `responses[]` entry; a multi-turn rollout also carries its turns."""
    lps = (
        [x for x, m in zip(c.logprobs, c.loss_mask, strict=True) if m]
        if (c.logprobs is not None and isinstance(c, rollout_type))
        else c.logprobs
    )
    out = {
        "text": c.text,
        "num_tokens": len(c.token_ids),
        "finish_reason": c.finish_reason,
        "logprob": float(sum(lps)) if lps is not None else None,
    }
    if isinstance(c, rollout_type):
        out.update(
            turns=c.transcript(),
            tool_calls=len(c.tool_calls),
            stop_reason=c.stop_reason,
            num_model_tokens=c.num_model_tokens,
        )
    return out
