"""Running untrusted code: the client of the `grpo-sandboxd` daemon (see docs/sandbox.md)."""

from grpo_fast.sandbox.client import (
    Client,
    SandboxAuthError,
    SandboxBusy,
    SandboxUnavailable,
    default_socket_path,
    default_token,
    find_daemon_binary,
    run_request,
    tests_request,
)
from grpo_fast.sandbox.pool import Pool, parse_endpoints
from grpo_fast.sandbox.tests_format import normalize_tests

__all__ = [
    "Client",
    "Pool",
    "SandboxAuthError",
    "SandboxBusy",
    "SandboxUnavailable",
    "default_socket_path",
    "default_token",
    "find_daemon_binary",
    "normalize_tests",
    "parse_endpoints",
    "run_request",
    "tests_request",
]
