"""C++ and C programs against the real daemon: compiled once per request inside the sandbox, run once
per test, contained like Python programs (the same namespaces, filter and hard limits apply to
the compiler and to the binary), and the daemon serves on after every hostile one."""

from __future__ import annotations

import os
import textwrap

import pytest

from grpo_fast.errors import SandboxError
from grpo_fast.sandbox import Client
from grpo_fast.verifiers.base import VerifyItem
from grpo_fast.verifiers.code import CodeVerifier, extract_code

A_PLUS_B = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"


@pytest.fixture(autouse=True)
def needs_cpp(sandbox):
    if "cpp" not in sandbox.health()["languages"]:
        pytest.skip("no C++ compiler on this machine (/usr/bin/g++)")


def cpp(sandbox, code, stdin="", **kw):
    kw.setdefault("timeout_ms", 2000)
    return sandbox.run(textwrap.dedent(code), stdin, language="cpp", **kw)


def test_a_program_compiles_and_runs(sandbox):
    langs = {lang["name"]: lang for lang in sandbox.languages()}
    assert {"c++", "cxx"} <= set(langs["cpp"]["aliases"]) and langs["cpp"]["version"]
    r = cpp(sandbox, A_PLUS_B, "2 40")
    assert (r["status"], r["stdout"], r["exit_code"]) == ("ok", "42\n", 0), r
    r = sandbox.run(A_PLUS_B, "1 1", language="c++")
    assert r["stdout"] == "2\n"
    r = cpp(sandbox, "#include <cstdio>\nint main() { std::fprintf(stderr, \"oops\\n\"); return 3; }")
    assert (r["status"], r["exit_code"], r["stderr"]) == ("runtime_error", 3, "oops\n"), r


def test_a_compile_error_is_the_compilers_message(sandbox):
    r = cpp(sandbox, "int main( {")
    assert r["status"] == "runtime_error" and r["message"] == "compilation failed", r
    assert "main.cpp:1" in r["stderr"] and "error" in r["stderr"]
    r = sandbox.run_tests("int main( {", [{"stdin": "", "expected_stdout": ""}], language="cpp")
    assert r["status"] == "compile_error" and r["passed"] == 0 and r["total"] == 1, r
    assert "error" in r["first_failure"]["stderr"]


def test_tests_run_the_one_binary_each_in_a_fresh_process(sandbox):
    tests = [{"stdin": "1 2", "expected_stdout": "3"}, {"stdin": "5 5", "expected_stdout": "11"},
             {"stdin": "-7 7", "expected_stdout": "0"}]
    r = sandbox.run_tests(A_PLUS_B, tests, language="cpp")
    assert (r["status"], r["passed"], r["total"]) == ("ok", 2, 3), r
    ff = r["first_failure"]
    assert (ff["index"], ff["reason"], ff["stdout"], ff["expected"]) == (1, "wrong_output", "10\n", "11"), ff
    # State a test leaves in memory is gone for the next: each is a process of its own.
    counter = "#include <cstdio>\nstatic int n; int main() { std::printf(\"%d\\n\", ++n); }\n"
    r = sandbox.run_tests(counter, [{"stdin": "", "expected_stdout": "1"}] * 3, language="cpp")
    assert r["passed"] == 3, r
    with pytest.raises(SandboxError, match="stdin/stdout tests"):
        sandbox.run_tests(A_PLUS_B, test_code="assert f(1) == 2", entry_point="f", language="cpp")


def test_an_infinite_loop_and_a_stdout_flood_are_cut_off(sandbox, assert_contained):
    r = cpp(sandbox, "int main() { volatile unsigned long x = 0; for (;;) x++; }", timeout_ms=700)
    assert r["status"] == "timeout", r
    r = cpp(sandbox, "#include <cstdio>\nint main() { for (;;) std::fputs(\"xxxxxxxxxxxxxxxx\", stdout); }")
    assert r["status"] == "output_limit" and r["truncated"], {k: r[k] for k in ("status", "truncated")}
    assert_contained()


def test_a_fork_bomb_is_bounded_and_killed(sandbox, assert_contained):
    r = cpp(sandbox, """
        #include <unistd.h>
        int main() { for (;;) { if (fork() == 0) for (;;) {} } }
    """, timeout_ms=1500)
    assert r["status"] == "timeout", r
    assert_contained()


def test_a_memory_bomb_hits_the_address_space_limit(sandbox, assert_contained):
    r = cpp(sandbox, """
        #include <vector>
        #include <cstring>
        int main() {
            std::vector<char*> keep;
            for (;;) { char* p = new char[64 << 20]; std::memset(p, 1, 64 << 20); keep.push_back(p); }
        }
    """, memory_mb=256)
    assert r["status"] == "memory_limit", r
    assert_contained()


