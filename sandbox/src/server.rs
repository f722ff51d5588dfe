//! HTTP/1.1 + JSON over a Unix socket (and optionally TCP): a thread per connection, keep-alive,
//! request bodies capped, the token checked from the head before any body is read, every phase
//! of a request under a deadline and connections handed out by the rules of `connections.rs`.
//! Small on purpose: the work is in the sandbox, not here.

use crate::api::{ApiError, RunRequest, TestsRequest};
use crate::connections::{Closed, ConnLimits, Connections, Peer, Phase, Ticket};
use crate::engine::Engine;
use crate::log;
use crate::output_budget;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub static SHUTDOWN: AtomicBool = AtomicBool::new(false);
/// Requests being processed (not idle keep-alive connections): what a graceful shutdown waits for.
pub static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

const MAX_HEAD: usize = 16 << 10;
/// What a refused client may still send (and we read and drop) before its connection closes.
const LINGER_BYTES: usize = 1 << 20;

/// The connections of both listeners, made by the first accept loop (with its watchdog).
static CONNECTIONS: OnceLock<Arc<Connections>> = OnceLock::new();

fn connections(engine: &Engine) -> Arc<Connections> {
    CONNECTIONS
        .get_or_init(|| {
            let c = Connections::new(ConnLimits::from_config(&engine.cfg.server));
            crate::connections::watchdog(c.clone());
            c
        })
        .clone()
}

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
                Ok(r) => bounded(engine, serde_json::to_value(r).unwrap_or_default()),
                Err(e) => api_error(e),
            },
            Err(r) => r,
        },
        ("POST", "/run_tests") => match parse::<TestsRequest>(body) {
            Ok(req) => match engine.run_tests(req, true) {
                Ok(r) => bounded(engine, serde_json::to_value(r).unwrap_or_default()),
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
    // Answers are bounded together as they arrive, so the daemon never holds more output
    // than the budget plus the items still running.
    let budget = std::sync::Mutex::new(output_budget::Budget::new(
        engine.cfg.server.max_response_output_bytes,
        n,
    ));
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
                budget.lock().unwrap_or_else(|e| e.into_inner()).add(i, v);
            });
        }
    });
    let (results, truncated) = budget
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .finish();
    if truncated {
        engine.metrics.output_truncated();
    }
    json_response(200, &json!({"results": results, "truncated": truncated}))
}

/// One answer, its program output bounded by `server.max_response_output_bytes`.
fn bounded(engine: &Engine, mut v: Value) -> Response {
    if output_budget::bound_one(&mut v, engine.cfg.server.max_response_output_bytes) {
        engine.metrics.output_truncated();
    }
    json_response(200, &v)
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
        connections_open: CONNECTIONS.get().map_or(0, |c| c.counts().0),
        connections_closed: CONNECTIONS.get().map_or(vec![], |c| {
            let st = &c.stats;
            let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            vec![
                ("shed_pending", n(&st.shed_pending)),
                ("shed_idle", n(&st.shed_idle)),
                ("refused_per_peer", n(&st.refused_per_peer)),
                ("refused_full", n(&st.refused_full)),
                ("timed_out", n(&st.timed_out)),
            ]
        }),
    })
}

