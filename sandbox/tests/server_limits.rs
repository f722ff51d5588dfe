//! The server's own limits against the real daemon binary over its Unix socket: a trickled
//! request head is cut off at the header timeout with 408, and a batch's program output is
//! bounded as a whole. Isolation needs root, so these skip (with a message) elsewhere.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OUTPUT_CAP: usize = 64 << 10;

struct Daemon {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Daemon {
    /// `uid_base`: a host uid range of its own, so daemons of tests running at once never share one.
    fn start(name: &str, uid_base: u32) -> Option<Daemon> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/usr/bin/python3").exists() {
            eprintln!("skipping: the isolated daemon needs root and /usr/bin/python3");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("grpo-sbx-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let config = dir.join("d.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nheader_timeout_s = 0.5\nmax_response_output_bytes = {OUTPUT_CAP}\n\
                 [isolation]\nuid_base = {uid_base}\n"
            ),
        )
        .ok()?;
        let socket = dir.join("d.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_grpo-sandboxd"))
            .args(["--socket", socket.to_str()?, "--slots", "1", "--quiet"])
            .args(["--config", config.to_str()?])
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
fn a_trickled_head_gets_408_at_the_header_timeout() {
    let Some(d) = Daemon::start("trickle", 1_970_000) else {
        return;
    };
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t0 = Instant::now();
    s.write_all(b"POST /run HTTP/1.1\r\n").unwrap();
    let mut answer = Vec::new();
    // One header line every 100 ms: each read would succeed, the head never ends.
    for i in 0..100 {
        if s.write_all(format!("X-Line-{i}: {i}\r\n").as_bytes())
            .is_err()
        {
            break;
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    // Generous: the deadline is 0.5 s, the watchdog looks every 0.1 s.
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
}

#[test]
fn a_batch_answer_carries_at_most_the_output_budget() {
    let Some(d) = Daemon::start("budget", 1_980_000) else {
        return;
    };
    let loud = r#"{"kind": "run", "code": "print('x' * 100000)"}"#;
    let quiet = r#"{"kind": "run", "code": "print('q')"}"#;
    let body = format!(r#"{{"items": [{loud}, {loud}, {quiet}, {loud}]}}"#);
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let req = format!(
        "POST /batch HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, json) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["truncated"], true);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results[2]["stdout"], "q\n");
    let carried: usize = results
        .iter()
        .map(|r| r["stdout"].as_str().unwrap().len() + r["stderr"].as_str().unwrap().len())
        .sum();
    assert!(carried <= OUTPUT_CAP, "{carried}");
    for i in [0, 1, 3] {
        assert_eq!(results[i]["truncated"], true);
        assert!(results[i]["stdout"]
            .as_str()
            .unwrap()
            .ends_with("…[truncated]"));
    }
}