def test_raw_syscalls_are_denied_and_the_host_is_out_of_reach(sandbox, assert_contained):
    r = cpp(sandbox, r"""
        #include <cerrno>
        #include <cstdio>
        #include <cstring>
        #include <fcntl.h>
        #include <sched.h>
        #include <signal.h>
        #include <sys/mount.h>
        #include <sys/mman.h>
        #include <sys/ptrace.h>
        #include <sys/resource.h>
        #include <sys/shm.h>
        #include <sys/socket.h>
        #include <sys/syscall.h>
        #include <unistd.h>
        static void say(const char* what, long r) { std::printf("%s %s\n", what, r < 0 ? strerrorname_np(errno) : "ok"); }
        int main() {
            say("ptrace", ptrace(PTRACE_TRACEME, 0, nullptr, nullptr));
            say("unshare", unshare(CLONE_NEWUSER));
            say("mount", mount("none", "/tmp", "tmpfs", 0, nullptr));
            say("bpf", syscall(SYS_bpf, 0, nullptr, 0));
            say("io_uring", syscall(SYS_io_uring_setup, 1, nullptr));
            say("inet", socket(AF_INET, SOCK_STREAM, 0));
            say("memfd", memfd_create("bomb", 0));
            say("shmget", shmget(IPC_PRIVATE, 1 << 28, 0600));
            say("shadow", open("/etc/shadow", O_RDONLY));
            say("work", open("/work", O_RDONLY));
            say("usr_write", open("/usr/bin/grpo-owned", O_WRONLY | O_CREAT, 0644));
            rlimit rl; getrlimit(RLIMIT_NPROC, &rl); rl.rlim_max += 100; rl.rlim_cur = rl.rlim_max;
            say("raise_nproc", setrlimit(RLIMIT_NPROC, &rl));
            say("kill_all", kill(-1, SIGKILL));
            say("kill_parent", getppid() > 0 ? kill(getppid(), SIGKILL) : -1);
        }
    """)
    assert r["status"] == "ok", r
    got = dict(line.split() for line in r["stdout"].splitlines())
    for name in ("ptrace", "unshare", "mount", "bpf", "io_uring", "raise_nproc", "memfd", "shmget"):
        assert got[name] in ("EPERM", "ENOSYS"), (name, got)
    assert got["inet"] == "EAFNOSUPPORT", got
    assert got["shadow"] == "ENOENT" and got["work"] == "ENOENT", got
    assert got["usr_write"] in ("EROFS", "EACCES"), got
    assert_contained()  # kill(-1) and kill(parent) reached nothing outside the run


def test_a_file_left_in_tmp_is_gone_for_the_next_request(sandbox):
    writer = '#include <cstdio>\nint main() { std::FILE* f = std::fopen("/tmp/left", "w"); std::fputs("x", f); }'
    assert cpp(sandbox, writer)["status"] == "ok"
    reader = '#include <cstdio>\nint main() { std::puts(std::fopen("/tmp/left", "r") ? "found" : "gone"); }'
    assert cpp(sandbox, reader)["stdout"] == "gone\n"


