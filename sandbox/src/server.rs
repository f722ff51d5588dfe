//! HTTP/1.1 + JSON over a Unix socket (and optionally TCP): a thread per connection (bounded),
//! keep-alive, request bodies capped. Small on purpose: the work is in the sandbox, not here.

use crate::engine::{ApiError, Engine, RunRequest, TestsRequest};
use crate::log;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub static SHUTDOWN: AtomicBool = AtomicBool::new(false);
/// Requests being processed (not idle keep-alive connections): what a graceful shutdown waits for.
pub static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

const MAX_HEAD: usize = 16 << 10;

pub struct Response {
    pub code: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

fn json_response(code: u16, v: &Value) -> Response {
    Response {
        code,
        body: serde_json::to_vec(v).unwrap_or_default(),
        content_type: "application/json",
    }
}

fn error(code: u16, kind: &str, msg: &str) -> Response {
    json_response(code, &json!({"error": kind, "message": msg}))
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn api_error(e: ApiError) -> Response {
    match e {
        ApiError::BadRequest(m) => error(400, "bad_request", &m),
        ApiError::Busy => error(
            503,
            "busy",
            "all sandbox slots are busy and the queue is full; retry shortly",
        ),
        ApiError::Unavailable(m) => error(503, "unavailable", &m),
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| error(400, "bad_request", &format!("invalid JSON request: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    items: Vec<BatchItem>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum BatchItem {
    Run(RunRequest),
    RunTests(TestsRequest),
}

pub fn route(engine: &Engine, method: &str, path: &str, body: &[u8]) -> Response {
    let path = path.split('?').next().unwrap_or(path);
    match (method, path) {
        ("GET", "/health") => json_response(200, &health(engine)),
        ("GET", "/metrics") => Response {
            code: 200,
            body: metrics(engine).into_bytes(),
            content_type: "text/plain; version=0.0.4",
        },
        ("GET", "/languages") => {
            let mut langs = vec![json!({"name": "python", "aliases": ["python3", "py"],
                                        "version": engine.python_version, "interpreter": engine.interpreter})];
            for c in &engine.compilers {
                langs.push(
                    json!({"name": c.spec.name, "aliases": c.spec.aliases, "version": c.version,
                                  "compiler": c.path, "runtime": c.runtime, "flags": c.flags,
                                  "libs": c.libs, "run_flags": c.run_flags}),
                );
            }
            json_response(200, &json!({ "languages": langs }))
        }
        ("POST", "/run") => match parse::<RunRequest>(body) {
            Ok(req) => match engine.run(req, true) {
                Ok(r) => json_response(200, &serde_json::to_value(r).unwrap_or_default()),
                Err(e) => api_error(e),
            },
            Err(r) => r,
        },
        ("POST", "/run_tests") => match parse::<TestsRequest>(body) {
            Ok(req) => match engine.run_tests(req, true) {
                Ok(r) => json_response(200, &serde_json::to_value(r).unwrap_or_default()),
                Err(e) => api_error(e),
            },
            Err(r) => r,
        },
        ("POST", "/batch") => batch(engine, body),
        (_, "/health" | "/languages" | "/metrics" | "/run" | "/run_tests" | "/batch") => {
            error(405, "method_not_allowed", "wrong method")
        }
        _ => error(
            404,
            "not_found",
            "endpoints: GET /health, GET /languages, GET /metrics, POST /run, /run_tests, /batch",
        ),
    }
}

fn batch(engine: &Engine, body: &[u8]) -> Response {
    let req: BatchRequest = match parse(body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let n = req.items.len();
    if n > engine.cfg.server.max_batch {
        return error(
            400,
            "bad_request",
            &format!("{n} items exceed max_batch {}", engine.cfg.server.max_batch),
        );
    }
    // The batch as a whole takes a place in the queue; its items then wait for slots freely.
    if engine.pool.queued() >= engine.cfg.server.max_queue {
        return api_error(ApiError::Busy);
    }
    let items: Vec<std::sync::Mutex<Option<BatchItem>>> = req
        .items
        .into_iter()
        .map(|i| std::sync::Mutex::new(Some(i)))
        .collect();
    let results: Vec<std::sync::Mutex<Value>> =
        (0..n).map(|_| std::sync::Mutex::new(Value::Null)).collect();
    let next = AtomicUsize::new(0);
    let workers = engine.pool.size.min(n).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let item = items[i].lock().ok().and_then(|mut g| g.take());
                let out = match item {
                    Some(BatchItem::Run(r)) => engine
                        .run(r, false)
                        .map(|x| serde_json::to_value(x).unwrap_or_default()),
                    Some(BatchItem::RunTests(r)) => engine
                        .run_tests(r, false)
                        .map(|x| serde_json::to_value(x).unwrap_or_default()),
                    None => Ok(Value::Null),
                };
                let v = match out {
                    Ok(v) => v,
                    Err(e) => {
                        let r = api_error(e);
                        serde_json::from_slice(&r.body).unwrap_or_default()
                    }
                };
                if let Ok(mut slot) = results[i].lock() {
                    *slot = v;
                }
            });
        }
    });
    let results: Vec<Value> = results
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_default())
        .collect();
    json_response(200, &json!({"results": results}))
}

