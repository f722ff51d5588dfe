"""Java and JavaScript against the real daemon: Java compiled once per request by javac inside the
sandbox and run by a JVM per test, JavaScript run by Node.js per test, both contained like every
other program (the same namespaces, filter and hard limits), and the daemon serves on after
every hostile one. Each language's cases skip where its toolchain is absent."""

from __future__ import annotations

import os
import textwrap

import pytest

from grpo_fast.sandbox import Client
from grpo_fast.verifiers.base import VerifyItem
from grpo_fast.verifiers.code import CodeVerifier

JAVA_SUM = textwrap.dedent("""
    import java.util.*;
    public class Main {
        public static void main(String[] args) {
            Scanner in = new Scanner(System.in);
            long a = in.nextLong(), b = in.nextLong();
            System.out.println(a + b);
        }
    }
""")
JS_SUM = "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(BigInt);\nconsole.log(String(a + b));\n"

# Each prints one "name result" line per attempt; the same attacks as the C++ suite's.
JAVA_HOSTILE = textwrap.dedent("""
    import java.io.*;
    import java.nio.file.*;
    public class Main {
        static void say(String what, java.util.concurrent.Callable<Object> c) {
            try { c.call(); System.out.println(what + " ok"); }
            catch (Throwable e) { System.out.println(what + " " + e.getClass().getSimpleName()); }
        }
        public static void main(String[] a) {
            say("inet", () -> new java.net.Socket("127.0.0.1", 22));
            say("shadow", () -> Files.readAllBytes(Paths.get("/etc/shadow")));
            say("work", () -> Files.list(Paths.get("/work")));
            say("usr_write", () -> Files.write(Paths.get("/usr/grpo-owned"), new byte[1]));
            say("kill_parent", () -> { ProcessHandle.current().parent().ifPresent(ProcessHandle::destroyForcibly); return null; });
            say("tmp_write", () -> Files.write(Paths.get("/tmp/left"), new byte[1]));
        }
    }
""")
JS_HOSTILE = textwrap.dedent("""
    const fs = require('fs'), cp = require('child_process');
    function say(what, f) {
      try { f(); console.log(what + ' ok'); } catch (e) { console.log(what + ' ' + (e.code || e.name)); }
    }
    say('shadow', () => fs.readFileSync('/etc/shadow'));
    say('work', () => fs.readdirSync('/work'));
    say('usr_write', () => fs.writeFileSync('/usr/grpo-owned', 'x'));
    say('kill_all', () => process.kill(-1, 'SIGKILL'));
    say('tmp_write', () => fs.writeFileSync('/tmp/left', 'x'));
    console.log('id ' + cp.execSync('id -u').toString().trim());
    require('net').connect(22, '127.0.0.1').on('error', (e) => console.log('inet ' + e.code));
""")


def needs(sandbox, name):
    if name not in sandbox.health()["languages"]:
        pytest.skip(f"no {name} toolchain on this machine")


@pytest.fixture()
def java(sandbox):
    needs(sandbox, "java")
    return lambda code, stdin="", **kw: sandbox.run(code, stdin, language="java", **{"timeout_ms": 10000, **kw})


@pytest.fixture()
def js(sandbox):
    needs(sandbox, "javascript")
    return lambda code, stdin="", **kw: sandbox.run(code, stdin, language="js", **{"timeout_ms": 5000, **kw})


# ---- Java --------------------------------------------------------------------------------------

def test_java_compiles_and_runs(sandbox, java):
    langs = {lang["name"]: lang for lang in sandbox.languages()}
    assert langs["java"]["runtime"].endswith("/java") and langs["java"]["version"][0].isdigit()
    r = java(JAVA_SUM, "2 40")
    assert (r["status"], r["stdout"], r["exit_code"]) == ("ok", "42\n", 0), r
    r = java('public class Main { public static void main(String[] a) { System.err.println("oops"); System.exit(3); } }')
    assert (r["status"], r["exit_code"], r["stderr"]) == ("runtime_error", 3, "oops\n"), r


def test_java_finds_its_class_names_in_the_code(java):
    # No public class: main is in Solution; a package and a helper class beside it.
    r = java("package sol;\nclass Helper { static int f() { return 41; } }\n"
             "class Solution { public static void main(String[] a) { System.out.println(Helper.f() + 1); } }")
    assert (r["status"], r["stdout"]) == ("ok", "42\n"), r
    r = java("// public class Decoy\npublic class Answer { public static void main(String[] a) { "
             "System.out.println(\"class Nope\"); } }")
    assert (r["status"], r["stdout"]) == ("ok", "class Nope\n"), r


