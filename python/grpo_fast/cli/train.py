"""`grpo-fast train`: GRPO online (sample -> verify -> update) or offline (already-scored groups)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from grpo_fast.cli._common import Command, handle_errors, with_data_options
from grpo_fast.cli.tool_options import TOOL_FIELDS, with_tool_options

# CLI flag -> GRPOConfig field, for the flags that are plain overrides.
# Kept in step with grpo_fast.trainer.checkpoint.OVERWRITE_HELP (not imported: --help stays light).
_OVERWRITE_HELP = ("checkpoint-N folders, checkpoint-best, config.json, metrics.jsonl, completions.jsonl, curves.png, "
                   "tensorboard/ and wandb/ (and temporaries of unfinished saves); other files are kept")

_FLAG_FIELDS = {
    "model": "model", "data": "data", "verifier": "verifier", "toy": "toy", "out": "output_dir",
    "prompt_field": "prompt_field", "answer_field": "answer_field", "system_prompt": "system_prompt",
    "prompt_template": "prompt_template", "chat_template": "use_chat_template", "max_steps": "max_steps", "lr": "learning_rate",
    "group_size": "num_generations", "prompts_per_step": "prompts_per_step", "beta": "beta",
    "epsilon": "epsilon", "epsilon_high": "epsilon_high", "loss_type": "loss_type",
    "advantage_method": "advantage_method", "temperature": "temperature",
    "max_completion_length": "max_completion_length", "num_iterations": "num_iterations",
    "seed": "seed", "save_steps": "save_steps", "importance_sampling_level": "importance_sampling_level",
    "dynamic_sampling": "dynamic_sampling", "zero_advantages": "zero_advantages", "fsdp": "fsdp",
    "sampler": "sampler", "vllm_mode": "vllm_mode", "vllm_server_url": "vllm_server_url",
    "vllm_gpu_memory_utilization": "vllm_gpu_memory_utilization", "bf16": "bf16",
    "micro_batch_size": "micro_batch_size", "gradient_checkpointing": "gradient_checkpointing",
    "eval_data": "eval_data", "eval_steps": "eval_steps", "wandb_offline": "wandb_offline",
    **TOOL_FIELDS,
}


def _join_verifiers(ctx: Any, param: Any, value: tuple[str, ...]) -> str | None:
    """`--verifier math=0.9 --verifier format=0.1` and `--verifier math=0.9,format=0.1` alike."""
    return ",".join(v for v in value if v.strip()) or None


@click.command(name="train", cls=Command,
               context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--toy", type=click.Choice(["next_digit", "digit_sum", "secret_fn"]), default=None,
              help="Built-in toy task with a tiny random-init model (no download, runs on CPU); secret_fn "
                   "needs --tools python to be solvable.")
@click.option("--model", default=None, help="Policy: a local path or Hugging Face Hub id.")
@click.option("--data", default=None, type=click.Path(), help="Prompts (JSONL / Parquet / datasets dir); with --offline, scored groups.")
@click.option("--verifier", multiple=True, callback=_join_verifiers,
              help="Verifier name, or a weighted mix: `math=0.9,format=0.1` or the flag repeated "
                   "(`--verifier math=0.9 --verifier format=0.1`).")
@click.option("--offline", is_flag=True, default=False, help="Train on the scores already in --data; no sampling.")
@with_data_options
@click.option("--chat-template/--no-chat-template", default=None,
              help="Format string prompts with the tokenizer's chat template (default: on, except toy tasks).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML or TOML file of GRPOConfig fields (may name a `preset`).")
@click.option("--preset", type=click.Choice(["default", "deepseek-r1", "dapo", "dr-grpo"]), default=None,
              help="Start from a published recipe; flags given here still win.")
@click.option("--out", "-o", default=None, help="Output directory (metrics.jsonl, curves.png, checkpoints).")
@click.option("--max-steps", type=int, default=None, help="Optimisation steps.")
@click.option("--lr", type=float, default=None, help="Peak learning rate.")
@click.option("--group-size", "-G", type=int, default=None, help="Completions per prompt (num_generations).")
@click.option("--prompts-per-step", type=int, default=None, help="Prompts (groups) per step.")
@click.option("--beta", type=float, default=None, help="KL weight (0 = no reference model).")
@click.option("--epsilon", type=float, default=None, help="Lower clip range.")
@click.option("--epsilon-high", type=float, default=None, help="Upper clip range (clip-higher).")
@click.option("--loss-type", type=click.Choice(["grpo", "bnpo", "dapo", "dr_grpo"]), default=None)
@click.option("--advantage-method", type=click.Choice(["grpo", "dr_grpo", "rloo", "batch_std"]), default=None)
@click.option("--importance-sampling-level", type=click.Choice(["token", "sequence"]), default=None)
@click.option("--temperature", type=float, default=None)
@click.option("--max-completion-length", type=int, default=None)
@click.option("--num-iterations", type=int, default=None, help="Updates per generated batch.")
@click.option("--dynamic-sampling/--no-dynamic-sampling", default=None, help="Refill until groups have reward variance.")
@click.option("--seed", type=int, default=None)
@click.option("--fsdp", is_flag=True, default=None,
              help="Under torchrun: shard parameters, gradients and optimiser state (FSDP) instead of DDP.")
@click.option("--sampler", type=click.Choice(["transformers", "vllm"]), default=None,
              help="Who samples: the policy itself (transformers, default) or a vLLM engine synced after each step.")
@click.option("--vllm-mode", type=click.Choice(["colocate", "server"]), default=None,
              help="vLLM in this process on the same device(s) (colocate, default) or a `grpo-fast vllm-serve` server.")
@click.option("--vllm-server-url", default=None, help="Server mode: where `grpo-fast vllm-serve` listens.")
@click.option("--vllm-gpu-memory-utilization", type=float, default=None,
              help="Colocate: share of GPU memory the engine may take (default 0.3).")
@click.option("--bf16/--no-bf16", default=None, help="bf16 autocast for all forward passes; weights stay float32.")
@click.option("--micro-batch-size", type=int, default=None, help="Completions per forward/backward pass.")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None,
              help="Recompute activations in the backward pass to save memory.")
@click.option("--save-steps", type=int, default=None, help="Checkpoint every N steps.")
@click.option("--resume", default=None, help="Continue from a checkpoint directory, or `latest` under --out.")
@click.option("--overwrite", is_flag=True, default=False,
              help="Start afresh in a non-empty --out: first delete the previous run's " + _OVERWRITE_HELP + ". "
                   "Without it (or --resume) a non-empty --out is refused.")
@click.option("--report-to", multiple=True, type=click.Choice(["tensorboard", "wandb"]),
              help="Also log to TensorBoard / W&B when installed (W&B online when an API key is configured, "
                   "else offline; WANDB_MODE decides when set).")
@click.option("--wandb-offline", is_flag=True, default=None, help="W&B offline even with an API key (`wandb sync` later).")
@click.option("--eval-data", default=None, type=click.Path(),
              help="Held-out prompts: greedy eval/accuracy (pass@1) every --eval-steps steps and at the end.")
@click.option("--eval-steps", type=int, default=None, help="Evaluate on --eval-data every N steps (0: only at the end).")
@click.option("--zero-advantages", is_flag=True, default=None,
              help="Control run: all advantages 0 (the reward should stay at chance).")
@with_tool_options
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Set any GRPOConfig field, e.g. --set warmup_steps=10.")
@click.option("--print-config", is_flag=True, help="Print the effective config as JSON and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout at the end.")
@click.option("--quiet", "-q", is_flag=True, help="No live progress display.")
def train(toy: str | None, config_file: str | None, preset: str | None, sets: tuple[str, ...], resume: str | None,
          report_to: tuple[str, ...], print_config: bool, as_json: bool, quiet: bool, offline: bool,
          overwrite: bool, columns: tuple[str, ...], **flags: Any) -> None:
    """Train a policy with GRPO.

    Online: sample a group of completions per prompt, score them with a verifier (overlapped with
    generation), turn scores into group-relative advantages and take a clipped policy-gradient step.
    Offline (--offline): train on groups that already carry scores. Each run writes config.json,
    metrics.jsonl, curves.png and checkpoints under --out and ends with a summary table. A non-empty
    --out is refused unless --resume continues it or --overwrite starts afresh. Ctrl-C or SIGTERM
    finishes the current step, saves a checkpoint and curves, and exits 130 / 143 (twice: at once).

    \b
    Examples:
      # the one-minute CPU demo: a tiny model learns d= -> d+1
      grpo-fast train --toy next_digit --out runs/demo
      # the control: same run, advantages zeroed (stays at chance)
      grpo-fast train --toy next_digit --zero-advantages --out runs/control
      # the harder toy task with DAPO-style settings
      grpo-fast train --config examples/train_toy_digit_sum.toml --out runs/sum
      # a real model, online, with the math verifier and the DeepSeek-R1 recipe
      grpo-fast train --model Qwen/Qwen2.5-0.5B-Instruct --data prompts.jsonl --verifier math --preset deepseek-r1
      # MATH-style records (problem / solution), an R1-style instruction around each problem
      grpo-fast train --model ./ckpt --data math.jsonl --prompt-field problem --answer-field solution \\
        --prompt-template "{problem}\\nPut the final answer in \\\\boxed{}." --out runs/math
      # already-scored groups, offline
      grpo-fast train --model ./ckpt --data verified.jsonl --offline --out runs/offline
      # vLLM samples (on the same GPU), weights synced to it after every step
      grpo-fast train --model Qwen/Qwen2.5-0.5B-Instruct --data prompts.jsonl --sampler vllm --bf16
      # vLLM on other GPUs: start `grpo-fast vllm-serve --model M` there first
      grpo-fast train --model Qwen/Qwen2.5-0.5B-Instruct --data prompts.jsonl --sampler vllm --vllm-mode server
      # the model may run Python in the sandbox while it reasons (multi-turn rollouts)
      grpo-fast train --model Qwen/Qwen2.5-Math-1.5B --data math.jsonl --verifier math --tools python \
        --max-tool-calls 4 --max-completion-length 2048 --out runs/tir
      # continue a run
      grpo-fast train --toy next_digit --out runs/demo --max-steps 200 --resume latest
      # two CPU processes (DDP over gloo); the module form works where `grpo-fast` is a shell shim
      torchrun --nproc-per-node 2 -m grpo_fast.trainer.launch --toy next_digit --out runs/ddp
      # the same, with the policy sharded (FSDP) instead of replicated
      torchrun --nproc-per-node 2 -m grpo_fast.trainer.launch --toy next_digit --fsdp --out runs/fsdp
    """
    from rich.console import Console

    console = Console(stderr=True)
    try:
        result = _train(dict(flags, toy=toy, offline=offline or None), config_file=config_file, preset=preset,
                        sets=sets, columns=columns, report_to=report_to, print_config=print_config, resume=resume,
                        overwrite=overwrite, console=console, live=not quiet)
    except KeyboardInterrupt as exc:  # a second Ctrl-C / SIGTERM, or one before training started
        signum = getattr(exc, "signum", 2)
        console.print(f"[red]interrupted[/] ({'SIGTERM' if signum == 15 else 'SIGINT'}): stopped at once")
        sys.exit(128 + signum)
    if result is None:  # --print-config
        return
    from grpo_fast.trainer.collectives import is_distributed, rank_and_world

    rank = rank_and_world()[0]
    if is_distributed():
        import torch.distributed as dist

        dist.destroy_process_group()
    if as_json and rank == 0:  # under DDP only rank 0 holds the metrics
        last = result.history[-10:]
        mean = lambda k: (sum(h[k] for h in last if h.get(k) is not None) / max(1, sum(1 for h in last if h.get(k) is not None)))  # noqa: E731
        click.echo(json.dumps({
            "out_dir": str(result.out_dir), "steps": len(result.history),
            "reward_last10": mean("reward"), "reward_first": result.history[0].get("reward") if result.history else None,
            "greedy_accuracy": result.greedy_accuracy, "elapsed_s": result.elapsed_s,
            "checkpoint": str(result.final_checkpoint) if result.final_checkpoint else None,
            "warnings": result.warnings,
        }))
    if result.interrupted_by:  # stopped early by SIGINT / SIGTERM after saving: 130 / 143
        sys.exit(128 + int(result.interrupted_by))


@handle_errors
def _train(flags: dict[str, Any], *, config_file: str | None, preset: str | None, sets: tuple[str, ...],
           columns: tuple[str, ...], report_to: tuple[str, ...], print_config: bool, resume: str | None,
           overwrite: bool, console: Any, live: bool) -> Any:
    """The command's work under the one error handler (`error: ...`, exit 2): the config through the
    one resolver (`config.resolve_config`, as the Python API), then the run. None for --print-config."""
    from grpo_fast.cli._common import cli_text
    from grpo_fast.trainer.config import load_config_file, parse_mapping, parse_override, resolve_config

    overrides: dict[str, Any] = {}
    for key in ("system_prompt", "prompt_template"):
        flags[key] = cli_text(flags.get(key))
    for flag, fieldname in {**_FLAG_FIELDS, "offline": "offline"}.items():
        if flags.get(flag) is not None:
            overrides[fieldname] = flags[flag]
    if columns:
        overrides["columns"] = parse_mapping("columns", list(columns))
    if report_to:
        overrides["report_to"] = list(report_to)
    for text in sets:
        k, v = parse_override(text)
        overrides[k] = v
    cfg, explicit = resolve_config(load_config_file(config_file) if config_file else None, preset=preset,
                                   overrides=overrides)
    if print_config:
        click.echo(json.dumps(cfg.to_dict(), indent=2))
        return None
    from grpo_fast.trainer.run import run_training

    return run_training(cfg, resume=resume, overwrite=overwrite, console=console, live=live, explicit=explicit)