fn metrics(engine: &Engine) -> String {
    engine.metrics.render(&crate::metrics::Gauges {
        version: env!("CARGO_PKG_VERSION"),
        isolation: if engine.isolated {
            "native"
        } else {
            "insecure-no-isolation"
        },
        python: &engine.python_version,
        slots: engine.pool.size,
        idle_slots: engine.pool.idle(),
        queued: engine.pool.queued(),
        slot_restarts: engine.pool.restarts.load(Ordering::Relaxed),
        uptime_s: engine.started.elapsed().as_secs_f64(),
        build_cache: engine.build_cache.stats(),
    })
}

fn health(engine: &Engine) -> Value {
    let iso = if engine.isolated {
        json!({
            "mode": "native",
            "user_namespace": true, "pid_namespace": true, "mount_namespace": true,
            "network_namespace": true,
            "network_namespace_scope": if engine.cfg.isolation.per_run_network_namespace { "run" } else { "slot" },
            "sockets": "AF_UNIX only", "ipc_namespace": true, "uts_namespace": true,
            "readonly_root": true, "tmpfs": true, "fresh_procfs": true, "empty_env": true,
            "unprivileged_uid": true, "seccomp": true, "no_new_privs": true, "hard_rlimits": true,
            "pids": engine.cgroup.pids, "memory": engine.cgroup.memory, "cgroup_note": engine.cgroup.note,
            "host_uids": {
                "zygotes": (0..engine.pool.size).map(|i| engine.cfg.isolation.uid_base + 2 * i as u32).collect::<Vec<_>>(),
                "programs": (0..engine.pool.size).map(|i| engine.cfg.isolation.uid_base + 2 * i as u32 + 1).collect::<Vec<_>>(),
            },
        })
    } else {
        json!({"mode": "insecure-no-isolation", "seccomp": true, "hard_rlimits": true,
               "warning": "programs run without namespaces: never feed this daemon untrusted code"})
    };
    let cache = engine.build_cache.stats();
    json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "isolation": iso,
        "slots": engine.pool.size,
        "idle_slots": engine.pool.idle(),
        "queued": engine.pool.queued(),
        "slot_restarts": engine.pool.restarts.load(Ordering::Relaxed),
        "requests_served": engine.served.load(Ordering::Relaxed),
        "uptime_s": engine.started.elapsed().as_secs(),
        "languages": std::iter::once("python")
            .chain(engine.compilers.iter().map(|c| c.spec.name))
            .collect::<Vec<_>>(),
        "limits": engine.cfg.limits,
        "max_request_bytes": engine.cfg.server.max_request_bytes,
        "build_cache": {"entries": cache.entries, "bytes": cache.bytes, "max_bytes": cache.cap,
                        "hits": cache.hits, "misses": cache.misses},
        "tcp": if engine.cfg.server.tcp.is_empty() { Value::Null } else {
            json!({"address": engine.cfg.server.tcp, "token": !engine.cfg.server.token_file.is_empty(),
                   "tls": !engine.cfg.server.tls_cert.is_empty()})
        },
    })
}

