"""Running untrusted code: the client of the `grpo-sandboxd` daemon (see docs/sandbox.md)."""

from grpo_fast.sandbox.client import (
    Client,
    SandboxBusy,
    default_socket_path,
    find_daemon_binary,
    run_request,
    tests_request,
)
from grpo_fast.sandbox.tests_format import normalize_tests

__all__ = [
    "Client",
    "SandboxBusy",
    "default_socket_path",
    "find_daemon_binary",
    "normalize_tests",
    "run_request",
    "tests_request",
]
