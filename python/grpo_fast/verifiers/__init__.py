"""Verifiers: objective scorers for responses (math, factual, format, code, ...), a registry by name,
and composition."""

from grpo_fast.verifiers import code as _code  # noqa: F401  (registers "code")
from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, register_verifier
from grpo_fast.verifiers.factual import FactualVerifier, KnowledgeBase
from grpo_fast.verifiers.format import FormatVerifier
from grpo_fast.verifiers.math import MathVerifier
from grpo_fast.verifiers.registry import (
    CompositeVerifier,
    FunctionVerifier,
    PartSpec,
    available,
    build_verifier,
    check_fields,
    get_verifier,
    load_config,
    parse_spec,
)
from grpo_fast.verifiers.routing import PerRecordVerifier

__all__ = [
    "CompositeVerifier",
    "FactualVerifier",
    "FormatVerifier",
    "FunctionVerifier",
    "KnowledgeBase",
    "MathVerifier",
    "PartSpec",
    "PerRecordVerifier",
    "Verdict",
    "Verifier",
    "VerifyItem",
    "available",
    "build_verifier",
    "check_fields",
    "get_verifier",
    "load_config",
    "parse_spec",
    "register_verifier",
]
