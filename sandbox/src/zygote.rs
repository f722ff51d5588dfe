//! The warm pool: one zygote (pre-imported interpreter) per slot, one run per slot at a time, and
//! a bounded queue in front of them. A slot that misbehaves is killed and started afresh.

use crate::isolation::{kill_slot, spawn_slot, SlotProcess, SlotSpec};
use crate::log;
use crate::protocol;
use base64::Engine;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub const ZYGOTE_SOURCE: &str = include_str!("zygote.py");
/// The zygote's native half, compiled from zygote_native.c by build.rs.
pub const ZYGOTE_NATIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/grpo_zygote_native.so"));

/// Extra time the zygote and the daemon allow beyond a run's own deadlines before they kill it.
const GRACE_MS: u64 = 2_000;

pub struct Slot {
    pub index: usize,
    proc_: SlotProcess,
    pub runs: u64,
    /// The zygote's "done" for the last request has not been read yet: the answer went out as
    /// soon as the report arrived, and the harness's teardown overlaps the next request.
    pending_done: Option<std::time::Instant>,
    /// The slot's memory cgroup's OOM-kill counter and the count last seen.
    oom: Option<(std::path::PathBuf, u64)>,
}

/// What came back from one request to a zygote.
pub struct Reply {
    /// The harness's report; None when it was killed or crashed before reporting.
    pub report: Option<Value>,
    /// The zygote killed the harness at the request's budget.
    pub killed: bool,
}

/// What a request to a slot's harness came to, as the engine reads the reply.
pub enum Harness {
    Report(Value),
    CompileError(String),
    Failed(String),
}

#[derive(Debug)]
pub enum SlotError {
    /// The slot stopped answering or broke the protocol; it has to be replaced.
    Broken(String),
    /// As Broken, but before the request reached the zygote: nothing of it ran, so it may be
    /// retried on another slot.
    NotDelivered(String),
}

impl SlotError {
    pub fn message(self) -> String {
        match self {
            SlotError::Broken(m) | SlotError::NotDelivered(m) => m,
        }
    }
}

impl Slot {
    pub fn start(spec: &SlotSpec, hello: &Value) -> Result<Slot, String> {
        let proc_ = spawn_slot(spec)?;
        let mut slot = Slot {
            index: spec.index,
            proc_,
            runs: 0,
            pending_done: None,
            oom: spec
                .oom_control
                .as_ref()
                .map(|p| (p.clone(), crate::cgroup::oom_kills(p).unwrap_or(0))),
        };
        let body = serde_json::to_vec(hello).map_err(|e| e.to_string())?;
        let res = slot
            .send(protocol::HELLO, 0, &body)
            .and_then(|_| slot.read_frame(Duration::from_secs(30)))
            .map_err(SlotError::message);
        match res {
            Ok((protocol::READY, _)) => Ok(slot),
            Ok((k, _)) => {
                kill_slot(&slot.proc_);
                Err(format!(
                    "zygote {} sent frame {:?} instead of hello",
                    spec.index, k as char
                ))
            }
            Err(e) => {
                kill_slot(&slot.proc_);
                Err(format!("zygote {} did not start: {e}", spec.index))
            }
        }
    }

    fn send(&mut self, kind: u8, budget_ms: u32, payload: &[u8]) -> Result<(), SlotError> {
        let mut hdr = Vec::with_capacity(9 + payload.len());
        hdr.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        hdr.push(kind);
        hdr.extend_from_slice(&budget_ms.to_le_bytes());
        hdr.extend_from_slice(payload);
        self.proc_
            .ctl
            .set_write_timeout(Some(Duration::from_secs(30)))
            .ok();
        self.proc_
            .ctl
            .write_all(&hdr)
            .map_err(|e| SlotError::Broken(format!("write to zygote: {e}")))
    }

    fn read_frame(&mut self, timeout: Duration) -> Result<(u8, Vec<u8>), SlotError> {
        let broken = |e: std::io::Error| SlotError::Broken(format!("read from zygote: {e}"));
        self.proc_
            .ctl
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .ok();
        let mut hdr = [0u8; 5];
        self.proc_.ctl.read_exact(&mut hdr).map_err(broken)?;
        let n = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        if n > 1 << 30 {
            return Err(SlotError::Broken("oversized frame from zygote".into()));
        }
        let mut body = vec![0u8; n];
        self.proc_.ctl.read_exact(&mut body).map_err(broken)?;
        Ok((hdr[4], body))
    }

