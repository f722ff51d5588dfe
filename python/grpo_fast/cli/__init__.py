"""The `grpo-fast` command line. Subcommands live in their own modules and are imported lazily,
so `grpo-fast stats` never pays for importing torch."""

from __future__ import annotations

import importlib

import click

from grpo_fast import __version__

# name -> (module, attribute, one-line help shown in `grpo-fast --help`)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": ("grpo_fast.cli.generate", "generate", "Sample a group of responses per prompt."),
    "verify": ("grpo_fast.cli.verify", "verify", "Score responses with verifiers (math, code, ...)."),
    "train": ("grpo_fast.cli.train", "train", "Train a policy with GRPO (online or offline)."),
    "eval": ("grpo_fast.cli.eval", "eval_cmd", "Evaluate a model on prompts with a verifier."),
    "stats": ("grpo_fast.cli.stats", "stats", "Summarise rollout files: groups, scores, advantages."),
    "advantages": ("grpo_fast.cli.advantages", "advantages", "Write group-relative advantages into records."),
    "doctor": ("grpo_fast.cli.doctor", "doctor", "Report the environment and what is missing."),
    "sandbox": ("grpo_fast.cli.sandbox", "sandbox", "Run and query the code sandbox daemon."),
    "vllm-serve": ("grpo_fast.cli.vllm_serve", "vllm_serve", "Serve a vLLM engine for `train --vllm-mode server`."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        module_name, attr, help_text = _COMMANDS[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _unavailable(name, help_text)
        return getattr(module, attr)


def _unavailable(name: str, help_text: str) -> click.Command:
    @click.command(name=name, help=f"{help_text} (not yet available in this build)",
                   context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def cmd(args: tuple[str, ...]) -> None:
        raise click.ClickException(f"`grpo-fast {name}` is not yet available in this build")

    return cmd


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grpo-fast")
def main() -> None:
    """grpo-fast: Group Relative Policy Optimization on verifiable tasks.

    \b
    Data flow:
      prompts.jsonl --generate--> groups.jsonl --verify--> verified.jsonl --train--> checkpoint/

    \b
    Examples:
      grpo-fast stats examples/arithmetic_groups.jsonl
      grpo-fast verify --verifier math examples/arithmetic_groups.jsonl -o verified.jsonl
      grpo-fast doctor
    """
