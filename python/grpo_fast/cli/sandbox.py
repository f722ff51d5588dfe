"""`grpo-fast sandbox`: run the code sandbox daemon, query it, run a file in it."""

from __future__ import annotations

import json
import os
import sys

import click
from rich.table import Table

from grpo_fast.cli._common import console, handle_errors, print_json
from grpo_fast.errors import SandboxError
from grpo_fast.sandbox.client import Client, default_socket_path, find_daemon_binary
from grpo_fast.sandbox.pool import Pool
from grpo_fast.sandbox.tests_format import normalize_tests

# A file's language by its extension (anything else is Python).
EXTENSIONS = {"cpp": (".cpp", ".cc", ".cxx"), "c": (".c",), "rust": (".rs",), "java": (".java",),
              "javascript": (".js", ".mjs")}

socket_option = click.option(
    "--socket", "socket_path", default=None, metavar="PATH",
    help="The daemon's Unix socket. Default: $GRPO_SANDBOX_SOCKET, else /run/grpo-sandboxd/sandboxd.sock "
         "(root) or $XDG_RUNTIME_DIR/grpo-sandboxd/sandboxd.sock.",
)


@click.group()
def sandbox() -> None:
    """Run and query the code sandbox daemon (grpo-sandboxd).

    \b
    Examples:
      sudo grpo-fast sandbox serve                 # foreground, default socket
      grpo-fast sandbox status
      grpo-fast sandbox run solution.py --stdin "1 2"
      grpo-fast sandbox run solution.py --tests tests.json
    """


@sandbox.command()
@socket_option
@click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TOML configuration (see sandbox/grpo-sandboxd.toml).")
@click.option("--tcp", default=None, metavar="ADDR", help="Also listen on TCP, e.g. 127.0.0.1:8787.")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Token TCP clients must send (mode 0600; clients read $GRPO_SANDBOX_TOKEN_FILE).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM certificate chain: the TCP listener speaks TLS (clients: tls: endpoints, $GRPO_SANDBOX_CA_FILE).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The certificate's PEM private key (mode 0600).")
@click.option("--slots", type=int, default=None, help="Warm interpreters / concurrent runs (default: cores).")
@click.option("--insecure-no-isolation", is_flag=True,
              help="Run without namespaces (rlimits + seccomp only). Trusted code only.")
@click.option("--quiet", is_flag=True, help="Log warnings and errors only.")
def serve(socket_path, config, tcp, token_file, tls_cert, tls_key, slots, insecure_no_isolation, quiet) -> None:
    """Run grpo-sandboxd in the foreground (replaces this process).

    \b
    Examples:
      sudo grpo-fast sandbox serve
      sudo grpo-fast sandbox serve --socket /tmp/sbx.sock --slots 4 --tcp 127.0.0.1:8787
      sudo grpo-fast sandbox serve --tcp 0.0.0.0:8787 --token-file /etc/grpo-sandboxd/token \\
          --tls-cert /etc/grpo-sandboxd/cert.pem --tls-key /etc/grpo-sandboxd/key.pem
    """
    exe = find_daemon_binary()
    if exe is None:
        raise click.ClickException(
            "grpo-sandboxd not found: set GRPO_SANDBOXD or build it (cargo build --release -p grpo-sandbox)")
    argv = [exe, "--socket", socket_path or default_socket_path()]
    if config:
        argv += ["--config", config]
    if tcp:
        argv += ["--tcp", tcp]
    if token_file:
        argv += ["--token-file", token_file]
    if tls_cert:
        argv += ["--tls-cert", tls_cert]
    if tls_key:
        argv += ["--tls-key", tls_key]
    if slots:
        argv += ["--slots", str(slots)]
    if insecure_no_isolation:
        argv.append("--insecure-no-isolation")
    if quiet:
        argv.append("--quiet")
    sys.stdout.flush()
    os.execv(exe, argv)


@sandbox.command()
@socket_option
@click.option("--sandbox", "endpoints", default=None, metavar="ENDPOINTS",
              help="Several daemons (unix:/a.sock,tcp:host:8787): one row each.")
@click.option("--json", "as_json", is_flag=True, help="Print /health as JSON.")
@handle_errors
def status(socket_path, endpoints, as_json) -> None:
    """Show whether a daemon answers, its isolation layers and its limits.

    \b
    Examples:
      grpo-fast sandbox status
      grpo-fast sandbox status --json | jq .isolation
      grpo-fast sandbox status --sandbox tcp:10.0.0.2:8787,tcp:10.0.0.3:8787
    """
    if endpoints is not None:
        _pool_status(endpoints, as_json)
        return
    client = Client(socket_path, start=False)
    try:
        health = client.health()
    except SandboxError as exc:
        raise click.ClickException(f"no daemon: {exc}") from None
    if as_json:
        print_json(health)
        return
    iso = health.get("isolation", {})
    t = Table(title=f"grpo-sandboxd {health.get('version')} on {client.socket_path}", show_header=False)
    t.add_row("isolation", str(iso.get("mode")))
    layers = [k for k, v in iso.items() if v is True]
    t.add_row("layers", ", ".join(layers) or "-")
    t.add_row("processes / memory", f"{iso.get('pids', '-')} / {iso.get('memory', '-')}")
    t.add_row("slots (idle)", f"{health.get('slots')} ({health.get('idle_slots')})")
    t.add_row("queued", str(health.get("queued")))
    t.add_row("requests served", str(health.get("requests_served")))
    lim = health.get("limits", {})
    t.add_row("timeout (default/max)", f"{lim.get('default_timeout_ms')} / {lim.get('max_timeout_ms')} ms")
    t.add_row("memory (default/max)", f"{lim.get('default_memory_mb')} / {lim.get('max_memory_mb')} MiB")
    t.add_row("languages", ", ".join(health.get("languages", [])))
    console.print(t)


