"""grpo-fast: Group Relative Policy Optimization on verifiable tasks.

The data path (JSONL records, group batching, advantages, statistics) runs in Rust
(`grpo_fast._native`); models, verifiers and the CLI are Python.
"""

from __future__ import annotations

from grpo_fast._version import __version__
from grpo_fast.advantages import (
    METHODS as ADVANTAGE_METHODS,
)
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
from grpo_fast.errors import (
    ConfigError,
    DataError,
    GrpoError,
    GrpoIOError,
    SandboxError,
    VerifierError,
)

# Verifiers and reward functions import sympy and friends: load them on first use only, so
# `import grpo_fast` stays cheap for data-only scripts.
_LAZY = {
    "build_verifier": "grpo_fast.verifiers",
    "get_verifier": "grpo_fast.verifiers",
    "math_reward": "grpo_fast.rewards",
    "code_reward": "grpo_fast.rewards",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
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
