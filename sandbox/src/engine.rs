//! The execution engine behind the API: runs /run and /run_tests requests on the slots (Python
//! here, the other languages through `compiled.rs`), with each request's budget, and counts
//! them. What a request and its answer are lives in `api.rs`, how a unit is judged in
//! `judge.rs`, the languages in `languages.rs`.

use crate::api::{
    check_files, compile_error_answer, tests_failure, ApiError, RunRequest, RunResponse,
    TestsRequest, TestsResponse,
};
use crate::cgroup::CgroupInfo;
use crate::compiled::Slots;
use crate::config::Config;
use crate::judge::{
    classify, judge_units, plan_assertions, plan_tests, run_response, truncate, unit_passes,
    Planned,
};
use crate::languages::{find_language, Compiler, Lang};
use crate::limits::RunLimits;
use crate::protocol;
use crate::zygote::{AcquireError, Harness, Pool, Reply, SlotError};
use serde_json::{json, Value};

pub struct Engine {
    pub cfg: Config,
    pub pool: Pool,
    pub isolated: bool,
    pub python_version: String,
    pub interpreter: String,
    pub cgroup: CgroupInfo,
    pub started: std::time::Instant,
    pub served: std::sync::atomic::AtomicU64,
    pub metrics: crate::metrics::Metrics,
    /// The compiled languages whose compiler was found at start-up.
    pub compilers: Vec<Compiler>,
    /// Builds of compiled programs by source (`build_cache.rs`).
    pub build_cache: crate::build_cache::BuildCache,
    /// How far a run's wall time may stretch while it waits for a CPU: slots over cores,
    /// rounded up (the zygote gets it too). Requests' budgets allow for it.
    pub wall_factor: u64,
    /// The CPUs this daemon's slots share (`wall_factor` comes from them and the slots).
    pub cores: usize,
}

impl From<AcquireError> for ApiError {
    fn from(e: AcquireError) -> Self {
        match e {
            AcquireError::Busy => ApiError::Busy,
            AcquireError::ShuttingDown => ApiError::Unavailable("shutting down".into()),
        }
    }
}

/// A plain run for the zygote ('Q', read by zygote_native.c `await_request`): the hard limits and
/// stdin's length as little-endian u64s, then stdin, then the source.
fn run_payload(limits: &RunLimits, stdin: &str, code: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(48 + stdin.len() + code.len());
    for v in [
        limits.cpu_s,
        limits.memory_bytes,
        limits.max_processes,
        limits.max_file_bytes,
        limits.max_open_files,
        stdin.len() as u64,
    ] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(stdin.as_bytes());
    p.extend_from_slice(code.as_bytes());
    p
}

impl Engine {
    fn base_request(&self, code: &str, limits: &RunLimits, units: Vec<Value>) -> Value {
        json!({
            "code": code,
            "limits": limits,
            "units": units,
        })
    }

    /// Runs one zygote request on a slot; `queue` = false for items of an admitted batch.
    pub(crate) fn dispatch(
        &self,
        kind: u8,
        budget_ms: u64,
        req: &Value,
        queue: bool,
    ) -> Result<Harness, ApiError> {
        self.dispatch_until(kind, budget_ms, req, queue, &|_, _| false)
    }

    /// As `dispatch`, telling the zygote to stop when `stop` says so of a unit that came back.
    pub(crate) fn dispatch_until(
        &self,
        kind: u8,
        budget_ms: u64,
        req: &Value,
        queue: bool,
        stop: &dyn Fn(usize, &Value) -> bool,
    ) -> Result<Harness, ApiError> {
        let payload = serde_json::to_vec(req).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        self.dispatch_bytes(kind, budget_ms, budget_ms, &payload, queue, stop)
    }

