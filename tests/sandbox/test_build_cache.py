"""The daemon's build cache, against the real daemon: a compiled program seen again skips its
compile and is judged the same; failed compiles and requests with files are never cached; and
nothing a program does at run time reaches the cache."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(autouse=True)
def needs_cpp(sandbox):
    if "cpp" not in sandbox.health()["languages"]:
        pytest.skip("no C++ compiler on this machine (/usr/bin/g++)")


def fresh(code: str) -> str:
    """`code` made unique to this test run, so the session's shared daemon has not cached it."""
    return f"// {uuid.uuid4()}\n{code}"


def cache(sandbox) -> dict:
    return sandbox.health()["build_cache"]


A_PLUS_B = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"
TESTS = [{"stdin": "1 2", "expected_stdout": "3"}, {"stdin": "5 5", "expected_stdout": "11"}]


def test_a_program_seen_again_skips_its_compile_and_is_judged_the_same(sandbox):
    code = fresh(A_PLUS_B)
    before = cache(sandbox)
    first = sandbox.run_tests(code, TESTS, language="cpp")
    mid = cache(sandbox)
    assert (mid["misses"], mid["hits"]) == (before["misses"] + 1, before["hits"]), mid
    assert mid["entries"] >= 1 and mid["bytes"] > 0 and mid["max_bytes"] == 256 << 20
    second = sandbox.run_tests(code, TESTS, language="cpp")
    after = cache(sandbox)
    assert (after["hits"], after["misses"]) == (mid["hits"] + 1, mid["misses"]), after
    for r in (first, second):  # still judged test by test: the wrong expectation still fails
        assert (r["status"], r["passed"], r["total"]) == ("ok", 1, 2), r
        assert r["first_failure"]["index"] == 1 and r["first_failure"]["stdout"] == "10\n"
    # /run shares the cache with /run_tests, and a batch's items do too.
    r = sandbox.run(code, "20 22", language="cpp")
    assert (r["status"], r["stdout"]) == ("ok", "42\n"), r
    out = sandbox.batch([{"kind": "run", "code": code, "stdin": f"{i} 1", "language": "cpp"} for i in range(3)])
    assert [x["stdout"] for x in out] == ["1\n", "2\n", "3\n"], out
    assert cache(sandbox)["hits"] == after["hits"] + 4
    # Another source is another build.
    other = sandbox.run(fresh(A_PLUS_B), "1 1", language="cpp")
    assert other["stdout"] == "2\n" and cache(sandbox)["misses"] == after["misses"] + 1


def test_a_program_that_replaces_its_own_binary_does_not_poison_the_cache(sandbox):
    """The build is taken from /tmp right after the compile, before any test runs."""
    code = fresh(r"""
        #include <cstdio>
        #include <unistd.h>
        #include <sys/stat.h>
        int main() {
            std::puts("original");
            unlink("/tmp/main");
            FILE *f = std::fopen("/tmp/main", "w");
            if (f) { std::fputs("#!/bin/sh\necho poisoned\n", f); std::fclose(f); chmod("/tmp/main", 0755); }
            return 0;
        }
    """)
    tests = [{"stdin": "", "expected_stdout": "original"}] * 2
    r = sandbox.run_tests(code, tests, language="cpp")
    # The second test of the same request runs the replaced file (the program's own doing, in
    # its own sandbox): proof that it could have poisoned a cache filled after the runs.
    assert [t["stdout"] for t in r["tests"]] == ["original\n", "poisoned\n"], r
    again = sandbox.run(code, "", language="cpp")
    assert (again["status"], again["stdout"]) == ("ok", "original\n"), again


def test_failed_compiles_and_requests_with_files_are_not_cached(sandbox):
    bad = fresh("int main( {")
    before = cache(sandbox)
    for _ in range(2):
        r = sandbox.run(bad, "", language="cpp")
        assert r["message"] == "compilation failed", r
    after = cache(sandbox)
    assert (after["misses"], after["hits"], after["entries"]) == (before["misses"] + 2, before["hits"],
                                                                  before["entries"]), after
    # A header among the files could change the build: such requests skip the cache.
    code = fresh('#include "value.h"\n#include <cstdio>\nint main() { std::printf("%d\\n", VALUE); }\n')
    for value in (1, 2):
        r = sandbox.run(code, "", language="cpp", files={"value.h": f"#define VALUE {value}\n"})
        assert r["stdout"] == f"{value}\n", r
    assert cache(sandbox)["misses"] == after["misses"] and cache(sandbox)["hits"] == after["hits"]


def test_java_builds_of_several_classes_are_cached(sandbox):
    if "java" not in sandbox.health()["languages"]:
        pytest.skip("no JDK on this machine")
    code = fresh("""
        package demo.app;
        import java.util.Scanner;
        class Helper { static int twice(int x) { return 2 * x; } }
        public class Main {
            public static void main(String[] args) {
                System.out.println(Helper.twice(new Scanner(System.in).nextInt()));
            }
        }
    """)
    before = cache(sandbox)
    tests = [{"stdin": "21", "expected_stdout": "42"}]
    first = sandbox.run_tests(code, tests, language="java", timeout_ms=10_000)
    second = sandbox.run_tests(code, tests, language="java", timeout_ms=10_000)
    assert first["all_passed"] and second["all_passed"], (first, second)
    after = cache(sandbox)
    assert (after["hits"], after["misses"]) == (before["hits"] + 1, before["misses"] + 1), after


def test_metrics_count_hits_and_misses(sandbox):
    text = sandbox.metrics()
    c = cache(sandbox)
    assert f"grpo_sandbox_build_cache_hits_total {c['hits']}\n" in text
    assert f"grpo_sandbox_build_cache_misses_total {c['misses']}\n" in text
    assert "# TYPE grpo_sandbox_build_cache_entries gauge" in text
