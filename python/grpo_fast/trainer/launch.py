"""`python -m grpo_fast.trainer.launch [train options]`: the train command as a module, for launchers
that take a module rather than a script (`torchrun -m`, `accelerate launch -m`)."""

from grpo_fast.cli.train import train

if __name__ == "__main__":
    train(prog_name="grpo-fast train")
