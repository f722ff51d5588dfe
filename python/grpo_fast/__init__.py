"""grpo-fast: Group Relative Policy Optimization on verifiable tasks.

The data path (JSONL records, group batching, advantages, statistics) runs in Rust
(`grpo_fast._native`); models, verifiers and the CLI are Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grpo_fast._version import __version__
from grpo_fast.errors import (
    ConfigError,
    DataError,
    GrpoError,
    GrpoIOError,
    SandboxError,
    VerifierError,
)

# Everything but the errors loads on first use: the data path imports numpy (~0.1 s), the
# verifiers sympy and friends, and `import grpo_fast.sandbox` (a client, a CLI start) needs neither.
_LAZY = {
    "ADVANTAGE_METHODS": ("grpo_fast.advantages", "METHODS"),
    "advantage_details": ("grpo_fast.advantages", "advantage_details"),
    "compute_advantages": ("grpo_fast.advantages", "compute_advantages"),
    "group_offsets": ("grpo_fast.advantages", "group_offsets"),
    "group_stats": ("grpo_fast.advantages", "group_stats"),
    "write_advantages": ("grpo_fast.advantages", "write_advantages"),
    "GroupBatch": ("grpo_fast.data", "GroupBatch"),
    "RecordWriter": ("grpo_fast.data", "RecordWriter"),
    "iter_batches": ("grpo_fast.data", "iter_batches"),
    "iter_records": ("grpo_fast.data", "iter_records"),
    "read_groups": ("grpo_fast.data", "read_groups"),
    "write_records": ("grpo_fast.data", "write_records"),
    "build_verifier": ("grpo_fast.verifiers", "build_verifier"),
    "get_verifier": ("grpo_fast.verifiers", "get_verifier"),
    "math_reward": ("grpo_fast.rewards", "math_reward"),
    "code_reward": ("grpo_fast.rewards", "code_reward"),
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from grpo_fast.advantages import METHODS as ADVANTAGE_METHODS
    from grpo_fast.advantages import (
        advantage_details,
        compute_advantages,
        group_offsets,
        group_stats,
        write_advantages,
    )
    from grpo_fast.data import (
        GroupBatch,
        RecordWriter,
        iter_batches,
        iter_records,
        read_groups,
        write_records,
    )
    from grpo_fast.rewards import code_reward, math_reward
    from grpo_fast.verifiers import build_verifier, get_verifier


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module 'grpo_fast' has no attribute {name!r}")


__all__ = [
    "ADVANTAGE_METHODS",
    "ConfigError",
    "DataError",
    "GroupBatch",
    "GrpoError",
    "GrpoIOError",
    "RecordWriter",
    "SandboxError",
    "VerifierError",
    "__version__",
    "advantage_details",
    "build_verifier",
    "code_reward",
    "compute_advantages",
    "get_verifier",
    "group_offsets",
    "group_stats",
    "iter_batches",
    "iter_records",
    "math_reward",
    "read_groups",
    "write_advantages",
    "write_records",
]
