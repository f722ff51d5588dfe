//! The HTTP API's request and response types (`/run`, `/run_tests`, the items of `/batch`), the
//! error a request is answered with, and the checks a request's own fields must pass. Types only:
//! nothing here runs or judges anything.

use crate::checker::CompareMode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// The names of a request's `files` and `fetch_files`: relative paths inside the run's /tmp.
pub(crate) fn check_files(
    files: &BTreeMap<String, String>,
    fetch: &[String],
) -> Result<(), ApiError> {
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
