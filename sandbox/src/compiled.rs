//! Requests in the languages of the table beside Python (`languages.rs`). A request goes to the
//! slot's harness G (as runs with files do): G writes the source into the run's /tmp, a first
//! sandboxed child runs the compiler there (as the program's uid, under the same namespaces
//! and filter, with limits of its own), and every test then gets a fresh child that execs the
//! program with the test's stdin. The compiler and the program are equally untrusted to the
//! daemon: both only ever run inside the sandbox. A build is kept by its source in the build
//! cache, so the same program is compiled once.

use crate::api::{
    compile_error_answer, tests_failure, ApiError, RunRequest, RunResponse, TestsRequest,
    TestsResponse,
};
use crate::build_cache::BuildCache;
use crate::judge::{classify, judge_units, lossy, run_response, truncate, unit_passes, Planned};
use crate::languages::Compiler;
use crate::limits::RunLimits;
use crate::protocol;
use crate::zygote::Harness;
use serde_json::{json, Value};

/// The largest build the cache takes from one compile (a statically linked Rust binary is a
/// few MB).
const BUILD_CAP: usize = 32 << 20;

/// What these requests need of the engine: a slot's harness to send a request to, the budget
/// a request of some runs gets, and the build cache.
pub(crate) trait Slots {
    /// Sends one request to a slot's harness; `stop` sees each unit as it comes back.
    fn dispatch_until(
        &self,
        kind: u8,
        budget_ms: u64,
        req: &Value,
        queue: bool,
        stop: &dyn Fn(usize, &Value) -> bool,
    ) -> Result<Harness, ApiError>;
    /// The longest a request of `units` runs under `limits` may take.
    fn budget(&self, limits: &RunLimits, units: usize) -> u64;
    /// How far a run's wall time may stretch while it waits for a CPU.
    fn wall_factor(&self) -> u64;
    fn build_cache(&self) -> &BuildCache;
}

/// What the harness reported for a compiled-language request: its units (the compile first), whether a
/// binary came out, and the report itself (fetched files).
struct CompiledReport {
    /// The compile's unit first, unless the build came from the cache.
    units: Vec<Value>,
    built: bool,
    cached: bool,
    report: Value,
}

/// How a failed compile reads in an answer: the compiler's own words, or why it was stopped.
struct CompileFailure {
    status: String,
    message: String,
    exit_code: Option<i64>,
    stderr: String,
}

impl CompiledReport {
    /// A report's units as (the compile's, the runs'); a cached build has no compile unit.
    fn split(&self, comp: &Compiler) -> (Option<&Value>, &[Value]) {
        match self.units.split_first() {
            Some((c, runs)) if comp.compiles() && !self.cached => (Some(c), runs),
            _ => (None, &self.units),
        }
    }
}

/// Sends one request of a language in the table (`stdins`: one run per entry) to a slot's
/// harness; returns the report's units (the compile first, where there is one) and
/// whether the compile left what the runs need. `stop` sees each run as it comes back (its
/// index among the runs): when it says true, the runs after it are not started.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    slots: &impl Slots,
    comp: &Compiler,
    code: &str,
    files: &std::collections::BTreeMap<String, String>,
    fetch_files: &[String],
    stdins: Vec<&str>,
    limits: &RunLimits,
    queue: bool,
    stop: &dyn Fn(usize, &Value) -> bool,
) -> Result<Result<CompiledReport, String>, ApiError> {
    let compile = comp.limits(limits);
    let (source, compile_argv, binary, run_argv) = comp.plan(code, limits);
    let n = stdins.len() as u64;
    let env = comp.env();
    // The build cache: for a compiled language, a request without files.
    let cache = slots.build_cache();
    let key = (cache.enabled() && comp.compiles() && files.is_empty())
        .then(|| comp.build_key(&source, code));
    let prebuilt = key.as_ref().and_then(|k| cache.get(k));
    let mut req = json!({
        "source": {"name": source, "text": code},
        "files": files,
        "fetch_files": fetch_files,
        "binary": binary,
        "compile": compile_argv.map(|argv| json!({"argv": argv, "limits": compile, "env": env})),
        "run": {"argv": run_argv, "limits": comp.run_limits(limits), "env": env},
        "units": stdins.iter().map(|s| json!({"stdin": s})).collect::<Vec<_>>(),
    });
    match (&prebuilt, &binary) {
        (Some(b), _) => req["prebuilt"] = Value::Object((**b).clone()),
        (None, Some(bin)) if key.is_some() => {
            req["return_build"] = json!({"paths": comp.build_paths(bin), "cap": BUILD_CAP})
        }
        _ => {}
    }
    let budget = compile.timeout_ms * (slots.wall_factor() + 1) + slots.budget(limits, n as usize);
    // The compile unit streams first (unless the build came from the cache): never a stop.
    let first_run = usize::from(comp.compiles() && prebuilt.is_none());
    let stop_run = |i: usize, u: &Value| i >= first_run && stop(i - first_run, u);
    Ok(
        match slots.dispatch_until(protocol::COMPILED, budget, &req, queue, &stop_run)? {
            Harness::Report(mut r) => {
                let units = match r.get_mut("units").map(Value::take) {
                    Some(Value::Array(u)) => u,
                    _ => Vec::new(),
                };
                let built = r.get("compiled").and_then(Value::as_bool).unwrap_or(false);
                let cached = prebuilt.is_some();
                if let (Some(k), Some(Value::Object(b)), true) =
                    (key, r.get_mut("build").map(Value::take), built)
                {
                    cache.insert(k, b);
                }
                if units.is_empty() && comp.compiles() && !cached {
                    Err("the harness reported no compile".into())
                } else {
                    Ok(CompiledReport {
                        units,
                        built,
                        cached,
                        report: r,
                    })
                }
            }
            Harness::CompileError(e) | Harness::Failed(e) => Err(e),
        },
    )
}

