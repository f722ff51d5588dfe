"""Verifiers: objective scorers for responses (math, code, ...), a registry by name, and composition."""

from grpo_fast.verifiers import code as _code  # noqa: F401  (registers "code")
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, register_verifier
from grpo_fast.verifiers.format import FormatVerifier
from grpo_fast.verifiers.math import MathVerifier
from grpo_fast.verifiers.registry import (
    CompositeVerifier,
    FunctionVerifier,
    available,
    build_verifier,
    get_verifier,
    parse_spec,
)

__all__ = [
    "CompositeVerifier",
    "FormatVerifier",
    "FunctionVerifier",
    "MathVerifier",
    "Verdict",
    "Verifier",
    "VerifyItem",
    "available",
    "build_verifier",
    "get_verifier",
    "parse_spec",
    "register_verifier",
]
