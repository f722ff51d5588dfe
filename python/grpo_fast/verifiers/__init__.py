"""Verifiers: objective scorers for responses (math, code, ...), a registry by name, and composition."""

from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, register_verifier

__all__ = ["Verdict", "Verifier", "VerifyItem", "register_verifier"]
