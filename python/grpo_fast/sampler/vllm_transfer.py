"""Weight sync from the trainer into a vLLM engine through vLLM's own RL weight-update API
(`init_weight_transfer_engine` / `start_weight_update` / `update_weights` / `finish_weight_update`).

vLLM's built-in transfer backends (NCCL, CUDA IPC) need a GPU. This module adds one more backend,
`grpo_fast_file`, registered with vLLM's `WeightTransferEngineFactory` from a `vllm.general_plugins`
entry point (vLLM loads those in every one of its processes): the trainer writes the policy's
weights as one safetensors file (in /dev/shm when it exists) and the worker loads it with the
model's own `load_weights`, inside vLLM's layerwise reload like the IPC backend. It works on CPU and
GPU, in-process (colocate) and across processes (the server receives the file over HTTP).

Nothing here imports vLLM at module import time except `register()` and the engine class factory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BACKEND = "grpo_fast_file"


def register() -> None:
    """The `vllm.general_plugins` entry point: make `grpo_fast_file` a known transfer backend."""
    from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

    if BACKEND not in WeightTransferEngineFactory._registry:
        WeightTransferEngineFactory.register_engine(BACKEND, _engine_class())


def _engine_class() -> type:
    from dataclasses import dataclass

    from vllm.distributed.weight_transfer.base import (
        WeightTransferEngine,
        WeightTransferInitInfo,
        WeightTransferUpdateInfo,
    )

    @dataclass
    class FileInitInfo(WeightTransferInitInfo):
        pass

    @dataclass
    class FileUpdateInfo(WeightTransferUpdateInfo):
        path: str

    class FileWeightTransferEngine(WeightTransferEngine[FileInitInfo, FileUpdateInfo]):
        """Worker side: each `update_weights` names one safetensors file holding a full state dict
        in Hugging Face names; it is streamed tensor by tensor into `model.load_weights`."""

        init_info_cls = FileInitInfo
        update_info_cls = FileUpdateInfo

        def init_transfer_engine(self, init_info: FileInitInfo) -> None:
            return None  # no rendezvous: the file is the channel

        def start_weight_update(self) -> None:
            from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

            initialize_layerwise_reload(self.model)

        def finish_weight_update(self) -> None:
            from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

            finalize_layerwise_reload(self.model, self.model_config)

        def update_weights(self, update_info: dict[str, Any]) -> None:
            # The base class ends with torch.accelerator.synchronize(), which has nothing to
            # synchronise on a CPU-only host; loading from a file is synchronous anyway.
            self.receive_weights(self.parse_update_info(update_info))

        def receive_weights(self, update_info: FileUpdateInfo) -> None:
            self.model.load_weights(iter_safetensors(update_info.path, self.device))

        def shutdown(self) -> None:
            return None

    return FileWeightTransferEngine


def iter_safetensors(path: str | os.PathLike, device: Any = "cpu") -> Iterator[tuple[str, Any]]:
    """(name, tensor) pairs of a safetensors file, one tensor in memory at a time."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device=str(device)) as f:
        for name in f.keys():
            yield name, f.get_tensor(name)


def policy_state_dict(model: Any) -> dict[str, Any]:
    """The policy's weights under the names of the plain Hugging Face model, as vLLM loads them.

    A peft (LoRA) policy is merged for the copy and unmerged again, so the engine samples from
    exactly the weights the trainer scores; adapter tensors and peft's name prefixes are left out.
    A DDP wrapper is looked through."""
    model = getattr(model, "module", model)
    if hasattr(model, "merge_adapter") and hasattr(model, "get_base_model"):
        model.merge_adapter()
        try:
            raw = model.get_base_model().state_dict()
            return {_peft_name(k): v.detach().clone() for k, v in raw.items() if "lora_" not in k}
        finally:
            model.unmerge_adapter()
    return {k: v.detach() for k, v in model.state_dict().items()}


def _peft_name(name: str) -> str:
    return name.replace(".base_layer.", ".")


def shared_tmp_dir() -> str:
    """/dev/shm when it is a writable directory (weights then never touch a disk), else the temp dir."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return str(shm)
    return tempfile.gettempdir()


def write_weights(model: Any, dtype: Any = None, directory: str | None = None) -> Path:
    """Write the policy's weights to a fresh safetensors file (cast to `dtype`, the engine's dtype,
    so the file is no bigger than the engine's copy) and return its path. The caller deletes it."""
    import torch
    from safetensors.torch import save_file

    state = policy_state_dict(model)
    out: dict[str, torch.Tensor] = {}
    seen: dict[int, str] = {}
    for k, v in state.items():
        t = v.to(dtype) if dtype is not None and v.is_floating_point() else v
        # Tied weights share storage; safetensors refuses shared tensors, so each gets its own copy.
        ptr = t.data_ptr()
        t = t.clone() if ptr in seen else t
        seen[ptr] = k
        out[k] = t.contiguous().cpu()
    fd, name = tempfile.mkstemp(prefix="grpo-fast-weights-", suffix=".safetensors",
                                dir=directory or shared_tmp_dir())
    os.close(fd)
    try:
        save_file(out, name)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)