    /// Sends one request (a `protocol` kind from the daemon) and waits for the harness report and the zygote's
    /// "done". `budget_ms` is the harness's whole allowance ('Q': the run's own limit), and
    /// `wait_ms` the longest the request may take (its units' wall time stretches while they
    /// wait for a CPU); the daemon waits a little longer. `stop` sees each unit as it streams in
    /// (its index and its shape as the engine reads it): when it says true, the zygote is told to
    /// stop the request there ('S'; all-or-nothing scoring needs no more once a test failed).
    pub fn request(
        &mut self,
        kind: u8,
        budget_ms: u64,
        wait_ms: u64,
        payload: &[u8],
        stop: &dyn Fn(usize, &Value) -> bool,
    ) -> Result<Reply, SlotError> {
        if let Some(deadline) = self.pending_done.take() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.read_frame(left) {
                Ok((protocol::DONE, _)) => {}
                Ok((k, _)) => {
                    return Err(SlotError::Broken(format!("expected done, got frame {k}")))
                }
                Err(e) => return Err(SlotError::NotDelivered(e.message())),
            }
        }
        let budget = budget_ms.max(wait_ms) + GRACE_MS;
        // 'Q' (a plain run served by the zygote itself) carries the run's own timeout.
        let header = if kind == protocol::RUN {
            budget_ms
        } else {
            budget
        };
        self.send(kind, header.min(u32::MAX as u64) as u32, payload)
            .map_err(|e| SlotError::NotDelivered(e.message()))?;
        self.runs += 1;
        let deadline = std::time::Instant::now() + Duration::from_millis(budget + GRACE_MS);
        // Units stream in as 'o' frames (raw output), then the report 'r' (or 'd' alone when
        // the harness died before reporting).
        let mut units = Vec::new();
        let mut stopped = false;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let (k, body) = self.read_frame(left)?;
            match k {
                protocol::UNIT => {
                    let unit = unit_from_frame(&body)?;
                    if !stopped && stop(units.len(), &unit) {
                        // Read by whoever captures the units; one that comes after the request
                        // has ended is skipped by the zygote's loop.
                        self.send(protocol::STOP, 0, &[])?;
                        stopped = true;
                    }
                    units.push(unit);
                }
                protocol::REPORT => {
                    self.mark_oom_kills(&mut units);
                    let mut r: Value = serde_json::from_slice(&body)
                        .map_err(|e| SlotError::Broken(format!("bad report: {e}")))?;
                    attach_units(&mut r, units);
                    self.pending_done = Some(deadline);
                    return Ok(Reply {
                        report: Some(r),
                        killed: false,
                    });
                }
                protocol::DONE => {
                    let done: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let killed = done.get("killed").and_then(Value::as_bool).unwrap_or(false);
                    return Ok(Reply {
                        report: None,
                        killed,
                    });
                }
                other => return Err(SlotError::Broken(format!("unexpected frame {other}"))),
            }
        }
    }

    /// Units killed by SIGKILL at no deadline of ours, in a slot whose memory cgroup counted
    /// an OOM kill meanwhile, were killed for memory: `"oom_killed": true` (the request's units
    /// are the only processes that cgroup has run since the last look).
    fn mark_oom_kills(&mut self, units: &mut [Value]) {
        let Some((path, seen)) = &mut self.oom else {
            return;
        };
        let sigkilled = |u: &Value| {
            u.get("signal").and_then(Value::as_i64) == Some(libc::SIGKILL as i64)
                && u.get("timed_out").and_then(Value::as_bool) != Some(true)
        };
        if !units.iter().any(sigkilled) {
            return;
        }
        let Some(now) = crate::cgroup::oom_kills(path) else {
            return;
        };
        if now > *seen {
            *seen = now;
            for u in units.iter_mut().filter(|u| sigkilled(u)) {
                u["oom_killed"] = Value::Bool(true);
            }
        }
    }

    pub fn kill(&self) {
        kill_slot(&self.proc_);
    }
}