def test_java_compile_errors_and_exceptions(sandbox, java):
    r = java("public class Main { public static void main(String[] a) { int x = ; } }")
    assert r["status"] == "runtime_error" and r["message"] == "compilation failed", r
    assert "Main.java:1: error" in r["stderr"], r
    t = sandbox.run_tests("public class Main { void f( }", [{"stdin": "", "expected_stdout": ""}], language="java")
    assert t["status"] == "compile_error" and t["passed"] == 0, t
    r = java("public class Main { public static void main(String[] a) { throw new IllegalStateException(\"boom\"); } }")
    assert r["status"] == "runtime_error" and "IllegalStateException: boom" in r["stderr"], r


def test_java_tests_run_each_in_a_fresh_jvm(sandbox, java):
    tests = [{"stdin": f"{i} {i * i}", "expected_stdout": str(i + i * i)} for i in range(4)]
    tests.append({"stdin": "1 1", "expected_stdout": "3"})
    r = sandbox.run_tests(JAVA_SUM, tests, language="java", timeout_ms=10000)
    assert [t["passed"] for t in r["tests"]] == [True] * 4 + [False], r
    assert r["first_failure"]["index"] == 4


def test_java_heap_exhaustion_is_a_memory_limit(java, assert_contained):
    r = java("import java.util.*;\npublic class Main { public static void main(String[] a) { "
             "List<long[]> l = new ArrayList<>(); while (true) l.add(new long[1 << 20]); } }", memory_mb=128)
    assert r["status"] == "memory_limit" and "OutOfMemoryError" in r["stderr"], r
    assert_contained()


def test_java_thread_bomb_and_infinite_loop_are_contained(java, assert_contained):
    r = java("public class Main { public static void main(String[] a) { int n = 0; try { while (true) { "
             "Thread t = new Thread(() -> { try { Thread.sleep(60000); } catch (Exception e) {} }); "
             "t.setDaemon(true); t.start(); n++; } } catch (Throwable e) { System.out.println(\"stopped \" + n); } } }")
    assert r["status"] == "ok" and r["stdout"].startswith("stopped "), r
    assert int(r["stdout"].split()[1]) < 64
    r = java("public class Main { public static void main(String[] a) { while (true) {} } }", timeout_ms=1500)
    assert r["status"] == "timeout", r
    assert_contained()


def test_java_hostile_calls_are_refused(java, assert_contained):
    r = java(JAVA_HOSTILE)
    assert r["status"] == "ok", r
    got = dict(line.split() for line in r["stdout"].splitlines())
    assert got["inet"] == "SocketException", got
    assert got["shadow"] == got["work"] == "NoSuchFileException", got
    assert got["usr_write"] in ("FileSystemException", "AccessDeniedException"), got
    assert got["tmp_write"] == "ok"
    assert_contained()
    # /tmp does not survive into the next request
    r = java("public class Main { public static void main(String[] a) { "
             "System.out.println(new java.io.File(\"/tmp/left\").exists()); } }")
    assert r["stdout"] == "false\n", r


# ---- JavaScript --------------------------------------------------------------------------------

def test_javascript_runs_with_its_aliases(sandbox, js):
    r = js(JS_SUM, "2 40")
    assert (r["status"], r["stdout"]) == ("ok", "42\n"), r
    assert sandbox.run(JS_SUM, "1 2", language="node")["stdout"] == "3\n"
    r = js("function (")
    assert r["status"] == "runtime_error" and "SyntaxError" in r["stderr"], r
    r = js("process.stderr.write('oops\\n'); process.exit(3)")
    assert (r["status"], r["exit_code"], r["stderr"]) == ("runtime_error", 3, "oops\n"), r


def test_javascript_tests_and_their_verdicts(sandbox, js):
    tests = [{"stdin": f"{i} 1", "expected_stdout": str(i + 1)} for i in range(3)] + [
        {"stdin": "9007199254740993 1", "expected_stdout": "9007199254740994"}]
    r = sandbox.run_tests(JS_SUM, tests, language="javascript")
    assert r["passed"] == 4 and r["total"] == 4, r


def test_javascript_heap_exhaustion_and_loops_are_contained(js, assert_contained):
    r = js("const a = []; while (true) a.push(new Array(1e6).fill(1));", memory_mb=128)
    assert r["status"] == "memory_limit", r
    r = js("while (true) {}", timeout_ms=1000)
    assert r["status"] == "timeout", r
    assert_contained()


