"""DDP support: process-group setup from torchrun / accelerate environment variables (gloo on CPU,
nccl on GPU) and the few collectives the trainer needs. Single-process runs never touch
torch.distributed."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(backend: str | None = None) -> bool:
    """Initialise the default process group when launched by torchrun / accelerate (WORLD_SIZE > 1).
    Returns True when running distributed."""
    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return True


def wrap_ddp(model: Any) -> Any:
    from torch.nn.parallel import DistributedDataParallel

    if torch.cuda.is_available() and next(model.parameters()).is_cuda:
        dev = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[dev.index])
    return DistributedDataParallel(model)


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sum scalars over ranks (identity without a process group)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def all_reduce_max(value: float) -> float:
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def barrier() -> None:
    if is_distributed():
        dist.barrier()