/// One unit's 'o' frame: u32 length of a meta JSON object, the object (with `lengths` of the
/// three raw parts), then stdout, stderr and the result value as raw bytes. Returns the unit in
/// the shape the engine reads (stdout/stderr base64, result as text).
fn unit_from_frame(body: &[u8]) -> Result<Value, SlotError> {
    let bad = |what: &str| SlotError::Broken(format!("bad unit frame: {what}"));
    let m = u32::from_le_bytes(
        body.get(..4)
            .ok_or_else(|| bad("short"))?
            .try_into()
            .unwrap(),
    ) as usize;
    let meta_end = 4usize
        .checked_add(m)
        .filter(|&e| e <= body.len())
        .ok_or_else(|| bad("meta length"))?;
    let mut meta: Value =
        serde_json::from_slice(&body[4..meta_end]).map_err(|e| bad(&e.to_string()))?;
    let lengths: Vec<usize> = meta
        .get("lengths")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|n| n as usize)
                .collect()
        })
        .unwrap_or_default();
    if lengths.len() != 3 || meta_end + lengths.iter().sum::<usize>() != body.len() {
        return Err(bad("lengths"));
    }
    let (out, rest) = body[meta_end..].split_at(lengths[0]);
    let (err, result) = rest.split_at(lengths[1]);
    let b64 = |b: &[u8]| Value::from(base64::engine::general_purpose::STANDARD.encode(b));
    let obj = meta
        .as_object_mut()
        .ok_or_else(|| bad("meta is not an object"))?;
    obj.remove("lengths");
    obj.insert("stdout".into(), b64(out));
    obj.insert("stderr".into(), b64(err));
    let result = if result == b"null" { &b""[..] } else { result };
    obj.insert(
        "result".into(),
        Value::from(String::from_utf8_lossy(result).into_owned()),
    );
    Ok(meta)
}

/// Puts the streamed units into the report; a `"compile_error": true` report takes its text
/// from the first unit's stderr.
fn attach_units(report: &mut Value, units: Vec<Value>) {
    let Some(obj) = report.as_object_mut() else {
        return;
    };
    if obj.get("compile_error") == Some(&Value::Bool(true)) {
        let text = units
            .first()
            .and_then(|u| u.get("stderr"))
            .and_then(Value::as_str)
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        obj.insert("compile_error".into(), Value::from(text));
    }
    if !units.is_empty() && !obj.contains_key("units") {
        obj.insert("units".into(), Value::Array(units));
    }
}

/// Why a slot could not be had.
#[derive(Debug, PartialEq, Eq)]
pub enum AcquireError {
    Busy,
    ShuttingDown,
}

pub struct Pool {
    free: Mutex<VecDeque<Slot>>,
    cond: Condvar,
    waiting: AtomicUsize,
    max_queue: usize,
    pub size: usize,
    specs: Vec<SlotSpec>,
    hello: Value,
    pub restarts: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

pub struct SlotGuard<'a> {
    pool: &'a Pool,
    slot: Option<Slot>,
    broken: bool,
}

impl Pool {
    pub fn start(specs: Vec<SlotSpec>, hello: Value, max_queue: usize) -> Result<Pool, String> {
        let mut free = VecDeque::new();
        for spec in &specs {
            free.push_back(Slot::start(spec, &hello)?);
        }
        Ok(Pool {
            size: specs.len(),
            free: Mutex::new(free),
            cond: Condvar::new(),
            waiting: AtomicUsize::new(0),
            max_queue,
            specs,
            hello,
            restarts: AtomicU64::new(0),
            closed: false.into(),
        })
    }

    /// Takes a free slot, waiting in the queue when all are busy; a full queue answers `Busy`
    /// at once (`queue` = false bypasses the bound: for items of an already admitted batch).
    pub fn acquire(&self, queue: bool) -> Result<SlotGuard<'_>, AcquireError> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.is_empty() && queue && self.waiting.load(Ordering::Relaxed) >= self.max_queue {
            return Err(AcquireError::Busy);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        loop {
            if self.closed.load(Ordering::Relaxed) {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return Err(AcquireError::ShuttingDown);
            }
            if let Some(slot) = free.pop_front() {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return Ok(SlotGuard {
                    pool: self,
                    slot: Some(slot),
                    broken: false,
                });
            }
            free = self.cond.wait(free).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn idle(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }

    fn give_back(&self, slot: Slot, broken: bool) {
        let slot = if broken {
            slot.kill();
            self.restarts.fetch_add(1, Ordering::Relaxed);
            match Slot::start(&self.specs[slot.index], &self.hello) {
                Ok(s) => s,
                Err(e) => {
                    // Keep serving with one slot fewer rather than failing every request.
                    log::error(
                        "slot restart failed",
                        &[("slot", slot.index.into()), ("error", e.into())],
                    );
                    self.cond.notify_one();
                    return;
                }
            }
        } else {
            slot
        };
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(slot);
        self.cond.notify_one();
    }

    /// Stops handing out slots and kills the idle ones (busy ones are killed when returned).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        for s in free.drain(..) {
            s.kill();
        }
        self.cond.notify_all();
    }
}

impl SlotGuard<'_> {
    pub fn slot(&mut self) -> &mut Slot {
        self.slot.as_mut().expect("slot present until drop")
    }

    pub fn mark_broken(&mut self) {
        self.broken = true;
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            if self.pool.closed.load(Ordering::Relaxed) {
                slot.kill();
                return;
            }
            self.pool.give_back(slot, self.broken);
        }
    }
}