fn compile_failure(comp: &Compiler, unit: &Value, limits: &RunLimits) -> CompileFailure {
    let o = classify(unit, &comp.limits(limits));
    let (status, message) = match o.status.as_str() {
        "timeout" => (
            "timeout",
            format!(
                "compilation took longer than {} ms",
                comp.compile_timeout_ms
            ),
        ),
        "output_limit" => ("output_limit", "the compiler's output is too long".into()),
        "sandbox_error" => ("sandbox_error", "the compiler could not start".into()),
        _ => ("runtime_error", "compilation failed".into()),
    };
    CompileFailure {
        status: status.into(),
        message,
        exit_code: o.exit_code,
        stderr: lossy(&o.stderr),
    }
}

pub(crate) fn run(
    slots: &impl Slots,
    comp: &Compiler,
    req: RunRequest,
    limits: RunLimits,
    queue: bool,
) -> Result<RunResponse, ApiError> {
    let report = match dispatch(
        slots,
        comp,
        &req.code,
        &req.files,
        &req.fetch_files,
        vec![&req.stdin],
        &limits,
        queue,
        &|_, _| false,
    )? {
        Ok(x) => x,
        Err(m) => return Ok(RunResponse::sandbox_error(m)),
    };
    let (compile, runs) = report.split(comp);
    if let (false, Some(c)) = (report.built, compile) {
        let f = compile_failure(comp, c, &limits);
        return Ok(RunResponse {
            status: f.status,
            exit_code: f.exit_code,
            stderr: f.stderr,
            message: Some(f.message),
            ..Default::default()
        });
    }
    let Some(u) = runs.first() else {
        return Ok(RunResponse::sandbox_error(
            "the harness ended without running the program",
        ));
    };
    Ok(run_response(
        classify(u, &limits),
        report.report.get("files").cloned(),
    ))
}

pub(crate) fn tests(
    slots: &impl Slots,
    comp: &Compiler,
    req: &TestsRequest,
    plan: &[Planned],
    limits: RunLimits,
    queue: bool,
) -> Result<TestsResponse, ApiError> {
    let mut stdins = Vec::with_capacity(plan.len());
    for (i, p) in plan.iter().enumerate() {
        if p.unit.get("mode").and_then(Value::as_str) != Some("program") {
            return Err(ApiError::BadRequest(format!(
                "tests[{i}]: {} programs take stdin/stdout tests (`stdin` + `expected_stdout`), \
                 not function calls",
                comp.spec.label
            )));
        }
        stdins.push(p.unit.get("stdin").and_then(Value::as_str).unwrap_or(""));
    }
    let total = plan.len();
    let none = std::collections::BTreeMap::new();
    let stop = |i: usize, u: &Value| {
        req.stop_at_first_failure
            && plan
                .get(i)
                .is_some_and(|p| !unit_passes(req, p, u, &limits))
    };
    let report = match dispatch(
        slots,
        comp,
        &req.code,
        &none,
        &[],
        stdins,
        &limits,
        queue,
        &stop,
    )? {
        Ok(x) => x,
        Err(m) => return Ok(tests_failure("sandbox_error", m, total)),
    };
    let (compile, runs) = report.split(comp);
    if let (false, Some(c)) = (report.built, compile) {
        let f = compile_failure(comp, c, &limits);
        return Ok(compile_error_answer(
            f.message,
            total,
            f.status,
            f.exit_code,
            truncate(&f.stderr, req.keep_output_bytes),
        ));
    }
    let stopped = report.report.get("stopped").and_then(Value::as_bool) == Some(true);
    if runs.len() != total && !(stopped && runs.len() < total) {
        return Ok(tests_failure(
            "sandbox_error",
            "the harness reported the wrong number of tests".into(),
            total,
        ));
    }
    Ok(judge_units(req, plan, runs, &limits))
}
