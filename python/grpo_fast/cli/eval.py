"""`grpo-fast eval`: accuracy of a model on prompts, scored by a verifier (greedy or sampled)."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from grpo_fast.cli._common import Command, handle_errors, with_data_options, with_sampler_options


@click.command(name="eval", cls=Command,
               context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--model", required=True, help="A local path (e.g. a training checkpoint) or Hub id.")
@click.option("--data", type=click.Path(), default=None, help="Prompts with gold fields (JSONL / Parquet / datasets dir).")
@click.option("--toy", type=click.Choice(["next_digit", "digit_sum"]), default=None, help="Evaluate on a toy task.")
@click.option("--verifier", default=None, help="Verifier name or mix (default: math; the toy's own with --toy).")
@click.option("-n", "--num-samples", type=int, default=1, show_default=True,
              help="1 = greedy decoding; > 1 = sampled, reports mean accuracy and pass@n.")
@with_data_options
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True, help="For -n > 1.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--limit", type=int, default=None)
@click.option("--chat-template/--no-chat-template", default=True, show_default=True)
@click.option("--output", "-o", type=click.Path(), default=None, help="Also write the scored groups here.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@with_sampler_options
@handle_errors
def eval_cmd(model: str, data: str | None, toy: str | None, verifier: str | None, num_samples: int,
             prompt_field: str | None, answer_field: str | None, columns: tuple[str, ...], system_prompt: str | None,
             prompt_template: str | None, max_new_tokens: int, temperature: float, batch_size: int,
             limit: int | None, chat_template: bool, output: str | None, seed: int, as_json: bool,
             **sampler_opts: Any) -> None:
    """Evaluate MODEL: generate for each prompt, verify, report accuracy, mean score and the share of
    completions with a verdict.

    \b
    Examples:
      grpo-fast eval --model runs/demo/train/checkpoint-150 --toy next_digit
      grpo-fast eval --model ./ckpt --data test.jsonl --verifier math -n 8 --temperature 0.7 --json
      grpo-fast eval --model ./ckpt --data math_test.jsonl --prompt-field problem --answer-field solution
    """
    from rich.console import Console
    from rich.table import Table

    from grpo_fast.cli._common import build_cli_sampler, data_format
    from grpo_fast.trainer.inputs import check_model, load_task_inputs
    from grpo_fast.verifiers.base import VerifyItem

    console = Console(stderr=True)
    if toy:
        chat_template = False  # the toy tokenizer has no chat template; toy prompts are raw text
    # The cheap checks (data, fields, verifier, model path) before the model is loaded.
    inputs = load_task_inputs(toy=toy, data=data, verifier=verifier, limit=limit, use_chat_template=chat_template,
                              **data_format(prompt_field, answer_field, columns, system_prompt, prompt_template))
    check_model(model)
    if inputs.toy is not None:
        max_new_tokens = min(max_new_tokens, inputs.toy.max_completion_length)
    records, ver = inputs.records, inputs.verifier
    if inputs.data.note:
        console.print(inputs.data.note, markup=False, highlight=False, soft_wrap=True)
    sampler = build_cli_sampler(model, seed, max_new_tokens=max_new_tokens, temperature=temperature,
                                use_chat_template=chat_template, **sampler_opts)
    scored = []
    for i in range(0, len(records), batch_size):
        recs = records[i:i + batch_size]
        # One sample per prompt is greedy decoding (temperature 0).
        groups = sampler.generate(inputs.data.prompts(recs), num_samples, records=recs,
                                  temperature=0.0 if num_samples == 1 else None)
        items = [VerifyItem(g.prompt_text, c.text, g.record) for g in groups for c in g.completions]
        verdicts = ver.verify_batch(items)
        k = 0
        for g in groups:
            vs = verdicts[k:k + len(g.completions)]
            k += len(g.completions)
            scored.append((g, vs))
    sampler.close()

    all_v = [v for _, vs in scored for v in vs]
    judged = [v for v in all_v if v.score is not None]
    correct = [bool(v.correct) if v.correct is not None else (v.score or 0) >= 1.0 for v in judged]
    res = {
        "model": model, "prompts": len(scored), "samples_per_prompt": num_samples,
        "accuracy": sum(correct) / len(judged) if judged else math.nan,
        "mean_score": sum(v.score for v in judged) / len(judged) if judged else math.nan,
        "verification_rate": len(judged) / max(len(all_v), 1),
    }
    if num_samples > 1:
        res[f"pass@{num_samples}"] = sum(any(v.correct for v in vs) for _, vs in scored) / max(len(scored), 1)
    if output:
        from grpo_fast.data import RecordWriter

        with RecordWriter(output) as w:
            for g, vs in scored:
                rec = dict(g.record)
                # A record without a `prompt` gets the one the model was given, so `verify` reads the file.
                rec.setdefault("prompt", g.prompt if isinstance(g.prompt, str) else g.prompt_text)
                rec["responses"] = [{"text": c.text, "score": v.score, "correct": v.correct, "reason": v.reason}
                                    for c, v in zip(g.completions, vs, strict=True)]
                w.write(rec)
    if as_json:
        click.echo(json.dumps(res))
    t = Table(title=f"eval {model}")
    for k in res:
        t.add_column(k, justify="right")
    t.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in res.values()])
    console.print(t)