fn connections_health(engine: &Engine) -> Value {
    let Some(c) = CONNECTIONS.get() else {
        return Value::Null;
    };
    let (open, pending) = c.counts();
    let st = &c.stats;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let s = &engine.cfg.server;
    json!({
        "open": open, "pending": pending, "accepted": n(&st.accepted),
        "shed_pending": n(&st.shed_pending), "shed_idle": n(&st.shed_idle),
        "refused_per_peer": n(&st.refused_per_peer), "refused_full": n(&st.refused_full),
        "timed_out": n(&st.timed_out),
        "max": s.max_connections, "max_per_peer": s.max_connections_per_peer,
        "max_pending": s.max_pending_connections, "header_timeout_s": s.header_timeout_s,
        "request_timeout_s": s.request_timeout_s, "idle_timeout_s": s.idle_timeout_s,
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
            "pids": engine.cgroup.pids, "memory": engine.cgroup.memory, "kill": engine.cgroup.kill,
            "cgroup_note": engine.cgroup.note,
            // "root": each slot has host uids of its own; "rootless": every slot, and the
            // daemon, is the daemon's own uid (cgroup.rs and isolation.rs say what that costs).
            "privilege": engine.cfg.isolation.mode,
            "host_uids": if engine.cfg.isolation.mode == "rootless" {
                // SAFETY: geteuid cannot fail.
                let me = unsafe { libc::geteuid() };
                json!({"zygotes": [me], "programs": [me]})
            } else {
                json!({
                    "zygotes": (0..engine.pool.size).map(|i| engine.cfg.isolation.uid_base + 2 * i as u32).collect::<Vec<_>>(),
                    "programs": (0..engine.pool.size).map(|i| engine.cfg.isolation.uid_base + 2 * i as u32 + 1).collect::<Vec<_>>(),
                })
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
        // What a client needs to bound a request's time: a run's wall time is at most its limit
        // times (wall_factor + 1), slots running at once share `cores` CPUs.
        "cores": engine.cores,
        "wall_factor": engine.wall_factor,
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
        "max_response_output_bytes": engine.cfg.server.max_response_output_bytes,
        "connections": connections_health(engine),
        "build_cache": {"entries": cache.entries, "bytes": cache.bytes, "max_bytes": cache.cap,
                        "hits": cache.hits, "misses": cache.misses},
        "tcp": if engine.cfg.server.tcp.is_empty() { Value::Null } else {
            json!({"address": engine.cfg.server.tcp, "token": !engine.cfg.server.token_file.is_empty(),
                   "tls": !engine.cfg.server.tls_cert.is_empty()})
        },
    })
}

/// Serves one connection until the client closes it, asks to, or the daemon shuts down (or
/// closes it: a deadline missed, room made for another). With a `token`, a request whose head
/// lacks `Authorization: Bearer <token>` is answered 401 before its body is read, and the
/// connection closed.
pub fn handle_connection<S: Transport>(
    engine: &Engine,
    stream: S,
    token: Option<&crate::auth::TokenCell>,
    ticket: Ticket,
) {
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    serve(engine, &mut reader, token, &ticket);
    reader.get_mut().finish();
    // Off the registry before the socket closes, so its descriptor is never shut by mistake
    // once the number is reused.
    drop(ticket);
}

/// A TLS handshake that failed (a plain-HTTP client, an unknown CA) ends in a read error: say
/// why, or the operator sees only clients that cannot connect. Timeouts and resets stay quiet,
/// as do connections the daemon closed itself.
fn read_failed(e: &std::io::Error, ticket: &Ticket) {
    if e.kind() == std::io::ErrorKind::InvalidData && ticket.closed().is_none() {
        log::warn("connection dropped", &[("error", e.to_string().into())]);
    }
}

/// A request the daemon gave up reading: past a deadline it says so (408) before closing.
fn gave_up<S: Read + Write>(reader: &mut BufReader<S>, ticket: &Ticket) {
    if let Some(Closed::TimedOut(phase @ (Phase::Head | Phase::Body))) = ticket.closed() {
        let what = if phase == Phase::Head {
            "the request head did not arrive within server.header_timeout_s"
        } else {
            "the request did not arrive within server.request_timeout_s"
        };
        let _ = write_response(reader.get_mut(), &error(408, "timeout", what), false);
    }
}

/// Answers with a refusal and closes: first stops writing and reads (and drops) what the client
/// still sends, up to `LINGER_BYTES` and a short deadline, since closing a TCP connection with
/// unread input resets it and the client could lose the answer.
fn refuse<S: Transport>(reader: &mut BufReader<S>, ticket: &Ticket, r: &Response) {
    ticket.closing();
    if write_response(reader.get_mut(), r, false).is_err() {
        return;
    }
    reader.get_mut().half_close();
    let mut sink = [0u8; 8192];
    let mut left = LINGER_BYTES;
    while left > 0 {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn serve<S: Transport>(
    engine: &Engine,
    reader: &mut BufReader<S>,
    token: Option<&crate::auth::TokenCell>,
    ticket: &Ticket,
) {
    // A TLS client on a plain listener sends a handshake record (0x16), which has no line end
    // to wait for: close at once, so it fails fast with its own "not TLS" error.
    match reader.fill_buf() {
        Ok([0x16, ..]) => {
            let e = "a TLS handshake on a plain listener (give the daemon --tls-cert, or connect without TLS)";
            log::warn("connection dropped", &[("error", e.into())]);
            return;
        }
        Err(e) => return read_failed(&e, ticket),
        Ok(_) => {}
    }
    loop {
        // Waits (idle) for the request's first byte; its head is due from then on.
        match reader.fill_buf() {
            Ok([]) => return,
            Ok(_) => {}
            Err(e) => return read_failed(&e, ticket),
        }
        ticket.request_started();
        let mut head = Vec::new();
        // Read until the blank line ending the head.
        loop {
            let before = head.len();
            match reader
                .by_ref()
                .take((MAX_HEAD + 1 - head.len()) as u64)
                .read_until(b'\n', &mut head)
            {
                Ok(0) => return gave_up(reader, ticket),
                Ok(_) => {}
                Err(e) => {
                    read_failed(&e, ticket);
                    return gave_up(reader, ticket);
                }
            }
            if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
                break;
            }
            if head.len() > MAX_HEAD || head.len() == before {
                let r = error(431, "header_too_large", "request head too large");
                return refuse(reader, ticket, &r);
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(&head), Ok(httparse::Status::Complete(_))) {
            let r = error(400, "bad_request", "malformed HTTP request");
            return refuse(reader, ticket, &r);
        }
        let method = req.method.unwrap_or("").to_string();
        let path = req.path.unwrap_or("").to_string();
        let mut length = 0usize;
        let mut keep_alive = req.version == Some(1);
        let mut authorization = None;
        let mut bad = None;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("authorization") {
                authorization = Some(h.value);
            } else if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                {
                    Some(n) => length = n,
                    None => bad = Some(error(400, "bad_request", "bad Content-Length")),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                bad = Some(error(411, "length_required", "send a Content-Length"));
            } else if h.name.eq_ignore_ascii_case("connection") {
                let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                keep_alive = if v.contains("close") {
                    false
                } else {
                    keep_alive || v.contains("keep-alive")
                };
            }
        }
        // The token first, from the head alone: a client without it never gets a body read,
        // so announcing a huge one costs the daemon nothing.
        if let Some(t) = token {
            if !crate::auth::authorized(authorization, &t.current()) {
                log::warn("unauthorized request", &[("path", path.clone().into())]);
                engine.metrics.http(&path, 401, std::time::Duration::ZERO);
                let msg =
                    "this listener needs `Authorization: Bearer <token>` (grpo_fast clients send \
                           $GRPO_SANDBOX_TOKEN or the contents of $GRPO_SANDBOX_TOKEN_FILE)";
                return refuse(reader, ticket, &error(401, "unauthorized", msg));
            }
        }
        ticket.authorized();
        if let Some(r) = bad {
            return refuse(reader, ticket, &r);
        }
        if length > engine.cfg.server.max_request_bytes {
            let msg = format!(
                "request body of {length} bytes exceeds max_request_bytes {}",
                engine.cfg.server.max_request_bytes
            );
            return refuse(reader, ticket, &error(413, "too_large", &msg));
        }
        // Grown as bytes arrive: memory follows what a client sends, not what it announces.
        let mut body = Vec::with_capacity(length.min(1 << 20));
        if length > 0 {
            ticket.reading_body();
            match reader.by_ref().take(length as u64).read_to_end(&mut body) {
                Ok(n) if n == length => {}
                _ => return gave_up(reader, ticket),
            }
        }
        ticket.working();
        let t0 = std::time::Instant::now();
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        let resp = route(engine, &method, &path, &body);
        drop(body);
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
        ticket.writing();
        let written = write_response(reader.get_mut(), &resp, keep);
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        if written.is_err() || !keep {
            return;
        }
        ticket.idle();
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

/// Accept loop shared by the Unix and TCP listeners; returns when SHUTDOWN is set. `active`
/// counts this daemon's open connections (both listeners); who may hold one is decided by
/// `connections.rs`.
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
    let conns = connections(&engine);
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
        let ticket = match conns.admit(stream.raw_fd(), stream.peer()) {
            Ok(t) => t,
            Err(refusal) => {
                let mut s = stream;
                if s.answers_busy() {
                    let _ = write_response(&mut s, &error(503, "busy", refusal.message()), false);
                }
                continue;
            }
        };
        active.fetch_add(1, Ordering::Relaxed);
        let engine = engine.clone();
        let active2 = active.clone();
        let token = token.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                handle_connection(&engine, stream, token.as_deref(), ticket);
                active2.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A connection the listeners serve: a Unix socket, TCP, or TLS over TCP (`tls.rs`).
pub trait Transport: Read + Write + Send + 'static {
    /// Socket timeouts, a backstop behind the deadlines `connections.rs` keeps.
    fn set_timeouts(&self);
    /// The socket, for the registry to shut it down.
    fn raw_fd(&self) -> RawFd;
    fn peer(&self) -> Peer;
    /// Stops sending (the peer reads the end of the stream), still reading.
    fn half_close(&mut self);
    /// Whether a connection refused at accept can be told "busy" with one cheap write.
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

    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }

    fn peer(&self) -> Peer {
        crate::connections::unix_peer(self.as_raw_fd())
    }

    fn half_close(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Transport for std::net::TcpStream {
    fn set_timeouts(&self) {
        let _ = self.set_read_timeout(Some(Duration::from_secs(300)));
        let _ = self.set_write_timeout(Some(Duration::from_secs(60)));
        let _ = self.set_nodelay(true);
    }

    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }

    fn peer(&self) -> Peer {
        self.peer_addr()
            .map(|a| Peer::Ip(a.ip()))
            .unwrap_or(Peer::Unknown)
    }

    fn half_close(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}