def _pool_status(endpoints: str, as_json: bool) -> None:
    health = Pool(endpoints).health()
    if as_json:
        print_json(health)
    else:
        t = Table(title=f"{len(health['endpoints'])} sandbox daemons: {health['status']}")
        for col in ("endpoint", "status", "isolation", "slots (idle)", "queued", "served"):
            t.add_column(col)
        for row in health["endpoints"]:
            if row.get("status") in ("down", "unauthorized"):
                t.add_row(row["endpoint"], f"[red]{row['status']}[/red]", row.get("error", ""), "-", "-", "-")
            else:
                t.add_row(row["endpoint"], str(row.get("status")), str(row.get("isolation", {}).get("mode")),
                          f"{row.get('slots')} ({row.get('idle_slots')})", str(row.get("queued")),
                          str(row.get("requests_served")))
        console.print(t)
    if health["status"] == "down":
        raise click.ClickException("no sandbox daemon answers")


@sandbox.command()
@click.argument("file", type=click.File("r"))
@socket_option
@click.option("--stdin", "stdin_text", default=None, help="Text fed to the program's stdin.")
@click.option("--stdin-file", type=click.File("r"), default=None, help="File fed to the program's stdin.")
@click.option("--tests", "tests_file", type=click.File("r"), default=None,
              help="JSON file with tests (any shape of a record's `tests` field, see docs/sandbox.md).")
@click.option("--entry-point", default=None, help="Function a HumanEval-style check(candidate) receives.")
@click.option("--timeout-ms", type=int, default=None, help="Per run / per test (clamped by the daemon).")
@click.option("--memory-mb", type=int, default=None, help="Address-space limit (clamped by the daemon).")
@click.option("--json", "as_json", is_flag=True, help="Print the daemon's full answer as JSON.")
@click.option("--language", default=None, metavar="LANG",
              help="python, cpp, c, rust, java or javascript (default: from FILE's extension: .cpp, .cc, .cxx, "
                   ".c, .rs, .java, .js, .mjs; else Python).")
@click.option("--sandbox", "endpoints", default=None, metavar="ENDPOINTS",
              help="Run on these daemons instead (unix:/a.sock,tcp:host:8787; a TCP token comes from "
                   "$GRPO_SANDBOX_TOKEN or $GRPO_SANDBOX_TOKEN_FILE).")
@handle_errors
def run(file, socket_path, stdin_text, stdin_file, tests_file, entry_point, timeout_ms, memory_mb, as_json,
        language, endpoints) -> None:
    """Run FILE (Python, C++ or C) in the sandbox, once or against tests; starts a daemon if none runs.

    \b
    Examples:
      grpo-fast sandbox run hello.py
      grpo-fast sandbox run sum.py --stdin "1 2"
      grpo-fast sandbox run add.py --tests '[{"input": "1 2", "output": "3"}]'   (a file with that JSON)
      grpo-fast sandbox run add.py --tests humaneval_tests.json --entry-point add --json
      grpo-fast sandbox run hello.py --sandbox tcp:10.0.0.2:8787
      grpo-fast sandbox run sol.cpp --tests tests.json
    """
    code = file.read()
    if language is None:
        name = str(getattr(file, "name", ""))
        language = next((lang for lang, exts in EXTENSIONS.items() if name.endswith(exts)), "python")
    client: Client | Pool = Pool(endpoints) if endpoints else Client(socket_path)
    try:
        if tests_file is not None:
            raw = json.load(tests_file)
            t = normalize_tests(raw, {"entry_point": entry_point} if entry_point else {})
            res = client.run_tests(code, t["tests"], test_code=t["test_code"], entry_point=t["entry_point"],
                                   language=language, timeout_ms=timeout_ms, memory_mb=memory_mb)
            if as_json:
                print_json(res)
            else:
                console.print(f"[bold]{res['passed']}/{res['total']} tests passed[/] (status {res['status']})")
                ff = res.get("first_failure")
                if ff:
                    console.print(f"first failure: test {ff['index']}: {ff['reason']}")
                    for key in ("check", "expected", "stdout", "stderr"):
                        if ff.get(key):
                            console.print(f"  {key}: {ff[key]!r}")
            if not res.get("all_passed"):
                sys.exit(1)
            return
        stdin = stdin_text if stdin_text is not None else (stdin_file.read() if stdin_file else "")
        res = client.run(code, stdin, language=language, timeout_ms=timeout_ms, memory_mb=memory_mb)
        if as_json:
            print_json(res)
        else:
            sys.stdout.write(res["stdout"])
            sys.stderr.write(res["stderr"])
            console.print(f"[dim]status {res['status']}, exit {res['exit_code']}, {res['wall_ms']:.1f} ms wall, "
                          f"{res['cpu_ms']:.1f} ms cpu, {res['max_rss_kb']} KiB max RSS[/]")
        if res["status"] != "ok":
            sys.exit(1)
    finally:
        if isinstance(client, Pool) or client.started_daemon:
            client.close()
