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
    "compute_advantages",
    "group_offsets",
    "group_stats",
    "iter_batches",
    "iter_records",
    "read_groups",
    "write_advantages",
    "write_records",
]