/// Serves one connection until the client closes it, asks to, or the daemon shuts down. With a
/// `token`, a request without `Authorization: Bearer <token>` is answered 401 and the
/// connection closed, before anything of it is routed.
pub fn handle_connection<S: Transport>(
    engine: &Engine,
    stream: S,
    token: Option<&crate::auth::TokenCell>,
) {
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    serve(engine, &mut reader, token);
    reader.get_mut().finish();
}

/// A TLS handshake that failed (a plain-HTTP client, an unknown CA) ends in a read error: say
/// why, or the operator sees only clients that cannot connect. Timeouts and resets stay quiet.
fn read_failed(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::InvalidData {
        log::warn("connection dropped", &[("error", e.to_string().into())]);
    }
}

fn serve<S: Read + Write>(
    engine: &Engine,
    reader: &mut BufReader<S>,
    token: Option<&crate::auth::TokenCell>,
) {
    // A TLS client on a plain listener sends a handshake record (0x16), which has no line end
    // to wait for: close at once, so it fails fast with its own "not TLS" error.
    match reader.fill_buf() {
        Ok([0x16, ..]) => {
            let e = "a TLS handshake on a plain listener (give the daemon --tls-cert, or connect without TLS)";
            log::warn("connection dropped", &[("error", e.into())]);
            return;
        }
        Err(e) => return read_failed(&e),
        Ok(_) => {}
    }
    loop {
        let mut head = Vec::new();
        // Read until the blank line ending the head.
        loop {
            let before = head.len();
            match reader
                .by_ref()
                .take((MAX_HEAD + 1 - head.len()) as u64)
                .read_until(b'\n', &mut head)
            {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => return read_failed(&e),
            }
            if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
                break;
            }
            if head.len() > MAX_HEAD || head.len() == before {
                let _ = write_response(
                    reader.get_mut(),
                    &error(431, "header_too_large", "request head too large"),
                    false,
                );
                return;
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(&head), Ok(httparse::Status::Complete(_))) {
            let _ = write_response(
                reader.get_mut(),
                &error(400, "bad_request", "malformed HTTP request"),
                false,
            );
            return;
        }
        let method = req.method.unwrap_or("").to_string();
        let path = req.path.unwrap_or("").to_string();
        let mut length = 0usize;
        let mut keep_alive = req.version == Some(1);
        let mut authorization = None;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("authorization") {
                authorization = Some(h.value);
            } else if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                {
                    Some(n) => length = n,
                    None => {
                        let _ = write_response(
                            reader.get_mut(),
                            &error(400, "bad_request", "bad Content-Length"),
                            false,
                        );
                        return;
                    }
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let _ = write_response(
                    reader.get_mut(),
                    &error(411, "length_required", "send a Content-Length"),
                    false,
                );
                return;
            } else if h.name.eq_ignore_ascii_case("connection") {
                let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                keep_alive = if v.contains("close") {
                    false
                } else {
                    keep_alive || v.contains("keep-alive")
                };
            }
        }
        if length > engine.cfg.server.max_request_bytes {
            let msg = format!(
                "request body of {length} bytes exceeds max_request_bytes {}",
                engine.cfg.server.max_request_bytes
            );
            let _ = write_response(reader.get_mut(), &error(413, "too_large", &msg), false);
            return;
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        // After the body: closing a TCP connection with unread input resets it, and the client
        // could lose the 401 answer.
        if let Some(t) = token {
            if !crate::auth::authorized(authorization, &t.current()) {
                log::warn("unauthorized request", &[("path", path.clone().into())]);
                engine.metrics.http(&path, 401, std::time::Duration::ZERO);
                let msg =
                    "this listener needs `Authorization: Bearer <token>` (grpo_fast clients send \
                           $GRPO_SANDBOX_TOKEN or the contents of $GRPO_SANDBOX_TOKEN_FILE)";
                let _ = write_response(reader.get_mut(), &error(401, "unauthorized", msg), false);
                return;
            }
        }
        let t0 = std::time::Instant::now();
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        let resp = route(engine, &method, &path, &body);
        let route_path = path.split('?').next().unwrap_or(&path);
        engine.metrics.http(route_path, resp.code, t0.elapsed());
        if path != "/health" && path != "/metrics" {
            log::info(
                "request",
                &[
                    ("method", method.clone().into()),
                    ("path", path.clone().into()),
                    ("code", resp.code.into()),
                    ("bytes_in", length.into()),
                    (
                        "ms",
                        ((t0.elapsed().as_secs_f64() * 1e5).round() / 100.0).into(),
                    ),
                ],
            );
        }
        let keep = keep_alive && !SHUTDOWN.load(Ordering::Relaxed);
        let written = write_response(reader.get_mut(), &resp, keep);
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        if written.is_err() || !keep {
            return;
        }
    }
}

