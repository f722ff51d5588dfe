//! The real daemon binary end to end over its Unix socket: isolation needs root, so these tests
//! skip (with a message) elsewhere.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Daemon {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Daemon {
    fn start(extra: &[&str]) -> Option<Daemon> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 && !extra.contains(&"--insecure-no-isolation") {
            eprintln!("skipping: native isolation needs root");
            return None;
        }
        if !std::path::Path::new("/usr/bin/python3").exists() {
            eprintln!("skipping: no /usr/bin/python3");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "grpo-sandboxd-test-{}-{}",
            std::process::id(),
            extra.len()
        ));
        std::fs::create_dir_all(&dir).ok()?;
        let socket = dir.join("d.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_grpo-sandboxd"))
            .args(["--socket", socket.to_str()?, "--slots", "1", "--quiet"])
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .ok()?;
        let d = Daemon { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if UnixStream::connect(&d.socket).is_ok() {
                return Some(d);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon did not come up");
    }

    fn request(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let mut s = UnixStream::connect(&self.socket).expect("connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").expect("http response");
        let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (
            code,
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: SIGTERM to our own child for a graceful shutdown.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn run_and_run_tests_over_the_unix_socket() {
    let Some(d) = Daemon::start(&[]) else { return };
    let (code, h) = d.request("GET", "/health", "");
    assert_eq!(code, 200);
    assert_eq!(h["isolation"]["mode"], "native");

    let (code, r) = d.request(
        "POST",
        "/run",
        r#"{"code": "import os\nprint(input(), os.getuid())", "stdin": "hi"}"#,
    );
    assert_eq!(code, 200);
    assert_eq!(r["status"], "ok");
    assert_eq!(r["stdout"], "hi 1000\n");

    let body = r#"{"code": "print(int(input()) * 2)", "tests": [
        {"stdin": "2", "expected_stdout": "4"}, {"stdin": "3", "expected_stdout": "7"}]}"#;
    let (_, r) = d.request("POST", "/run_tests", body);
    assert_eq!(r["passed"], 1);
    assert_eq!(r["total"], 2);

    let (code, r) = d.request(
        "POST",
        "/run",
        r#"{"code": "while True: pass", "timeout_ms": 200}"#,
    );
    assert_eq!(code, 200);
    assert_eq!(r["status"], "timeout");
}

#[test]
fn bad_requests_get_clear_http_errors() {
    let Some(d) = Daemon::start(&[
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/grpo-sandboxd.toml"),
    ]) else {
        return;
    };
    let cases = [
        ("POST", "/run", "{not json", 400),
        ("POST", "/run", r#"{"code": "x", "language": "cobol"}"#, 400),
        ("POST", "/run", r#"{"code": "x", "surprise": 1}"#, 400),
        ("GET", "/run", "", 405),
        ("GET", "/nope", "", 404),
    ];
    for (method, path, body, want) in cases {
        let (code, r) = d.request(method, path, body);
        assert_eq!(code, want, "{method} {path} {body}: {r}");
        assert!(r["message"].is_string());
    }
}

/// Without isolation (trusted code only) the zygote's native half still serves runs, tests,
/// deadlines and crashes, and the seccomp policy still holds.
#[test]
fn unisolated_mode_serves_runs_and_keeps_the_filter() {
    let Some(d) = Daemon::start(&["--insecure-no-isolation"]) else {
        return;
    };
    let (_, h) = d.request("GET", "/health", "");
    assert_eq!(h["isolation"]["mode"], "insecure-no-isolation");
    let (_, r) = d.request(
        "POST",
        "/run",
        r#"{"code": "import ctypes\nprint(input()[::-1], ctypes.CDLL(None).unshare(0))", "stdin": "abc"}"#,
    );
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["stdout"], "cba -1\n");
    let body = r#"{"code": "import os\nx = int(input())\nif x == 2: os._exit(9)\nprint(x)",
        "tests": [{"stdin": "1", "expected_stdout": "1"}, {"stdin": "2", "expected_stdout": "2"},
                  {"stdin": "3", "expected_stdout": "3"}]}"#;
    let (_, r) = d.request("POST", "/run_tests", body);
    assert_eq!(r["passed"], 2, "{r}");
    assert_eq!(r["tests"][1]["exit_code"], 9, "{r}");
    let (_, r) = d.request(
        "POST",
        "/run",
        r#"{"code": "import time\ntime.sleep(30)", "timeout_ms": 200}"#,
    );
    assert_eq!(r["status"], "timeout", "{r}");
}
