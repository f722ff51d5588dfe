"""`grpo-fast doctor`: what is installed, what works, and what is missing."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
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


def daemon_decision(binary: str | None, socket: str | None = None) -> tuple[str, dict | None, str]:
    """What the sandbox daemon really does here, asked of the daemon itself: /health of one that
    answers on `socket` (default: the default socket), else `grpo-sandboxd --probe` (the decisions
    a daemon started now, by this user, would take; nothing is started). Returns (source, answer,
    error): answer has mode/privilege, pids, memory, kill and cgroup_note; None with an error."""
    from grpo_fast.sandbox.client import Client, default_socket_path

    sock = socket or default_socket_path()
    if os.path.exists(sock):
        try:
            with Client(sock, start=False) as c:
                iso = c.health().get("isolation", {})
            mode = iso.get("privilege") or ("root" if iso.get("mode") == "native" else iso.get("mode"))
            return f"running daemon at {sock}", {**iso, "mode": mode, "ok": True}, ""
        except Exception as e:  # a dead socket file or a daemon that does not answer: probe instead
            stale = f"{sock} does not answer ({e}); "
    else:
        stale = ""
    if binary is None:
        return "", None, stale + "grpo-sandboxd not found"
    try:
        p = subprocess.run([binary, "--probe"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{binary} --probe", None, stale + f"cannot run it: {e}"
    try:
        answer = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"{binary} --probe", None, stale + f"no answer (exit {p.returncode}): {p.stderr.strip()[:300]}"
    return f"{binary} --probe", answer, stale + (answer.get("error") or "")


def _sandbox_checks() -> list[Check]:
    out = []
    if sys.platform != "linux":
        return [Check("sandbox", False, f"needs Linux, this is {sys.platform}")]
    try:
        from grpo_fast.sandbox.client import find_daemon_binary

        binary = find_daemon_binary()
    except Exception:
        binary = shutil.which("grpo-sandboxd")
    out.append(Check("grpo-sandboxd", True if binary else None, str(binary) if binary else "not found",
                     "cargo build --release -p grpo-sandbox (or set GRPO_SANDBOXD)"))
    status = _read("/proc/self/status") or ""
    seccomp = any(line.startswith("Seccomp:") for line in status.splitlines())
    out.append(Check("seccomp", seccomp, "available" if seccomp else "kernel without seccomp"))
    root = os.geteuid() == 0
    source, answer, error = daemon_decision(binary)
    if answer is None:
        out.append(Check("sandbox isolation", False if binary else None, error or "unknown",
                         "build grpo-sandboxd, or start the daemon, to see what it would do"))
    else:
        mode = answer.get("mode", "?")
        ok = bool(answer.get("ok", True)) and mode in ("root", "rootless")
        if mode == "rootless":
            detail = ("rootless: unprivileged user namespaces; every slot shares this user's uid "
                      "(docs/sandbox.md, threat model)")
        elif mode == "root":
            detail = "root: each slot maps to unprivileged host uids of its own"
        else:
            detail = mode
        hint = error or ("" if root else "as root (or the systemd unit) each slot gets host uids of its own")
        out.append(Check("sandbox isolation", ok, f"{detail} [{source}]", hint))
        limits = f"pids: {answer.get('pids')}, memory: {answer.get('memory')}, kill: {answer.get('kill')}"
        full = str(answer.get("memory", "")).startswith("cgroup")
        hint = ("" if full else
                "memory is bounded per process only (RLIMIT_AS): run as the systemd unit (Delegate=yes) on "
                "cgroup v2, or as root with cgroup v1 memory")
        out.append(Check("sandbox cgroups", True if full else None, f"{limits}; {answer.get('cgroup_note', '')}",
                         hint))
    max_userns = _read("/proc/sys/user/max_user_namespaces")
    restrict = _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    clone = _read("/proc/sys/kernel/unprivileged_userns_clone")
    detail = ", ".join(f"{k}={v}" for k, v in [("user.max_user_namespaces", max_userns),
                                                ("kernel.unprivileged_userns_clone", clone),
                                                ("kernel.apparmor_restrict_unprivileged_userns", restrict)]
                       if v is not None)
    userns_ok = max_userns not in (None, "0")
    out.append(Check("user namespaces", userns_ok, detail or "unknown",
                     "sysctl -w user.max_user_namespaces=15000"))
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