fn write_response<W: Write>(w: &mut W, r: &Response, keep_alive: bool) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        r.code,
        reason(r.code),
        r.content_type,
        r.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    if r.code == 503 {
        out.push_str("Retry-After: 1\r\n");
    } else if r.code == 401 {
        out.push_str("WWW-Authenticate: Bearer\r\n");
    }
    out.push_str("\r\n");
    let mut buf = out.into_bytes();
    buf.extend_from_slice(&r.body);
    w.write_all(&buf)?;
    w.flush()
}

/// Accept loop shared by the Unix and TCP listeners; returns when SHUTDOWN is set.
pub fn accept_loop<L, S>(
    engine: Arc<Engine>,
    listener: L,
    fd: i32,
    accept: impl Fn(&L) -> std::io::Result<S>,
    active: Arc<AtomicUsize>,
    token: Option<Arc<crate::auth::TokenCell>>,
) where
    S: Transport,
{
    while !SHUTDOWN.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 200) };
        if n <= 0 {
            continue;
        }
        let Ok(stream) = accept(&listener) else {
            continue;
        };
        stream.set_timeouts();
        if active.load(Ordering::Relaxed) >= engine.cfg.server.max_connections {
            let mut s = stream;
            if s.answers_busy() {
                let _ = write_response(&mut s, &error(503, "busy", "too many connections"), false);
            }
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let engine = engine.clone();
        let active2 = active.clone();
        let token = token.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                handle_connection(&engine, stream, token.as_deref());
                active2.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A connection the listeners serve: a Unix socket, TCP, or TLS over TCP (`tls.rs`).
pub trait Transport: Read + Write + Send + 'static {
    /// Idle keep-alive connections are dropped after a while; a slow client cannot hold a thread.
    fn set_timeouts(&self);
    /// Whether a connection over `max_connections` can be told "busy" with one cheap write.
    fn answers_busy(&self) -> bool {
        true
    }
    /// Called once the connection is done with.
    fn finish(&mut self) {}
}

impl Transport for std::os::unix::net::UnixStream {
    fn set_timeouts(&self) {
        let _ = self.set_read_timeout(Some(Duration::from_secs(300)));
        let _ = self.set_write_timeout(Some(Duration::from_secs(60)));
    }
}

impl Transport for std::net::TcpStream {
    fn set_timeouts(&self) {
        let _ = self.set_read_timeout(Some(Duration::from_secs(300)));
        let _ = self.set_write_timeout(Some(Duration::from_secs(60)));
        let _ = self.set_nodelay(true);
    }
}
