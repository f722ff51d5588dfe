"""The Python client and the daemon's API, against the real daemon."""

from __future__ import annotations

import os
import textwrap

import pytest

from grpo_fast.errors import DataError, SandboxError
from grpo_fast.sandbox import Client, normalize_tests


def test_health_reports_every_isolation_layer(sandbox):
    h = sandbox.health()
    iso = h["isolation"]
    assert iso["mode"] == "native"
    for layer in (
        "user_namespace",
        "pid_namespace",
        "mount_namespace",
        "network_namespace",
        "ipc_namespace",
        "uts_namespace",
        "readonly_root",
        "seccomp",
        "hard_rlimits",
        "empty_env",
        "unprivileged_uid",
    ):
        assert iso[layer] is True, layer
    assert iso["network_namespace_scope"] == "slot" and iso["sockets"] == "AF_UNIX only"
    assert iso["memory"] in ("cgroup-v1-memory+rlimit-as", "rlimit-as")
    assert iso["pids"] in ("rlimit-nproc", "cgroup-v1-pids+rlimit-nproc")
    assert h["slots"] == 2
    # What a client bounds a request's time with: a run may wait for a CPU up to wall_factor times
    # its limit, slots over cores rounded up.
    assert 1 <= h["cores"] <= os.cpu_count()
    assert h["wall_factor"] == max(1, -(-h["slots"] // h["cores"]))


def test_languages_lists_python_and_the_compiled_ones_whose_compiler_is_here(sandbox):
    import os

    langs = sandbox.languages()
    tools = (
        ("cpp", "/usr/bin/g++"),
        ("c", "/usr/bin/gcc"),
        ("rust", "/usr/bin/rustc"),
        ("java", "/usr/bin/javac"),
        ("javascript", "/usr/bin/node"),
    )
    compiled = [name for name, cc in tools if os.path.exists(cc)]
    assert [x["name"] for x in langs] == ["python", *compiled]
    assert langs[0]["version"].startswith("3.")
    assert [x["name"] for x in langs] == sandbox.health()["languages"]


def test_run_echoes_stdin(sandbox):
    r = sandbox.run("import sys\nprint(sys.stdin.read().upper(), end='')", stdin="héllo\n")
    assert r["status"] == "ok" and r["stdout"] == "HÉLLO\n" and r["exit_code"] == 0
    assert r["wall_ms"] > 0 and r["max_rss_kb"] > 0


def test_run_reports_the_programs_own_cpu_and_peak_memory(sandbox):
    """A plain run's CPU is counted from the end of its compile, and its peak RSS is the
    process's (both reported by the native end of the run)."""
    busy = sandbox.run("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2:\n    pass")
    held = sandbox.run("b = bytearray(96 << 20)\nfor i in range(0, len(b), 4096):\n    b[i] = 1")
    idle = sandbox.run("pass")
    assert busy["status"] == held["status"] == idle["status"] == "ok"
    assert 180 <= busy["cpu_ms"] < 5000, busy
    assert idle["cpu_ms"] < busy["cpu_ms"] / 4, idle
    assert held["max_rss_kb"] >= 96 * 1024 > idle["max_rss_kb"], (held, idle)


def test_run_waits_for_the_programs_threads_and_their_output(sandbox):
    code = (
        "import threading, time\n"
        "def late():\n    time.sleep(0.2)\n    print('late', flush=False)\n"
        "threading.Thread(target=late).start()\nprint('main')\n"
    )
    r = sandbox.run(code)
    assert r["status"] == "ok" and r["stdout"] == "main\nlate\n", r


@pytest.mark.parametrize(
    "code, status, exit_code",
    [
        ("raise ValueError('boom')", "runtime_error", 1),
        ("import sys\nsys.exit(3)", "runtime_error", 3),
        ("import sys\nsys.exit(0)", "ok", 0),
        ("import ctypes\nctypes.string_at(0)", "runtime_error", None),
        ("def f(:\n  pass", "runtime_error", 1),
    ],
    ids=["exception", "exit_code", "clean_exit", "signal", "syntax_error"],
)
def test_run_statuses(sandbox, code, status, exit_code):
    r = sandbox.run(code)
    assert r["status"] == status and r["exit_code"] == exit_code, r


def test_traceback_names_the_program_not_the_harness(sandbox):
    r = sandbox.run("def f():\n    1/0\nf()\n")
    assert "ZeroDivisionError" in r["stderr"] and 'File "main.py", line 2' in r["stderr"]
    assert "grpo-zygote" not in r["stderr"]


def test_files_are_written_and_fetched(sandbox):
    r = sandbox.run(
        "print(open('data/in.txt').read())\nopen('out.txt','w').write('result')\n"
        "open('data/new.txt','w').write('mine')",
        files={"data/in.txt": "payload"},
        fetch_files=["out.txt"],
    )
    assert r["stdout"] == "payload\n", r
    assert r["files"]["out.txt"]["b64"] == "cmVzdWx0"


def test_limits_are_clamped_to_the_daemon_maxima(sandbox):
    lim = sandbox.health()["limits"]
    r = sandbox.run("import resource\nprint(*resource.getrlimit(resource.RLIMIT_AS))", memory_mb=10**9)
    soft, hard = map(int, r["stdout"].split())
    assert soft == hard == lim["max_memory_mb"] << 20


def test_random_state_differs_between_runs(sandbox):
    outs = {sandbox.run("import random\nprint(random.random())")["stdout"] for _ in range(4)}
    assert len(outs) == 4


def test_stdin_stdout_tests_with_comparison_modes(sandbox):
    code = "a, b = map(float, input().split())\nprint(a / b)"
    tests = [{"stdin": "1 3", "expected_stdout": "0.3333333"}, {"stdin": "1 2", "expected_stdout": "0.5"}]
    assert sandbox.run_tests(code, tests, compare="float")["passed"] == 2
    assert sandbox.run_tests(code, tests, compare="whitespace")["passed"] == 1
    r = sandbox.run_tests(code, tests, compare="exact")
    assert r["passed"] == 0 and r["first_failure"]["reason"] == "wrong_output"


def test_call_style_tests(sandbox):
    code = "def add(a, b):\n    return a + b\ndef pair(a):\n    return (a, a)"
    r = sandbox.run_tests(
        code,
        [
            {"call": "add", "args": [1, 2], "expected": 3},
            {"call": "add", "args": [[1], [2]], "expected": [1, 2]},
            {"call": "pair", "args": [1], "expected": [1, 1]},
            {"call": "add", "args": ["a", "b"], "expected": "abc"},
        ],
    )
    assert [t["passed"] for t in r["tests"]] == [True, True, True, False], r
    assert r["pass_fraction"] == 0.75


def test_call_expecting_none(sandbox):
    """`"expected": null` is a test that the function returns None, not a missing expectation."""
    code = "def find(xs, x):\n    return xs.index(x) if x in xs else None\n"
    r = sandbox.run_tests(
        code,
        [
            {"call": "find", "args": [[1, 2], 3], "expected": None},
            {"call": "find", "args": [[1, 2], 2], "expected": None},
        ],
    )
    assert [t["passed"] for t in r["tests"]] == [True, False], r
    # APPS call-based data: `outputs: [null]`.
    apps = normalize_tests({"fn_name": "find", "inputs": [[[1], 5]], "outputs": [None]})
    assert apps["tests"] == [{"call": "find", "args": [[1], 5], "expected": None}]
    assert sandbox.run_tests(code, apps["tests"])["passed"] == 1
    with pytest.raises(DataError, match=r"tests\[0\]: a call test needs `expected`"):
        normalize_tests([{"call": "find", "args": [[1], 5]}])


def test_assert_style_humaneval_check(sandbox):
    code = "def add(a, b):\n    return a + b\n"
    test = textwrap.dedent("""
        METADATA = {}
        def check(candidate):
            assert candidate(1, 2) == 3
            assert candidate(-1, 1) == 0
            assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9
            assert candidate(2, 2) == 5
    """)
    r = sandbox.run_tests(code, test_code=test, entry_point="add")
    assert r["total"] == 4 and r["passed"] == 3, r
    assert r["first_failure"]["check"] == "assert candidate(2, 2) == 5"


def test_assert_style_with_loops_runs_as_one_test(sandbox):
    code = "def sq(x):\n    return x * x\n"
    test = "def check(candidate):\n    for i in range(5):\n        assert candidate(i) == i * i\n"
    assert sandbox.run_tests(code, test_code=test, entry_point="sq")["all_passed"]
    assert not sandbox.run_tests("def sq(x):\n    return x\n", test_code=test, entry_point="sq")["all_passed"]


def test_tuple_is_not_a_list_in_assertions(sandbox):
    r = sandbox.run_tests(
        "def f():\n    return (1, 2)\n", test_code="assert f() == [1, 2]\nassert f() == (1, 2)\n"
    )
    assert [t["passed"] for t in r["tests"]] == [False, True]


def test_each_test_runs_in_a_fresh_main_module(sandbox):
    code = "import sys\nseen = []\nseen.append(input())\nprint(len(seen))"
    tests = [{"stdin": str(i), "expected_stdout": "1"} for i in range(5)]
    assert sandbox.run_tests(code, tests)["passed"] == 5


def test_a_timeout_in_one_test_does_not_stop_the_others(sandbox):
    code = "n = int(input())\nwhile n == 0:\n    pass\nprint(n)"
    tests = [
        {"stdin": "1", "expected_stdout": "1"},
        {"stdin": "0", "expected_stdout": "0"},
        {"stdin": "2", "expected_stdout": "2"},
    ]
    r = sandbox.run_tests(code, tests, timeout_ms=300)
    assert [t["status"] for t in r["tests"]] == ["ok", "timeout", "ok"]


def test_compile_error_fails_every_test(sandbox):
    r = sandbox.run_tests("def f(:\n", [{"stdin": "", "expected_stdout": ""}])
    assert (
        r["status"] == "compile_error" and r["passed"] == 0 and "SyntaxError" in r["first_failure"]["stderr"]
    )


def test_bad_requests_are_clear_errors(sandbox):
    with pytest.raises(SandboxError, match="unsupported language"):
        sandbox.run("x", language="cobol")
    with pytest.raises(SandboxError, match="no tests"):
        sandbox.run_tests("print(1)", [])
    with pytest.raises(SandboxError, match="expected_stdout"):
        sandbox.run_tests("print(1)", [{"stdin": "1"}])


def test_batch_mixes_runs_and_tests_in_order(sandbox):
    items = [{"kind": "run", "code": f"print({i})"} for i in range(6)]
    items.insert(
        3, {"kind": "run_tests", "code": "print(input())", "tests": [{"stdin": "x", "expected_stdout": "x"}]}
    )
    out = sandbox.batch(items)
    assert [o.get("stdout") for o in out[:3]] == ["0\n", "1\n", "2\n"]
    assert out[3]["all_passed"] is True
    assert out[6]["stdout"] == "5\n"


def test_map_keeps_order_over_many_concurrent_batches(sandbox):
    items = [{"kind": "run", "code": f"print({i} * 2)"} for i in range(200)]
    out = sandbox.map(items, chunk_size=16)
    assert [o["stdout"] for o in out] == [f"{i * 2}\n" for i in range(200)]


def test_oversized_request_is_refused(sandbox):
    big = "x = 1\n" * (12 * 1024 * 1024)  # 72 MiB > 64 MiB default cap
    with pytest.raises(SandboxError, match=r"413|exceeds|dropped"):
        sandbox.run(big)
    assert sandbox.run("print('still here')")["stdout"] == "still here\n"


def test_client_without_daemon_and_without_start_fails_clearly(tmp_path):
    c = Client(str(tmp_path / "none.sock"), start=False)
    with pytest.raises(SandboxError, match="cannot reach"):
        c.health()


@pytest.mark.parametrize(
    "tests, record, want",
    [
        (
            [{"input": "1", "output": "2"}],
            {},
            {"tests": [{"stdin": "1", "expected_stdout": "2"}], "test_code": None},
        ),
        (
            {"inputs": ["1\n"], "outputs": ["2\n"]},
            {},
            {"tests": [{"stdin": "1\n", "expected_stdout": "2\n"}]},
        ),
        (
            {"fn_name": "f", "inputs": [[1, 2]], "outputs": [3]},
            {},
            {"tests": [{"call": "f", "args": [1, 2], "expected": 3}]},
        ),
        (["assert f(1) == 2", "assert f(2) == 3"], {}, {"test_code": "assert f(1) == 2\nassert f(2) == 3\n"}),
        (
            {"test": "def check(candidate):\n    assert candidate(1)\n", "entry_point": "f"},
            {},
            {"entry_point": "f", "tests": []},
        ),
        (
            "assert g() == 1",
            {"entry_point": "g", "test_imports": ["import math"]},
            {"test_code": "import math\nassert g() == 1\n", "entry_point": "g"},
        ),
    ],
    ids=["stdio_list", "apps_stdio", "apps_call", "mbpp_list", "humaneval", "string_with_imports"],
)
def test_normalize_tests_shapes(tests, record, want):
    got = normalize_tests(tests, record)
    for k, v in want.items():
        assert got[k] == v, (k, got)


def test_full_queue_answers_busy_and_recovers(daemon_binary, tmp_path):
    import os
    import threading
    import time

    from grpo_fast.sandbox import SandboxBusy

    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    cfg = tmp_path / "d.toml"
    cfg.write_text("[server]\nmax_queue = 0\n[pool]\nslots = 1\n")
    with Client(str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=["--config", str(cfg)]) as c:
        eager = Client(c.socket_path, start=False, busy_retries=0)
        t = threading.Thread(target=c.run, args=("import time\ntime.sleep(1.5)",))
        t.start()
        while eager.health()["idle_slots"] != 0:  # /health never takes a slot
            time.sleep(0.01)
        with pytest.raises(SandboxBusy):
            eager.run("print(1)")
        t.join()
        assert eager.run("print(1)")["stdout"] == "1\n"


def test_tcp_listener_serves_the_same_api(daemon_binary, tmp_path):
    import os
    import socket as socketlib

    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["--slots", "1", "--tcp", f"127.0.0.1:{port}"]
    with Client(str(tmp_path / "t.sock"), binary=daemon_binary, daemon_args=args):
        remote = Client(tcp=f"127.0.0.1:{port}", start=False)
        assert remote.run("print(40 + 2)")["stdout"] == "42\n"
        assert remote.health()["slots"] == 1


def test_plain_runs_after_harness_runs_are_not_held_up(sandbox):
    # Regression: a harness forked by the zygote once kept a copy of the next plain run's request
    # pipe, so that run never saw the end of its request and timed out.
    for _ in range(3):
        assert sandbox.run_tests("print(input())", [{"stdin": "a", "expected_stdout": "a"}])["all_passed"]
        r = sandbox.run("print('quick')", timeout_ms=3000)
        assert r["status"] == "ok" and r["stdout"] == "quick\n", r


def test_a_dead_zygote_is_replaced(daemon_binary, tmp_path):
    import os
    import signal
    from pathlib import Path

    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    cfg = tmp_path / "d.toml"
    cfg.write_text("[isolation]\nuid_base = 1700000\n")
    with Client(
        str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=["--slots", "1", "--config", str(cfg)]
    ) as c:
        assert c.run("print(1)")["status"] == "ok"
        zygotes = []
        for d in Path("/proc").iterdir():
            try:
                status = (d / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            # The zygote: pid 1 of the slot's PID namespace, running as the slot's root uid.
            if (
                fields.get("Uid", "").split()[:1] == ["1700000"]
                and fields.get("NSpid", "").split()[-1:] == ["1"]
                and len(fields.get("NSpid", "").split()) == 2
            ):
                zygotes.append(int(d.name))
        assert len(zygotes) == 1, zygotes
        os.kill(zygotes[0], signal.SIGKILL)
        # The request that finds the slot dead is retried on the replacement when it never reached
        # the zygote; when the zygote died with it in the socket, it answers sandbox_error.
        first = c.run("print(2)")
        assert first["stdout"] == "2\n" or first["status"] == "sandbox_error", first
        assert c.run("print(3)")["stdout"] == "3\n"
        assert c.health()["slot_restarts"] == 1


def test_stdin_may_be_larger_than_the_file_size_limit(sandbox):
    # stdin reaches the program through a memfd written before RLIMIT_FSIZE (16 MiB) applies.
    n = 17 << 20
    code = "import sys\nprint(len(sys.stdin.buffer.read()))"
    r = sandbox.run(code, stdin="x" * n, timeout_ms=20000)
    assert r["status"] == "ok" and r["stdout"] == f"{n}\n", {k: v for k, v in r.items() if k != "stdout"}
    r = sandbox.run_tests(code, [{"stdin": "y" * n, "expected_stdout": str(n)}] * 2, timeout_ms=20000)
    assert r["all_passed"], r["first_failure"]


def test_an_interpreter_only_root_can_reach_runs_as_the_configured_one(daemon_binary, tmp_path):
    # An interpreter under a directory only root may search (pyenv under /root, a 0700 home):
    # the slots run as unprivileged host uids and could not look it up themselves. Also a binary
    # that lives outside its stdlib's prefix, which has to be bound on its own.
    import os
    import shutil
    import stat

    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    system = os.path.realpath("/usr/bin/python3")
    if not os.path.exists(system):
        pytest.skip("no /usr/bin/python3 to copy")
    locked = tmp_path / "locked"
    (locked / "bin").mkdir(parents=True)
    exe = locked / "bin" / "python3-copy"
    shutil.copy2(system, exe)
    locked.chmod(stat.S_IRWXU)
    cfg = tmp_path / "d.toml"
    cfg.write_text(f'[pool]\nslots = 1\n[isolation]\nuid_base = 1710000\n[python]\ninterpreter = "{exe}"\n')
    with Client(str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=["--config", str(cfg)]) as c:
        assert c.languages()[0]["interpreter"] == str(exe)
        r = c.run("import sys, os\nprint(sys.executable)\nprint(os.path.exists('/usr/lib'))")
        assert r["status"] == "ok", r
        assert r["stdout"] == f"{exe}\nTrue\n"
        assert c.run_tests("print(int(input()) * 2)", [{"stdin": "21", "expected_stdout": "42"}])[
            "all_passed"
        ]
        assert c.run("print(open('x').read())", files={"x": "in a harness"})["stdout"] == "in a harness\n"
