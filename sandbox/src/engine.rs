//! The execution engine behind the API: turns /run and /run_tests requests into zygote requests,
//! classifies outcomes and judges tests (outside the sandbox).

use crate::cgroup::CgroupInfo;
use crate::checker::{check_chain, stdout_matches, CompareMode, PyVal};
use crate::config::Config;
use crate::limits::RunLimits;
use crate::zygote::{AcquireError, Pool, Reply, SlotError};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[serde(default = "python")]
    pub language: String,
    pub code: String,
    #[serde(default)]
    pub stdin: String,
    /// Files written into the run's /tmp before it starts: relative path -> UTF-8 text.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Top-level names in /tmp read back after the run (never through a symlink).
    #[serde(default)]
    pub fetch_files: Vec<String>,
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
}

fn python() -> String {
    "python".into()
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RunResponse {
    pub status: String,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub max_rss_kb: i64,
    pub truncated: bool,
    /// With status `timeout`: which limit ended the run, "cpu" (its CPU time reached the limit)
    /// or "wall" (the wall-clock backstop: the limit, not counting time spent waiting for a CPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_kind: Option<String>,
    /// With status `timeout`: how long the run had waited for a CPU, which its wall-clock
    /// backstop did not count (more runs in flight than cores, or a busy host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_wait_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One test of /run_tests. Exactly one style per test.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// stdin/stdout style.
    pub stdin: Option<String>,
    pub expected_stdout: Option<String>,
    /// Function-call style: name, positional args, keyword args and the expected return value.
    pub call: Option<String>,
    #[serde(default)]
    pub args: Vec<Value>,
    #[serde(default)]
    pub kwargs: serde_json::Map<String, Value>,
    /// `Some(Value::Null)` for `"expected": null` (a function that should return `None`); `None`
    /// only when the key is absent. Plain `Option<Value>` would merge the two.
    #[serde(default, deserialize_with = "present")]
    pub expected: Option<Value>,
}

/// A field that is present, whatever its value (JSON `null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestsRequest {
    #[serde(default = "python")]
    pub language: String,
    pub code: String,
    #[serde(default)]
    pub tests: Vec<TestCase>,
    /// Assertion style (HumanEval / MBPP): Python test code; `entry_point` names the function
    /// that a `check(candidate)` receives.
    pub test_code: Option<String>,
    pub entry_point: Option<String>,
    #[serde(default)]
    pub compare: CompareMode,
    #[serde(default = "default_tol")]
    pub float_tolerance: f64,
    /// Per test.
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    /// Bytes of stdout/stderr kept per test in the answer (the run itself is capped by config).
    #[serde(default = "default_keep")]
    pub keep_output_bytes: usize,
    /// Run every test in a fresh process (slower; by default a process runs up to
    /// `limits.tests_per_process` tests one after another, each from a fresh `__main__`).
    #[serde(default)]
    pub fresh_process_per_test: bool,
    /// All-or-nothing scoring: stop at the first test that fails (the program is killed there;
    /// the tests after it are reported `skipped`), since no later test can change the score.
    #[serde(default)]
    pub stop_at_first_failure: bool,
}

fn default_tol() -> f64 {
    1e-6
}

fn default_keep() -> usize {
    2048
}

#[derive(Debug, Serialize, Clone)]
pub struct TestVerdict {
    pub index: usize,
    pub passed: bool,
    pub status: String,
    pub reason: String,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub stdout: String,
    pub stderr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_wait_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TestsResponse {
    /// ok (the tests ran; see `passed`), compile_error, sandbox_error.
    pub status: String,
    pub passed: usize,
    pub total: usize,
    pub pass_fraction: f64,
    pub all_passed: bool,
    pub tests: Vec<TestVerdict>,
    pub first_failure: Option<TestVerdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An error answered with an HTTP status.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Busy,
    Unavailable(String),
}

impl From<AcquireError> for ApiError {
    fn from(e: AcquireError) -> Self {
        match e {
            AcquireError::Busy => ApiError::Busy,
            AcquireError::ShuttingDown => ApiError::Unavailable("shutting down".into()),
        }
    }
}

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
    pub compilers: Vec<crate::compiled::Compiler>,
    /// Builds of compiled programs by source (`build_cache.rs`).
    pub build_cache: crate::build_cache::BuildCache,
    /// How far a run's wall time may stretch while it waits for a CPU: slots over cores,
    /// rounded up (the zygote gets it too). Requests' budgets allow for it.
    pub wall_factor: u64,
}