    fn dispatch_bytes(
        &self,
        kind: u8,
        budget_ms: u64,
        wait_ms: u64,
        payload: &[u8],
        queue: bool,
        stop: &dyn Fn(usize, &Value) -> bool,
    ) -> Result<Harness, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut guard = self.pool.acquire(queue)?;
            let slot = guard.slot();
            let slot_index = slot.index;
            match slot.request(kind, budget_ms, wait_ms, payload, stop) {
                // The slot died between requests: nothing ran; replace it and try once more.
                Err(SlotError::NotDelivered(msg)) if attempt == 1 => {
                    crate::log::warn(
                        "slot found dead, restarting",
                        &[("slot", slot_index.into()), ("error", msg.into())],
                    );
                    guard.mark_broken();
                }
                other => return self.conclude(other, guard, slot_index),
            }
        }
    }

    fn conclude(
        &self,
        outcome: Result<Reply, SlotError>,
        mut guard: crate::zygote::SlotGuard<'_>,
        slot_index: usize,
    ) -> Result<Harness, ApiError> {
        self.served
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match outcome {
            Ok(Reply {
                report: Some(r), ..
            }) => {
                if let Some(e) = r.get("compile_error").and_then(Value::as_str) {
                    return Ok(Harness::CompileError(e.to_string()));
                }
                if let Some(e) = r.get("harness_error").and_then(Value::as_str) {
                    crate::log::error(
                        "harness error",
                        &[("slot", slot_index.into()), ("error", e.into())],
                    );
                    return Ok(Harness::Failed(format!("sandbox harness failed: {e}")));
                }
                Ok(Harness::Report(r))
            }
            Ok(Reply {
                report: None,
                killed,
            }) => Ok(Harness::Failed(if killed {
                "the run exceeded its total budget and was killed".into()
            } else {
                "the sandbox harness ended without a report".into()
            })),
            Err(SlotError::Broken(msg) | SlotError::NotDelivered(msg)) => {
                crate::log::warn(
                    "slot broken, restarting",
                    &[("slot", slot_index.into()), ("error", msg.clone().into())],
                );
                guard.mark_broken();
                Ok(Harness::Failed(format!("sandbox slot failed: {msg}")))
            }
        }
    }

    /// The longest a request of `units` units may take: each unit's wall time may stretch by
    /// the time it waits for a CPU, at most `wall_factor` more times its limit.
    pub(crate) fn budget(&self, limits: &RunLimits, units: usize) -> u64 {
        limits.timeout_ms * (self.wall_factor + 1) * units as u64 + 1_000 + 100 * units as u64
    }

    /// A `/run` (or a `/batch` run item), counted in `/metrics` by its outcome.
    pub fn run(&self, req: RunRequest, queue: bool) -> Result<RunResponse, ApiError> {
        let r = self.run_program(req, queue)?;
        self.metrics.run(&r.status, r.cpu_ms);
        Ok(r)
    }

    /// A `/run_tests` (or a `/batch` tests item), counted in `/metrics` with its verdicts.
    pub fn run_tests(&self, req: TestsRequest, queue: bool) -> Result<TestsResponse, ApiError> {
        let r = self.judge_tests(req, queue)?;
        let cpu_ms = r.tests.iter().map(|t| t.cpu_ms).sum();
        self.metrics.tests(&r.status, r.passed, r.total, cpu_ms);
        Ok(r)
    }

    fn run_program(&self, req: RunRequest, queue: bool) -> Result<RunResponse, ApiError> {
        let lang = find_language(&self.compilers, &req.language)?;
        check_files(&req.files, &req.fetch_files)?;
        let limits = RunLimits::clamp(&self.cfg.limits, req.timeout_ms, req.memory_mb);
        if let Lang::Compiled(comp) = lang {
            return crate::compiled::run(self, comp, req, limits, queue);
        }
        // Without files the zygote serves the run itself ('Q'): one fork, no harness process,
        // and a binary request that the child reads natively.
        let outcome = if req.files.is_empty() && req.fetch_files.is_empty() {
            let payload = run_payload(&limits, &req.stdin, &req.code);
            let wait = self.budget(&limits, 1);
            self.dispatch_bytes(
                protocol::RUN,
                limits.timeout_ms,
                wait,
                &payload,
                queue,
                &|_, _| false,
            )?
        } else {
            let unit = json!({"mode": "program", "stdin": req.stdin});
            let mut z = self.base_request(&req.code, &limits, vec![unit]);
            z["files"] = json!(req.files);
            z["fetch_files"] = json!(req.fetch_files);
            self.dispatch(protocol::RUN_WITH_FILES, self.budget(&limits, 1), &z, queue)?
        };
        let report = match outcome {
            Harness::Report(r) => r,
            Harness::CompileError(e) => {
                return Ok(RunResponse {
                    status: "runtime_error".into(),
                    exit_code: Some(1),
                    stderr: e,
                    ..Default::default()
                })
            }
            Harness::Failed(m) => return Ok(RunResponse::sandbox_error(m)),
        };
        let Some(u) = report.get("units").and_then(|u| u.get(0)) else {
            return Ok(RunResponse::sandbox_error("empty report"));
        };
        Ok(run_response(
            classify(u, &limits),
            report.get("files").cloned(),
        ))
    }

    fn judge_tests(&self, req: TestsRequest, queue: bool) -> Result<TestsResponse, ApiError> {
        let lang = find_language(&self.compilers, &req.language)?;
        let limits = RunLimits::clamp(&self.cfg.limits, req.timeout_ms, req.memory_mb);
        if let (Lang::Compiled(c), Some(_)) = (lang, &req.test_code) {
            return Err(ApiError::BadRequest(format!(
                "test_code (assertions) is Python's; {} programs take stdin/stdout tests",
                c.spec.label
            )));
        }
        let plan = self.plan(&req, queue)?;
        let plan = match plan {
            Ok(p) => p,
            Err(msg) => return Ok(tests_failure("sandbox_error", msg, 0)),
        };
        let total = plan.len();
        if total == 0 {
            return Err(ApiError::BadRequest(
                "no tests: give `tests` or `test_code`".into(),
            ));
        }
        if total > self.cfg.limits.max_tests {
            return Err(ApiError::BadRequest(format!(
                "{total} tests exceed the maximum of {}",
                self.cfg.limits.max_tests
            )));
        }
        // Output kept per test shrinks with the number of tests, so one request cannot make the
        // harness and the daemon hold gigabytes (1000 tests x 1 MiB); never below 64 KiB.
        let mut limits = limits;
        limits.max_output_bytes = limits
            .max_output_bytes
            .min(((64 << 20) / total).max(64 << 10));
        if let Lang::Compiled(comp) = lang {
            return crate::compiled::tests(self, comp, &req, &plan, limits, queue);
        }
        let results = match self.python_units(&req, &plan, &limits, 0..total, queue)? {
            Ok(units) => units,
            Err(Harness::CompileError(e)) => {
                return Ok(compile_error_answer(
                    "the program does not compile".into(),
                    total,
                    "runtime_error".into(),
                    Some(1),
                    truncate(&e, req.keep_output_bytes),
                ))
            }
            Err(Harness::Failed(m)) => return Ok(tests_failure("sandbox_error", m, total)),
            Err(Harness::Report(_)) => unreachable!("python_units returns reports as units"),
        };
        Ok(judge_units(&req, &plan, &results, &limits))
    }

    /// Runs the tests `range` of a Python tests request on one slot and returns their units,
    /// in order. The tests share processes (`tests_per_process`), so they run one after another;
    /// when one times out while slots stand idle and no request waits, the rest are spread over
    /// the idle slots in contiguous pieces (each spreading again the same way). A program that
    /// blocks until its deadline on every test then costs about one limit of wall time, not one
    /// per test; a spinning one costs the same CPU either way. Verdicts do not change: each test
    /// already runs in a fresh process after a timeout kills its predecessor.
    fn python_units(
        &self,
        req: &TestsRequest,
        plan: &[Planned],
        limits: &RunLimits,
        range: std::ops::Range<usize>,
        queue: bool,
    ) -> Result<Result<Vec<Value>, Harness>, ApiError> {
        let n = range.len();
        let units: Vec<Value> = plan[range.clone()].iter().map(|p| p.unit.clone()).collect();
        // Served by the zygote ('U'): a fixed header it reads (units, ms per unit, output cap,
        // units per process; 0 = configured), then the request, which only T parses.
        let zreq = self.base_request(&req.code, limits, units);
        let per: u32 = if req.fresh_process_per_test { 1 } else { 0 };
        let mut payload = Vec::with_capacity(256);
        for v in [
            n as u32,
            limits.timeout_ms.min(u32::MAX as u64) as u32,
            limits.max_output_bytes.min(u32::MAX as usize) as u32,
            per,
        ] {
            payload.extend_from_slice(&v.to_le_bytes());
        }
        serde_json::to_writer(&mut payload, &zreq)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let budget = self.budget(limits, n);
        let spread = std::cell::Cell::new(false);
        let stop = |i: usize, u: &Value| {
            if req.stop_at_first_failure {
                return plan
                    .get(range.start + i)
                    .is_some_and(|p| !unit_passes(req, p, u, limits));
            }
            let timed_out = u.get("timed_out").and_then(Value::as_bool) == Some(true);
            if timed_out && n - i > 2 && self.pool.idle() > 0 && self.pool.queued() == 0 {
                spread.set(true);
                return true;
            }
            false
        };
        let report =
            match self.dispatch_bytes(protocol::TESTS, budget, budget, &payload, queue, &stop)? {
                Harness::Report(r) => r,
                other => return Ok(Err(other)),
            };
        let mut results = report
            .get("units")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let stopped = report.get("stopped").and_then(Value::as_bool) == Some(true);
        if spread.get() {
            // A unit the stop cut short (it had begun when the stop came) runs again in a piece.
            let cut = results
                .iter()
                .position(|u| u.get("stopped").and_then(Value::as_bool) == Some(true));
            results.truncate(cut.unwrap_or(results.len()));
        }
        if spread.get() && results.len() < n {
            let rest = range.start + results.len()..range.end;
            // A unit after the timed-out one may have finished before the stop: `rest` can be 1.
            let pieces = (self.pool.idle() + 1).max(2).min(rest.len());
            let size = rest.len().div_ceil(pieces);
            let ranges: Vec<_> = (rest.start..rest.end)
                .step_by(size)
                .map(|a| a..(a + size).min(rest.end))
                .collect();
            self.metrics.tests_spread();
            let parts: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = ranges
                    .into_iter()
                    .map(|r| s.spawn(move || self.python_units(req, plan, limits, r, false)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Ok(Err(Harness::Failed("a test runner thread panicked".into())))
                        })
                    })
                    .collect()
            });
            for part in parts {
                match part? {
                    Ok(units) => results.extend(units),
                    Err(h) => return Ok(Err(h)),
                }
            }
        } else if results.len() != n && !(stopped && results.len() < n) {
            return Ok(Err(Harness::Failed(
                "the harness reported the wrong number of tests".into(),
            )));
        }
        Ok(Ok(results))
    }

    /// Turns the request's tests into harness units plus how to judge each one. Assertion-style
    /// test code is parsed by a throwaway fork of the zygote, so the expected literals stay here.
    fn plan(
        &self,
        req: &TestsRequest,
        queue: bool,
    ) -> Result<Result<Vec<Planned>, String>, ApiError> {
        let mut plan = plan_tests(req)?;
        if let Some(code) = &req.test_code {
            let budget = 10_000;
            let preq = json!({"test_code": code, "entry_point": req.entry_point});
            let parsed = match self.dispatch(protocol::PARSE, budget, &preq, queue)? {
                Harness::Report(r) => r,
                Harness::CompileError(e) | Harness::Failed(e) => return Ok(Err(e)),
            };
            if let Some(e) = parsed.get("error").and_then(Value::as_str) {
                return Err(ApiError::BadRequest(e.to_string()));
            }
            plan_assertions(&parsed, &mut plan)?;
        }
        Ok(Ok(plan))
    }
}

impl Slots for Engine {
    fn dispatch_until(
        &self,
        kind: u8,
        budget_ms: u64,
        req: &Value,
        queue: bool,
        stop: &dyn Fn(usize, &Value) -> bool,
    ) -> Result<Harness, ApiError> {
        Engine::dispatch_until(self, kind, budget_ms, req, queue, stop)
    }

    fn budget(&self, limits: &RunLimits, units: usize) -> u64 {
        Engine::budget(self, limits, units)
    }

    fn wall_factor(&self) -> u64 {
        self.wall_factor
    }

    fn build_cache(&self) -> &crate::build_cache::BuildCache {
        &self.build_cache
    }
}
