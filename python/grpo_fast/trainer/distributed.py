"""The trainer under FSDP: every forward/backward of a sharded policy is a collective, so all ranks
must run the same number of them. `make_trainer` in `run.py` picks this class when FSDP is on."""

from __future__ import annotations

from typing import Any

import torch

from grpo_fast.trainer import collectives
from grpo_fast.trainer.loop import GRPOTrainer


class FSDPTrainer(GRPOTrainer):
    """Sampling and greedy evaluation (whose decode steps differ between ranks) run with the weights
    gathered once; ranks with fewer micro-batches pad with zero-loss passes through the model (not
    DDP's parameter-sum pass, which would skip FSDP's gather/reduce-scatter)."""

    def collect(self, timings: dict[str, float]) -> Any:
        with collectives.gathered_params(self.model):
            return super().collect(timings)

    def evaluate(self, records: Any, num_samples: int = 1, seed: int | None = None) -> dict[str, float]:
        # greedy_accuracy goes through here too
        with collectives.gathered_params(self.model):
            return super().evaluate(records, num_samples, seed)

    def _micro_batches_all_ranks(self, local: int) -> int:
        for _ in range(super()._micro_batches_all_ranks(local) - local):
            ids = torch.full((1, 2), self.pad_id, dtype=torch.long, device=self.device)
            (self.ddp_model(input_ids=ids).logits.float().sum() * 0.0).backward()
        return local