/// What the harness reported for one unit (one program run or one test).
pub(crate) struct UnitOutcome {
    pub(crate) status: String,
    pub(crate) exit_code: Option<i64>,
    pub(crate) signal: Option<i64>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) wall_ms: f64,
    pub(crate) cpu_ms: f64,
    pub(crate) max_rss_kb: i64,
    pub(crate) truncated: bool,
    pub(crate) result: Option<String>,
    pub(crate) timeout_kind: Option<String>,
    pub(crate) cpu_wait_ms: Option<f64>,
}

pub(crate) fn b64(v: &Value, key: &str) -> Vec<u8> {
    let s = v.get(key).and_then(Value::as_str).unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated]", &s[..end])
}

pub(crate) fn classify(u: &Value, limits: &RunLimits) -> UnitOutcome {
    let exit_code = u.get("exit_code").and_then(Value::as_i64);
    let signal = u.get("signal").and_then(Value::as_i64);
    let cpu_ms = u.get("cpu_ms").and_then(Value::as_f64).unwrap_or(0.0);
    let stderr = b64(u, "stderr");
    let flag = |k: &str| u.get(k).and_then(Value::as_bool).unwrap_or(false);
    let tail = lossy(&stderr[stderr.len().saturating_sub(4096)..]);
    let status = if exit_code == Some(111) && tail.contains("sandbox setup failed") {
        "sandbox_error"
    } else if flag("output_limit") {
        "output_limit"
    } else if flag("oom_killed") {
        "memory_limit"
    } else if flag("timed_out")
        || signal == Some(libc::SIGXCPU as i64)
        || (signal == Some(libc::SIGKILL as i64) && cpu_ms >= (limits.cpu_s * 1000) as f64 * 0.95)
    {
        "timeout"
    } else if (exit_code.unwrap_or(0) != 0 || signal.is_some())
        && (tail.contains("MemoryError")
            || tail.contains("Cannot allocate memory")
            || tail.contains("out of memory")
            || tail.contains("std::bad_alloc")
            || tail.contains("java.lang.OutOfMemoryError")
            || (tail.contains("memory allocation of") && tail.contains("failed")))
    {
        "memory_limit"
    } else if exit_code != Some(0) || signal.is_some() {
        "runtime_error"
    } else {
        "ok"
    };
    let timeout_kind = (status == "timeout").then(|| {
        let kind = u.get("timeout_kind").and_then(Value::as_str);
        // SIGXCPU (or SIGKILL at the hard limit): RLIMIT_CPU, the CPU limit's backstop.
        kind.unwrap_or(if flag("timed_out") { "wall" } else { "cpu" })
            .to_string()
    });
    let cpu_wait_ms = timeout_kind
        .as_ref()
        .and(u.get("cpu_wait_ms").and_then(Value::as_f64));
    UnitOutcome {
        status: status.into(),
        timeout_kind,
        cpu_wait_ms,
        exit_code,
        signal,
        stdout: b64(u, "stdout"),
        stderr,
        wall_ms: u.get("wall_ms").and_then(Value::as_f64).unwrap_or(0.0),
        cpu_ms,
        max_rss_kb: u.get("max_rss_kb").and_then(Value::as_i64).unwrap_or(0),
        truncated: flag("truncated"),
        result: u.get("result").and_then(Value::as_str).map(str::to_string),
    }
}

impl RunResponse {
    /// The sandbox itself failed (never the program's fault); `message` says how.
    pub(crate) fn sandbox_error(message: impl Into<String>) -> RunResponse {
        RunResponse {
            status: "sandbox_error".into(),
            message: Some(message.into()),
            ..Default::default()
        }
    }
}