def test_a_compile_that_runs_too_long_is_stopped(daemon_binary, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    cfg = tmp_path / "d.toml"
    cfg.write_text("[cpp]\ncompile_timeout_ms = 1500\n[isolation]\nuid_base = 1820000\n")
    bomb = textwrap.dedent("""
        template <int N> struct F { static const long v = F<N - 1>::v + F<N - 2>::v; };
        template <> struct F<1> { static const long v = 1; };
        template <> struct F<0> { static const long v = 0; };
        #include <tuple>
        template <int N> struct T { using t = decltype(std::tuple_cat(typename T<N - 1>::t{}, typename T<N - 1>::t{})); };
        template <> struct T<0> { using t = std::tuple<int>; };
        int main() { return sizeof(T<24>::t) + F<40>::v; }
    """)
    with Client(str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=["--slots", "1", "--config", str(cfg)]) as c:
        r = c.run(bomb, language="cpp")
        assert r["status"] == "timeout" and "compilation took longer than 1500 ms" in r["message"], r
        assert c.run(A_PLUS_B, "1 2", language="cpp")["stdout"] == "3\n"


def test_the_code_verifier_scores_cpp_responses(sandbox):
    response = f"Here it is:\n```cpp\n{A_PLUS_B}```\n"
    assert extract_code(response, "c++") == A_PLUS_B
    tests = [{"input": "1 2", "output": "3"}, {"input": "2 2", "output": "5"}]
    items = [VerifyItem("p", response, {"tests": tests}), VerifyItem("p", "```cpp\nint main( {\n```", {"tests": tests})]
    good, broken = CodeVerifier(language="c++", client=sandbox).verify_batch(items)
    assert good.score == 0.5 and broken.score == 0.0, (good, broken)


def test_c_programs_compile_with_libm_and_fail_with_the_compilers_words(sandbox):
    if "c" not in sandbox.health()["languages"]:
        pytest.skip("no C compiler on this machine (/usr/bin/gcc)")
    lang = {x["name"]: x for x in sandbox.languages()}["c"]
    assert lang["libs"] == ["-lm"]
    prog = '#include <math.h>\n#include <stdio.h>\nint main(void) { double x; scanf("%lf", &x); printf("%.3f\\n", sqrt(x)); }\n'
    r = sandbox.run(prog, "2", language="c")
    assert (r["status"], r["stdout"]) == ("ok", "1.414\n"), r
    r = sandbox.run_tests(prog, [{"stdin": "9", "expected_stdout": "3.000"}, {"stdin": "4", "expected_stdout": "3"}],
                          language="c")
    assert (r["passed"], r["total"]) == (1, 2), r
    r = sandbox.run("int main(void) { return undeclared; }", language="c")
    assert r["status"] == "runtime_error" and "undeclared" in r["stderr"], r
    # C is not C++: a C++-only program does not compile as C.
    assert sandbox.run(A_PLUS_B, "1 2", language="c")["message"] == "compilation failed"
    with pytest.raises(SandboxError, match="unsupported language"):
        sandbox.run("print(1)", language="fortran")


# ---- tests run by one runner process per batch (a fresh process spawned per test) --------------

def test_a_test_left_running_is_killed_before_the_next_test(sandbox, assert_contained):
    # Test "1" leaves a background child holding stdout that would print into later tests.
    code = r"""
        #include <cstdio>
        #include <unistd.h>
        int main() {
            int n; if (std::scanf("%d", &n) != 1) return 1;
            if (n == 1 && fork() == 0) { setsid(); sleep(1); std::puts("ghost"); std::fflush(stdout); sleep(30); return 0; }
            std::printf("%d\n", n * 2);
        }
    """
    tests = [{"stdin": str(i), "expected_stdout": str(2 * i)} for i in range(1, 6)]
    r = sandbox.run_tests(textwrap.dedent(code), tests, language="cpp", timeout_ms=5000)
    assert r["passed"] == 5, r
    assert max(t["wall_ms"] for t in r["tests"]) < 900, r  # test 1 did not wait for its child
    assert_contained()


def test_a_timeout_or_crash_mid_batch_leaves_the_other_tests_judged(sandbox, assert_contained):
    code = r"""
        #include <cstdio>
        #include <csignal>
        int main() {
            int n; if (std::scanf("%d", &n) != 1) return 1;
            if (n == 3) for (;;) {}
            if (n == 5) std::raise(SIGSEGV);
            if (n == 7) { volatile int* p = nullptr; *p = 1; }
            std::printf("%d\n", n + 1);
        }
    """
    tests = [{"stdin": str(i), "expected_stdout": str(i + 1)} for i in range(10)]
    r = sandbox.run_tests(textwrap.dedent(code), tests, language="cpp", timeout_ms=700)
    got = [(t["status"], t["signal"]) for t in r["tests"]]
    assert got[3] == ("timeout", got[3][1]), got
    assert got[5] == ("runtime_error", 11) and got[7] == ("runtime_error", 11), got
    assert [t["passed"] for t in r["tests"]] == [i not in (3, 5, 7) for i in range(10)], got
    assert_contained()


def test_a_program_cannot_disturb_its_runner(sandbox, assert_contained):
    # The runner is pid 1 of the tests' PID namespace: signals to it, and its /proc, are out of reach.
    code = r"""
        #include <cstdio>
        #include <csignal>
        #include <fcntl.h>
        #include <unistd.h>
        int main() {
            int n; if (std::scanf("%d", &n) != 1) return 1;
            kill(1, SIGINT); kill(1, SIGTERM); kill(1, SIGKILL); kill(getppid(), SIGKILL);
            int fd = open("/proc/1/mem", O_RDWR);
            std::printf("%d %s\n", n, fd < 0 ? "closed" : "open");
        }
    """
    tests = [{"stdin": str(i), "expected_stdout": f"{i} closed"} for i in range(6)]
    r = sandbox.run_tests(textwrap.dedent(code), tests, language="cpp")
    assert r["passed"] == 6, r
    assert_contained()


def test_programs_start_with_default_signal_actions(sandbox):
    # SIGPIPE at its default: writing to a closed pipe kills the writer (Python ignores it).
    code = r"""
        #include <csignal>
        #include <cstdio>
        int main() {
            struct sigaction sa; sigaction(SIGPIPE, nullptr, &sa);
            std::puts(sa.sa_handler == SIG_DFL ? "default" : "ignored");
        }
    """
    r = sandbox.run_tests(textwrap.dedent(code), [{"stdin": "", "expected_stdout": "default"}] * 3, language="cpp")
    assert r["passed"] == 3, r


def test_hundreds_of_tests_run_in_batches(sandbox):
    tests = [{"stdin": f"{i} {i}", "expected_stdout": str(2 * i)} for i in range(300)]
    tests[150]["expected_stdout"] = "wrong"
    r = sandbox.run_tests(A_PLUS_B, tests, language="cpp")
    assert (r["passed"], r["total"], r["first_failure"]["index"]) == (299, 300, 150), r
