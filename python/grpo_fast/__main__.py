"""`python -m grpo_fast ...` is `grpo-fast ...` (handy under torchrun and where the console
script is a shell shim)."""

from grpo_fast.cli import main

main()