/// A run's answer from its unit's outcome (and the files fetched after it).
pub(crate) fn run_response(o: UnitOutcome, files: Option<Value>) -> RunResponse {
    RunResponse {
        status: o.status,
        exit_code: o.exit_code,
        signal: o.signal,
        stdout: lossy(&o.stdout),
        stderr: lossy(&o.stderr),
        wall_ms: o.wall_ms,
        cpu_ms: o.cpu_ms,
        max_rss_kb: o.max_rss_kb,
        truncated: o.truncated,
        timeout_kind: o.timeout_kind,
        cpu_wait_ms: o.cpu_wait_ms,
        files,
        message: None,
    }
}

/// The languages a request may name (aliases included).
#[derive(Clone, Copy)]
pub(crate) enum Lang<'a> {
    Python,
    Compiled(&'a crate::compiled::Compiler),
}

/// Python's names in requests.
const PYTHON_NAMES: [&str; 3] = ["python", "python3", "py"];

impl Engine {
    /// The languages this daemon runs, by their main names: Python, then each compiled
    /// language whose compiler was found.
    pub fn language_names(&self) -> Vec<&'static str> {
        std::iter::once("python")
            .chain(self.compilers.iter().map(|c| c.spec.name))
            .collect()
    }

    fn language(&self, lang: &str) -> Result<Lang<'_>, ApiError> {
        let wanted = lang.to_ascii_lowercase();
        let lang = wanted.as_str();
        if PYTHON_NAMES.contains(&lang) {
            return Ok(Lang::Python);
        }
        let named = |s: &crate::compiled::LangSpec| s.name == lang || s.aliases.contains(&lang);
        if let Some(c) = self.compilers.iter().find(|c| named(c.spec)) {
            return Ok(Lang::Compiled(c));
        }
        let runs = self.language_names().join(", ");
        if let Some(s) = crate::compiled::LANGUAGES.iter().find(|s| named(s)) {
            return Err(ApiError::BadRequest(format!(
                "{} is not available on this daemon: no compiler was found (see [{}] compiler); \
                 it runs: {runs}",
                s.label, s.name
            )));
        }
        let known = PYTHON_NAMES.iter().copied().chain(
            crate::compiled::LANGUAGES
                .iter()
                .flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied())),
        );
        let hint = closest(lang, known)
            .map(|n| format!(" (did you mean {n}?)"))
            .unwrap_or_default();
        Err(ApiError::BadRequest(format!(
            "unsupported language {lang:?}{hint}; this daemon runs: {runs}"
        )))
    }
}

