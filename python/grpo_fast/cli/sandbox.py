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


# ---- install-service ------------------------------------------------------------------------------

SYSTEM_UNIT_DIR = "/etc/systemd/system"
SYSTEM_CONFIG = "/etc/grpo-sandboxd.toml"
SYSTEM_SOCKET = "/run/grpo-sandboxd/sandboxd.sock"

# Hardening in the system unit, each checked against what the daemon does:
# - NoNewPrivileges: it writes its slots' uid maps itself as root (no setuid newuidmap), and the
#   slots' processes gain their capabilities from new user namespaces, not from execve.
# - ProtectSystem=strict: it writes only its runtime directory, /proc/<pid>/{uid,gid}_map and
#   /sys/fs/cgroup (API file systems strict leaves writable); ProtectControlGroups stays off.
# - ProtectHome=read-only: the interpreter may live in a home (a venv) and is only bound read-only.
# - Delegate=yes: the daemon makes its slots' cgroup v2 subtree below the service's own cgroup.
# Not set, on purpose: UMask (the keeper's staging folders must stay searchable by the slots'
# uids), RestrictNamespaces, PrivateUsers, ProtectControlGroups, MemoryDenyWriteExecute (the JVM
# and node JIT), CapabilityBoundingSet (each slot's interpreter is exec'ed as root of its user
# namespace and keeps only what the bounding set allows).
SYSTEM_HARDENING = """\
Delegate=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native
"""


def render_unit(binary: str, config: str, socket: str, user: bool = False) -> str:
    """The systemd unit for grpo-sandboxd: a system service as root (the default), or a user
    service in rootless mode (`user=True`, for `systemctl --user`)."""
    if user:
        head = "# systemd user unit for grpo-sandboxd in rootless mode: systemctl --user enable --now grpo-sandboxd\n"
        exec_start = f"{binary} --rootless --config {config} --socket {socket}"
        hardening = "Delegate=yes\nNoNewPrivileges=yes\n"
        wanted = "default.target"
        why = ("# Rootless: every slot maps only this user's uid (see docs/sandbox.md, threat model).\n"
               "# Delegate=yes: pids and memory limits where the user's systemd delegates controllers.\n")
    else:
        head = ("# systemd unit for grpo-sandboxd (`grpo-fast sandbox install-service` writes it with the\n"
                "# installed binary's path). Then: systemctl daemon-reload && systemctl enable --now grpo-sandboxd\n")
        exec_start = f"{binary} --config {config} --socket {socket}"
        hardening = SYSTEM_HARDENING
        wanted = "multi-user.target"
        why = ("# Root maps each slot to unprivileged host uids of its own and builds the private root with\n"
               "# bind mounts; programs run as unprivileged uids in fresh namespaces.\n")
    return f"""{head}[Unit]
Description=grpo-sandboxd: isolated execution of untrusted model-written code
Documentation=https://github.com/grpo-fast/grpo-fast/blob/main/docs/sandbox.md
After=local-fs.target

[Service]
Type=simple
{why}ExecStart={exec_start}
RuntimeDirectory=grpo-sandboxd
RuntimeDirectoryMode=0755
# reload: read server.token_file and the TLS files again
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=2
# Logs are JSON lines on stderr; journald keeps them.
StandardError=journal
LimitNOFILE=65536
{hardening}
[Install]
WantedBy={wanted}
"""


def render_config(socket: str, socket_group: str, slots: int | None, user: bool = False) -> str:
    """The daemon's config file as install-service writes it (every other key at its default;
    sandbox/grpo-sandboxd.toml lists them all)."""
    lines = ["# grpo-sandboxd configuration, written by `grpo-fast sandbox install-service`.",
             "# Every key is optional; sandbox/grpo-sandboxd.toml in the source lists them all.", "",
             "[server]"]
    if "%t" in socket:  # systemd's runtime folder: only the unit's command line can name it
        lines.append(f"# socket: given on the unit's command line ({socket})")
    else:
        lines.append(f"socket = {json.dumps(socket)}")
    if socket_group:
        lines.append("# Members of this group use the daemon through the socket (mode 0660), without TCP.")
        lines.append(f"socket_group = {json.dumps(socket_group)}")
    lines += ["", "[pool]", f"slots = {slots or 0}                      # 0 = CPU cores"]
    lines += ["", "[isolation]", f"mode = {json.dumps('rootless' if user else 'root')}"]
    return "\n".join(lines) + "\n"


