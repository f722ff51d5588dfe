"""`grpo-fast doctor`: what is installed, what works, and what is missing."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import shutil
import sys
from dataclasses import dataclass

import click
from rich.markup import escape
from rich.table import Table

from grpo_fast.cli._common import console, print_json


@dataclass
class Check:
    name: str
    ok: bool | None  # None: optional and absent
    detail: str
    hint: str = ""


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _package(name: str, dist: str, required: bool, hint: str) -> Check:
    v = _version(dist)
    if v is None:
        return Check(name, False if required else None, "not installed", hint)
    return Check(name, True, v)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def checks() -> list[Check]:
    out = [Check("python", sys.version_info >= (3, 10), f"{platform.python_version()} ({sys.executable})")]
    try:
        from grpo_fast import _native

        out.append(Check("native extension", True, f"grpo_fast._native {_native.__version__}"))
    except ImportError as e:
        out.append(Check("native extension", False, str(e), "pip install -e . (builds the Rust core)"))
    for name, dist, required, hint in [
        ("numpy", "numpy", True, "pip install numpy"),
        ("sympy", "sympy", True, "pip install sympy"),
        ("latex2sympy2_extended", "latex2sympy2_extended", True, "pip install latex2sympy2_extended"),
        ("torch", "torch", False, "pip install 'grpo-fast[train]' for training and sampling"),
        ("transformers", "transformers", False, "pip install 'grpo-fast[train]'"),
        ("vllm", "vllm", False, "pip install 'grpo-fast[vllm]' (GPU sampling)"),
        ("peft", "peft", False, "pip install 'grpo-fast[lora]' (LoRA)"),
        ("matplotlib", "matplotlib", False, "pip install matplotlib (curves.png)"),
    ]:
        out.append(_package(name, dist, required, hint))
    if _version("torch"):
        try:
            torch = importlib.import_module("torch")
            if torch.cuda.is_available():
                names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
                out.append(Check("CUDA", True, f"{torch.version.cuda}: {names}"))
            else:
                out.append(Check("CUDA", None, "no GPU visible (CPU training and sampling still work)"))
        except Exception as e:  # a broken torch install should be reported, not crash doctor
            out.append(Check("CUDA", False, f"torch failed to import: {e}"))
    out.extend(_sandbox_checks())
    return out


def _sandbox_checks() -> list[Check]:
    out = []
    if sys.platform != "linux":
        return [Check("sandbox", False, f"needs Linux, this is {sys.platform}")]
    max_userns = _read("/proc/sys/user/max_user_namespaces")
    userns_ok = max_userns is not None and max_userns != "0"
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0" and os.geteuid() != 0:
        userns_ok = False
    out.append(Check("user namespaces", userns_ok, f"max_user_namespaces={max_userns}",
                     "enable user namespaces (sysctl user.max_user_namespaces)"))
    status = _read("/proc/self/status") or ""
    seccomp = any(line.startswith("Seccomp:") for line in status.splitlines())
    out.append(Check("seccomp", seccomp, "available" if seccomp else "kernel without seccomp"))
    cg2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    controllers = _read("/sys/fs/cgroup/cgroup.controllers") or ""
    out.append(Check("cgroup v2", True if cg2 else None,
                     f"controllers: {controllers or '-'}" if cg2 else "not mounted: memory limits fall back to RLIMIT_AS"))
    try:
        from grpo_fast.sandbox.client import find_daemon_binary  # type: ignore[attr-defined]

        binary = find_daemon_binary()
    except Exception:
        binary = shutil.which("grpo-sandboxd")
    out.append(Check("grpo-sandboxd", True if binary else None, str(binary) if binary else "not found",
                     "cargo build --release -p grpo-sandbox (or set GRPO_SANDBOXD)"))
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
    out.append(Check("sandbox python", bool(py), str(py), "install python3 for the code sandbox"))
    return out


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(as_json: bool) -> None:
    """Report the environment: native extension, versions, torch/CUDA, vLLM, sandbox prerequisites.

    Exits with status 1 when something required is missing.

    \b
    Examples:
      grpo-fast doctor
      grpo-fast doctor --json
    """
    results = checks()
    failed = [c for c in results if c.ok is False]
    if as_json:
        print_json([c.__dict__ for c in results])
    else:
        t = Table(title="grpo-fast doctor", title_justify="left")
        t.add_column("check", style="cyan")
        t.add_column("status")
        t.add_column("detail")
        t.add_column("fix")
        for c in results:
            mark = {True: "[green]ok[/]", False: "[red]missing[/]", None: "[yellow]optional[/]"}[c.ok]
            t.add_row(c.name, mark, escape(c.detail), escape(c.hint) if c.ok is not True else "")
        console.print(t)
        console.print(f"{len(failed)} problem(s)" if failed else "[green]all required parts present[/]")
    if failed:
        raise SystemExit(1)