/// The known name nearest to `word` by edit distance (a transposition counts one), when it is
/// near enough to be a typo: at most a third of the word's letters.
fn closest<'a>(word: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    known
        .map(|k| (edit_distance(word, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// adjacent letters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

fn check_files(files: &BTreeMap<String, String>, fetch: &[String]) -> Result<(), ApiError> {
    for name in files.keys() {
        let bad = name.is_empty()
            || name.starts_with('/')
            || name
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            || name.contains('\0');
        if bad {
            return Err(ApiError::BadRequest(format!(
                "bad file name {name:?}: use a relative path without '..'"
            )));
        }
        // `a` and `a/b` cannot both exist: `a` would be a file and a folder. Names are sorted,
        // so any name that is a folder of another is followed by the names under it.
        let folder = format!("{name}/");
        if let Some((under, _)) = files.range(folder.clone()..).next() {
            if under.starts_with(&folder) {
                return Err(ApiError::BadRequest(format!(
                    "file names {name:?} and {under:?} conflict: {name:?} cannot be both a file and a folder"
                )));
            }
        }
    }
    for name in fetch {
        if name.is_empty()
            || name.contains('/')
            || name == "."
            || name == ".."
            || name.contains('\0')
        {
            return Err(ApiError::BadRequest(format!(
                "bad fetch_files name {name:?}: top-level names only"
            )));
        }
    }
    Ok(())
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

pub enum Harness {
    Report(Value),
    CompileError(String),
    Failed(String),
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
        self.metrics.tests(&r.status, r.passed, r.total);
        Ok(r)
    }

    fn run_program(&self, req: RunRequest, queue: bool) -> Result<RunResponse, ApiError> {
        let lang = self.language(&req.language)?;
        check_files(&req.files, &req.fetch_files)?;
        let limits = RunLimits::clamp(&self.cfg.limits, req.timeout_ms, req.memory_mb);
        if let Lang::Compiled(comp) = lang {
            return self.run_compiled(comp, req, limits, queue);
        }
        // Without files the zygote serves the run itself ('Q'): one fork, no harness process,
        // and a binary request that the child reads natively.
        let outcome = if req.files.is_empty() && req.fetch_files.is_empty() {
            let payload = run_payload(&limits, &req.stdin, &req.code);
            let wait = self.budget(&limits, 1);
            self.dispatch_bytes(b'Q', limits.timeout_ms, wait, &payload, queue, &|_, _| {
                false
            })?
        } else {
            let unit = json!({"mode": "program", "stdin": req.stdin});
            let mut z = self.base_request(&req.code, &limits, vec![unit]);
            z["files"] = json!(req.files);
            z["fetch_files"] = json!(req.fetch_files);
            self.dispatch(b'R', self.budget(&limits, 1), &z, queue)?
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
        let lang = self.language(&req.language)?;
        let limits = RunLimits::clamp(&self.cfg.limits, req.timeout_ms, req.memory_mb);
        if let (Lang::Compiled(c), Some(_)) = (lang, &req.test_code) {
            return Err(ApiError::BadRequest(format!(
                "test_code (assertions) is Python's; {} programs take stdin/stdout tests",
                c.spec.label
            )));
        }
        let plan = self.plan_tests(&req, queue)?;
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
            return self.tests_compiled(comp, &req, &plan, limits, queue);
        }
        let units: Vec<Value> = plan.iter().map(|p| p.unit.clone()).collect();
        // Served by the zygote ('U'): a fixed header it reads (units, ms per unit, output cap,
        // units per process; 0 = configured), then the request, which only T parses.
        let zreq = self.base_request(&req.code, &limits, units);
        let per: u32 = if req.fresh_process_per_test { 1 } else { 0 };
        let mut payload = Vec::with_capacity(256);
        for v in [
            total as u32,
            limits.timeout_ms.min(u32::MAX as u64) as u32,
            limits.max_output_bytes.min(u32::MAX as usize) as u32,
            per,
        ] {
            payload.extend_from_slice(&v.to_le_bytes());
        }
        serde_json::to_writer(&mut payload, &zreq)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let budget = self.budget(&limits, total);
        let stop = |i: usize, u: &Value| {
            req.stop_at_first_failure
                && plan
                    .get(i)
                    .is_some_and(|p| !unit_passes(&req, p, u, &limits))
        };
        let report = match self.dispatch_bytes(b'U', budget, budget, &payload, queue, &stop)? {
            Harness::Report(r) => r,
            Harness::CompileError(e) => {
                let r = compile_error_answer(
                    "the program does not compile".into(),
                    total,
                    "runtime_error".into(),
                    Some(1),
                    truncate(&e, req.keep_output_bytes),
                );
                return Ok(r);
            }
            Harness::Failed(m) => return Ok(tests_failure("sandbox_error", m, total)),
        };
        let results = report
            .get("units")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let stopped = report.get("stopped").and_then(Value::as_bool) == Some(true);
        if results.len() != total && !(stopped && results.len() < total) {
            return Ok(tests_failure(
                "sandbox_error",
                "the harness reported the wrong number of tests".into(),
                total,
            ));
        }
        Ok(judge_units(&req, &plan, &results, &limits))
    }

    /// Turns the request's tests into harness units plus how to judge each one. Assertion-style
    /// test code is parsed by a throwaway fork of the zygote, so the expected literals stay here.
    fn plan_tests(
        &self,
        req: &TestsRequest,
        queue: bool,
    ) -> Result<Result<Vec<Planned>, String>, ApiError> {
        let mut plan = Vec::new();
        for (i, t) in req.tests.iter().enumerate() {
            if let Some(f) = &t.call {
                let expected = t.expected.clone().ok_or_else(|| {
                    ApiError::BadRequest(format!("tests[{i}]: `call` needs `expected`"))
                })?;
                let args = serde_json::to_string(&t.args).unwrap_or_default();
                let kwargs = serde_json::to_string(&t.kwargs).unwrap_or_default();
                plan.push(Planned {
                    unit: json!({"mode": "call", "fn": f, "args": args, "kwargs": kwargs, "stdin": t.stdin.clone().unwrap_or_default()}),
                    check: Check::Value { expected, literals: vec![], ops: vec![], negate: false },
                    label: Some(format!("{f}(*{args}, **{kwargs})")),
                });
            } else if let Some(exp) = &t.expected_stdout {
                plan.push(Planned {
                    unit: json!({"mode": "program", "stdin": t.stdin.clone().unwrap_or_default()}),
                    check: Check::Stdout(exp.clone()),
                    label: None,
                });
            } else {
                return Err(ApiError::BadRequest(format!(
                    "tests[{i}]: give `stdin` + `expected_stdout`, or `call` + `expected`"
                )));
            }
        }
        if let Some(code) = &req.test_code {
            let budget = 10_000;
            let preq = json!({"test_code": code, "entry_point": req.entry_point});
            let parsed = match self.dispatch(b'P', budget, &preq, queue)? {
                Harness::Report(r) => r,
                Harness::CompileError(e) | Harness::Failed(e) => return Ok(Err(e)),
            };
            if let Some(e) = parsed.get("error").and_then(Value::as_str) {
                return Err(ApiError::BadRequest(e.to_string()));
            }
            // The program's names the test code uses: the checker process binds them to proxies.
            let names = parsed.get("names").cloned().unwrap_or_else(|| json!([]));
            if let Some(whole) = parsed.get("whole").and_then(Value::as_str) {
                plan.push(Planned {
                    unit: json!({"mode": "eval", "setup": whole, "exprs": [], "names": names}),
                    check: Check::Completes,
                    label: Some("whole test code".into()),
                });
            }
            let setup = parsed
                .get("setup")
                .and_then(Value::as_str)
                .unwrap_or_default();
            for c in parsed
                .get("checks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mut exprs = Vec::new();
                let mut literals = Vec::new();
                for (j, op) in c
                    .get("operands")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if let Some(e) = op.get("expr").and_then(Value::as_str) {
                        exprs.push(e.to_string());
                        literals.push((j, None));
                    } else {
                        let lit = PyVal::from_json(op.get("literal").unwrap_or(&Value::Null))
                            .map_err(ApiError::BadRequest)?;
                        literals.push((j, Some(lit)));
                    }
                }
                let ops = c
                    .get("ops")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|o| o.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                plan.push(Planned {
                    unit: json!({"mode": "eval", "setup": setup, "exprs": exprs, "names": names}),
                    check: Check::Value {
                        expected: Value::Null,
                        literals,
                        ops,
                        negate: c.get("negate").and_then(Value::as_bool).unwrap_or(false),
                    },
                    label: c
                        .get("src")
                        .and_then(Value::as_str)
                        .map(|s| format!("assert {s}")),
                });
            }
        }
        Ok(Ok(plan))
    }
}

pub(crate) struct Planned {
    pub(crate) unit: Value,
    pub(crate) check: Check,
    pub(crate) label: Option<String>,
}

pub(crate) enum Check {
    Stdout(String),
    /// Call style: the single reported value must equal `expected`. Assertion style: operands
    /// are the reported values merged with the `literals` kept outside, then `ops` apply.
    Value {
        expected: Value,
        literals: Vec<(usize, Option<PyVal>)>,
        ops: Vec<String>,
        negate: bool,
    },
    Completes,
}

fn judge(check: &Check, o: &UnitOutcome, mode: CompareMode, tol: f64) -> (bool, String) {
    let wrong = |r: &str| (false, r.to_string());
    match check {
        Check::Stdout(exp) => {
            if stdout_matches(mode, &o.stdout, exp, tol) {
                (true, "passed".into())
            } else {
                wrong("wrong_output")
            }
        }
        Check::Completes | Check::Value { .. } => {
            let Some(raw) = &o.result else {
                return wrong("no_result");
            };
            let Ok(res) = serde_json::from_str::<Value>(raw) else {
                return wrong("no_result");
            };
            if let Some(e) = res.get("error").and_then(Value::as_str) {
                return (false, format!("exception: {}", truncate(e, 300)));
            }
            let Some(values) = res.get("values").and_then(Value::as_array) else {
                return wrong("no_result");
            };
            let Ok(values) = values
                .iter()
                .map(PyVal::from_json)
                .collect::<Result<Vec<_>, _>>()
            else {
                return wrong("bad_result");
            };
            match check {
                Check::Completes => (true, "passed".into()),
                Check::Value {
                    expected,
                    literals,
                    ops,
                    negate,
                } if literals.is_empty() => {
                    let Ok(exp) = PyVal::from_json(expected) else {
                        return wrong("bad_expected");
                    };
                    let got = values.first();
                    // APPS call-style data often wraps the expected return value in a list.
                    let ok = got.is_some_and(|g| {
                        g.py_eq(&exp, true) || matches!(&exp, PyVal::List(v) if v.len() == 1 && g.py_eq(&v[0], true))
                    });
                    let _ = (ops, negate);
                    if ok {
                        (true, "passed".into())
                    } else {
                        wrong("wrong_value")
                    }
                }
                Check::Value {
                    literals,
                    ops,
                    negate,
                    ..
                } => {
                    let mut it = values.into_iter();
                    let mut operands = Vec::with_capacity(literals.len());
                    for (_, lit) in literals {
                        match lit {
                            Some(l) => operands.push(l.clone()),
                            None => match it.next() {
                                Some(v) => operands.push(v),
                                None => return wrong("no_result"),
                            },
                        }
                    }
                    match check_chain(&operands, ops, *negate) {
                        Ok(true) => (true, "passed".into()),
                        Ok(false) => wrong("assertion_failed"),
                        Err(e) => (false, format!("exception: {e}")),
                    }
                }
                Check::Stdout(_) => wrong("internal_error"),
            }
        }
    }
}

/// Whether one unit that came back passes its test (what `stop_at_first_failure` watches).
pub(crate) fn unit_passes(req: &TestsRequest, p: &Planned, u: &Value, limits: &RunLimits) -> bool {
    let o = classify(u, limits);
    o.status == "ok" && judge(&p.check, &o, req.compare, req.float_tolerance).0
}

/// A test that did not run: an earlier one failed and the request stops at the first failure.
fn skipped(index: usize, label: Option<String>) -> TestVerdict {
    TestVerdict {
        index,
        passed: false,
        status: "skipped".into(),
        reason: "skipped".into(),
        exit_code: None,
        signal: None,
        wall_ms: 0.0,
        cpu_ms: 0.0,
        stdout: String::new(),
        stderr: String::new(),
        timeout_kind: None,
        cpu_wait_ms: None,
        expected: None,
        check: label,
    }
}

/// Verdicts for the units a tests request ran (`results`, one per planned test; fewer when the
/// request stopped at its first failure, and the unit running then is marked `stopped`).
pub(crate) fn judge_units(
    req: &TestsRequest,
    plan: &[Planned],
    results: &[Value],
    limits: &RunLimits,
) -> TestsResponse {
    let total = plan.len();
    let keep = req.keep_output_bytes;
    let mut verdicts = Vec::with_capacity(total);
    for (i, p) in plan.iter().enumerate() {
        let Some(u) = results
            .get(i)
            .filter(|u| u.get("stopped").and_then(Value::as_bool) != Some(true))
        else {
            verdicts.push(skipped(i, p.label.clone()));
            continue;
        };
        let o = classify(u, limits);
        let (passed, reason) = if o.status != "ok" {
            (false, o.status.clone())
        } else {
            judge(&p.check, &o, req.compare, req.float_tolerance)
        };
        verdicts.push(TestVerdict {
            index: i,
            passed,
            status: o.status.clone(),
            reason,
            exit_code: o.exit_code,
            signal: o.signal,
            wall_ms: o.wall_ms,
            cpu_ms: o.cpu_ms,
            stdout: truncate(&lossy(&o.stdout), keep),
            stderr: truncate(&lossy(&o.stderr), keep),
            timeout_kind: o.timeout_kind.clone(),
            cpu_wait_ms: o.cpu_wait_ms,
            expected: match &p.check {
                Check::Stdout(e) if !passed => Some(truncate(e, keep)),
                Check::Value {
                    expected, literals, ..
                } if !passed && literals.is_empty() => Some(truncate(&expected.to_string(), keep)),
                _ => None,
            },
            check: p.label.clone(),
        });
    }
    let passed = verdicts.iter().filter(|v| v.passed).count();
    TestsResponse {
        status: "ok".into(),
        passed,
        total,
        pass_fraction: passed as f64 / total as f64,
        all_passed: passed == total,
        first_failure: verdicts.iter().find(|v| !v.passed).cloned(),
        tests: verdicts,
        message: None,
    }
}

/// A tests request whose program did not compile: no test ran, and the first failure carries
/// the compiler's words.
pub(crate) fn compile_error_answer(
    message: String,
    total: usize,
    status: String,
    exit_code: Option<i64>,
    stderr: String,
) -> TestsResponse {
    let mut r = tests_failure("compile_error", message, total);
    r.first_failure = Some(TestVerdict {
        index: 0,
        passed: false,
        status,
        reason: "compile_error".into(),
        exit_code,
        signal: None,
        wall_ms: 0.0,
        cpu_ms: 0.0,
        stdout: String::new(),
        stderr,
        timeout_kind: None,
        cpu_wait_ms: None,
        expected: None,
        check: None,
    });
    r
}

pub(crate) fn tests_failure(status: &str, msg: String, total: usize) -> TestsResponse {
    TestsResponse {
        status: status.into(),
        passed: 0,
        total,
        pass_fraction: 0.0,
        all_passed: false,
        tests: vec![],
        first_failure: None,
        message: Some(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_cannot_also_be_a_folder() {
        let files = |names: &[&str]| -> BTreeMap<String, String> {
            names
                .iter()
                .map(|n| (n.to_string(), String::new()))
                .collect()
        };
        assert!(check_files(&files(&["a", "a/b"]), &[]).is_err());
        assert!(check_files(&files(&["d/a", "d/a/b"]), &[]).is_err());
        // Siblings whose names share a prefix are fine (`a.py` sorts between `a` and `a/`).
        assert!(check_files(&files(&["a", "a.py", "ab/c", "b/a"]), &[]).is_ok());
    }

    #[test]
    fn a_misspelt_language_gets_the_nearest_name() {
        let known = || {
            [
                "python", "python3", "py", "cpp", "c++", "c", "rust", "rs", "java",
            ]
            .into_iter()
        };
        assert_eq!(closest("pyhton", known()), Some("python"));
        assert_eq!(closest("pyton", known()), Some("python"));
        assert_eq!(closest("jvaa", known()), Some("java"));
        assert_eq!(closest("rsut", known()), Some("rust"));
        // Nothing near enough: no guess.
        assert_eq!(closest("fortran", known()), None);
        assert_eq!(closest("haskell", known()), None);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn expected_null_differs_from_absent() {
        let null: TestCase =
            serde_json::from_str(r#"{"call": "f", "args": [1], "expected": null}"#).unwrap();
        assert_eq!(null.expected, Some(Value::Null));
        let absent: TestCase = serde_json::from_str(r#"{"call": "f", "args": [1]}"#).unwrap();
        assert_eq!(absent.expected, None);
    }
}