@sandbox.command("install-service")
@click.option("--user", "user_unit", is_flag=True,
              help="A `systemctl --user` unit in rootless mode (no root needed) instead of a system service.")
@click.option("--binary", default=None, metavar="PATH",
              help="grpo-sandboxd to run. Default: the one this installation finds (beside this interpreter).")
@click.option("--unit-dir", default=None, metavar="DIR",
              help=f"Where the unit goes. Default: {SYSTEM_UNIT_DIR}, or ~/.config/systemd/user with --user.")
@click.option("--config-path", default=None, metavar="FILE",
              help=f"Where the config goes. Default: {SYSTEM_CONFIG}, or ~/.config/grpo-sandboxd.toml with --user.")
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help=f"The daemon's socket. Default: {SYSTEM_SOCKET}, or %t/grpo-sandboxd/sandboxd.sock with --user.")
@click.option("--socket-group", default="", metavar="GROUP",
              help="Give the socket to this group (mode 0660) so its members (a trainer's user) can use it.")
@click.option("--slots", type=int, default=None, help="Warm interpreters / concurrent runs (default: cores).")
@click.option("--force", is_flag=True, help="Replace an existing config file (the unit is always rewritten).")
@click.option("--dry-run", is_flag=True, help="Print the unit and the config instead of writing them.")
@handle_errors
def install_service(user_unit, binary, unit_dir, config_path, socket_path, socket_group, slots, force,
                    dry_run) -> None:
    """Write the systemd unit (with this installation's grpo-sandboxd) and a config file.

    The system service runs as root with Delegate=yes (cgroup v2 limits below its own cgroup)
    and hardening options; --user writes a rootless user service. Nothing is started: the
    command prints what to run next.

    \b
    Examples:
      grpo-fast sandbox install-service --dry-run
      sudo grpo-fast sandbox install-service --socket-group grpo-sandbox
      grpo-fast sandbox install-service --user
    """
    from grpo_fast.files import atomic_write_text

    exe = binary or find_daemon_binary()
    if exe is None:
        raise click.ClickException(
            "grpo-sandboxd not found: pass --binary, set GRPO_SANDBOXD, or build it (cargo build --release -p grpo-sandbox)")
    exe = os.path.abspath(exe)
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise click.ClickException(f"--binary {exe} is not an executable file")
    if " " in exe:
        raise click.ClickException(f"{exe}: a path with spaces cannot go into ExecStart unquoted; link it elsewhere")
    home = os.path.expanduser("~")
    unit_dir = unit_dir or (os.path.join(home, ".config/systemd/user") if user_unit else SYSTEM_UNIT_DIR)
    config_path = os.path.abspath(config_path or (
        os.path.join(home, ".config/grpo-sandboxd.toml") if user_unit else SYSTEM_CONFIG))
    socket_path = socket_path or ("%t/grpo-sandboxd/sandboxd.sock" if user_unit else SYSTEM_SOCKET)
    if socket_group and not dry_run:
        import grp

        try:
            grp.getgrnam(socket_group)
        except KeyError:
            raise click.ClickException(
                f"no group {socket_group!r}: create it first (groupadd --system {socket_group})") from None
    unit = render_unit(exe, config_path, socket_path, user=user_unit)
    # The daemon reads the socket from the command line (ExecStart); the config's copy documents it.
    config = render_config(socket_path, socket_group, slots, user=user_unit)
    unit_path = os.path.join(unit_dir, "grpo-sandboxd.service")
    if dry_run:
        click.echo(f"# {unit_path}\n{unit}\n# {config_path}\n{config}", nl=False)
        return
    os.makedirs(unit_dir, exist_ok=True)
    atomic_write_text(unit_path, unit)
    wrote_config = force or not os.path.exists(config_path)
    if wrote_config:
        os.makedirs(os.path.dirname(config_path), exist_ok=True)
        atomic_write_text(config_path, config)
    ctl = "systemctl --user" if user_unit else "systemctl"
    console.print(f"wrote {unit_path}")
    console.print(f"wrote {config_path}" if wrote_config else f"kept {config_path} (--force replaces it)")
    console.print(f"next: {ctl} daemon-reload && {ctl} enable --now grpo-sandboxd")
    if socket_group:
        console.print(f"      usermod -aG {socket_group} TRAINER_USER   # then the trainer uses {socket_path}")
