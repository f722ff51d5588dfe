"""DDP / FSDP support: process-group setup from torchrun / accelerate environment variables (gloo on
CPU, nccl on GPU) and the few collectives the trainer needs. Single-process runs never touch
torch.distributed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
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


_FSDP = False


def set_fsdp(enabled: bool) -> None:
    """Make `wrap_ddp` shard the policy with FSDP (FSDP2 `fully_shard`) instead of wrapping it in DDP."""
    global _FSDP
    _FSDP = bool(enabled)


def fsdp_enabled() -> bool:
    return _FSDP


def fsdp_modules(model: Any) -> list[Any]:
    """The FSDP-sharded modules of `model`, outermost first (empty when it is not sharded)."""
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


def is_fsdp(model: Any) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def shard_fsdp(model: Any) -> Any:
    """Shard `model` in place over all ranks: one FSDP unit per transformer block (the HF model's
    `_no_split_modules` classes) and one for the rest. Parameters, gradients and optimiser state are
    then held 1/world per rank; each unit's weights are all-gathered only around its forward/backward."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    dev = next(model.parameters()).device
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    mesh = init_device_mesh(dev.type, (dist.get_world_size(),))
    blocks = set(getattr(model, "_no_split_modules", None) or ())
    for m in [m for m in model.modules() if m is not model and type(m).__name__ in blocks]:
        fully_shard(m, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


@contextmanager
def gathered_params(model: Any) -> Iterator[None]:
    """FSDP: all-gather every unit's weights once on entry (every rank must enter) and keep them until
    exit, so the forwards inside -- generation, whose number of decode steps differs between ranks --
    issue no collectives. A no-op for an unsharded model."""
    mods = fsdp_modules(model)
    for m in mods:
        m.set_reshard_after_forward(False, recurse=False)
        m.unshard()
    try:
        yield
    finally:
        for m in mods:
            m.reshard()
            # shard_fsdp's setting: blocks free their gathered weights after forward, the root keeps them.
            m.set_reshard_after_forward(m is not model, recurse=False)


def full_state_dicts(model: Any, optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Full (unsharded) model and optimiser state dicts of an FSDP model, on CPU on rank 0 (empty on the
    other ranks). Collective: every rank must call it."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=opts), get_optimizer_state_dict(model, optimizer, options=opts)


def load_full_optimizer_state(model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Load a `full_state_dicts` optimiser state into the sharded optimiser (every rank passes it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def wrap_ddp(model: Any) -> Any:
    """DDP-wrap `model`, or shard it in place with FSDP after `set_fsdp(True)`."""
    if _FSDP:
        return shard_fsdp(model)
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
