"""grpo-fast: Group Relative Policy Optimization on verifiable tasks.

The data path (JSONL records, group batching, advantages, statistics) runs in Rust
(`grpo_fast._native`); models, verifiers and the CLI are Python.
"""

from __future__ import annotations

from grpo_fast._version import __version__
from grpo_fast.errors import (
    ConfigError,
    DataError,
    GrpoError,
    GrpoIOError,
    SandboxError,
    VerifierError,
)

__all__ = [
    "ConfigError",
    "DataError",
    "GrpoError",
    "GrpoIOError",
    "SandboxError",
    "VerifierError",
    "__version__",
]