def test_javascript_hostile_calls_are_refused(js, assert_contained):
    r = js(JS_HOSTILE)
    assert r["status"] == "ok", r
    got = dict(line.split() for line in r["stdout"].splitlines())
    assert got["shadow"] == got["work"] == "ENOENT", got
    assert got["usr_write"] in ("EROFS", "EACCES"), got
    assert got["inet"] == "EAFNOSUPPORT", got
    assert got["id"] == "1000" and got["tmp_write"] == "ok", got
    assert_contained()


def test_the_code_verifier_scores_java_and_javascript(sandbox):
    for lang, fence, code in (("java", "java", JAVA_SUM), ("javascript", "js", JS_SUM)):
        needs(sandbox, lang)
        verifier = CodeVerifier(client=sandbox, language=lang)
        tests = [{"stdin": "1 2", "expected_stdout": "3"}, {"stdin": "2 2", "expected_stdout": "4"}]  # a * b passes one
        good = VerifyItem(prompt="", response=f"```{fence}\n{code}```", record={"tests": tests})
        bad = VerifyItem(prompt="", response=f"```{fence}\n{code.replace('a + b', 'a * b')}```", record={"tests": tests})
        assert [r.score for r in verifier.verify_batch([good, bad])] == [1.0, 0.5], lang


def test_a_missing_language_says_which_tool_is_absent(daemon_binary, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    cfg = tmp_path / "d.toml"
    cfg.write_text('[javascript]\ncompiler = "/usr/bin/no-such-node"\n')
    with pytest.raises(Exception, match=r"javascript\.compiler"):
        with Client(str(tmp_path / "d.sock"), binary=daemon_binary, daemon_args=["--slots", "1", "--config", str(cfg)]):
            pass


# ---- Rust (a rustup toolchain, configured by path: Debian's /usr/bin/rustc is rare) -----------

RUST_SUM = textwrap.dedent("""
    use std::io::Read;
    fn main() {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).unwrap();
        let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
        println!("{}", v[0] + v[1]);
    }
""")


@pytest.fixture(scope="module")
def rust(daemon_binary, tmp_path_factory):
    import shutil
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("the isolated daemon needs root")
    if os.path.exists("/usr/bin/rustc"):
        rustc, sysroot = "/usr/bin/rustc", "/usr"
    elif shutil.which("rustc"):
        sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
        rustc = os.path.join(sysroot, "bin", "rustc")
    else:
        pytest.skip("no rustc on this machine")
    tmp = tmp_path_factory.mktemp("rust")
    cfg = tmp / "d.toml"
    ro = ["/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/ld.so.cache", "/etc/localtime", sysroot]
    cfg.write_text(f'[rust]\ncompiler = "{rustc}"\n[isolation]\nuid_base = 1860000\nro_paths = {ro!r}\n'.replace("'", '"'))
    with Client(str(tmp / "d.sock"), binary=daemon_binary, daemon_args=["--slots", "1", "--config", str(cfg)]) as c:
        yield c


def test_rust_compiles_runs_and_is_contained(rust):
    assert "rust" in rust.health()["languages"]
    r = rust.run(RUST_SUM, "2 40", language="rust", timeout_ms=20000)
    assert (r["status"], r["stdout"]) == ("ok", "42\n"), r
    r = rust.run("fn main() { let x: i32 = \"no\"; }", language="rs", timeout_ms=20000)
    assert r["status"] == "runtime_error" and r["message"] == "compilation failed" and "E0308" in r["stderr"], r
    tests = [{"stdin": f"{i} {i}", "expected_stdout": str(2 * i)} for i in range(20)]
    t = rust.run_tests(RUST_SUM, tests, language="rust", timeout_ms=20000)
    assert t["passed"] == 20, t
    r = rust.run('fn main() { println!("{:?}", std::fs::read("/etc/shadow").map(|_| ()).map_err(|e| e.kind())); '
                 'println!("{:?}", std::net::TcpStream::connect("127.0.0.1:22").map(|_| ()).map_err(|e| e.raw_os_error())); '
                 'let v: Vec<u8> = std::hint::black_box(vec![1; 1 << 34]); println!("{}", v[1 << 33]); }', language="rust", memory_mb=256,
                 timeout_ms=20000)
    assert r["stdout"].splitlines()[:2] == ["Err(NotFound)", "Err(Some(97))"], r  # 97: EAFNOSUPPORT
    assert r["status"] == "memory_limit" and r["signal"] == 6, r  # the allocation fails: abort
