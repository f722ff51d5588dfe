//! C++ programs. A request goes to the slot's harness G (as runs with files do): G writes the
//! source into the run's /tmp, a first sandboxed child runs the compiler there (as the program's
//! uid, under the same namespaces and filter, with limits of its own), and every test then gets
//! a fresh child that execs the binary with the test's stdin. The compiler and the program are
//! equally untrusted to the daemon: both only ever run inside the sandbox.

use crate::config::CppConfig;
use crate::engine::{
    classify, judge_units, lossy, run_response, tests_failure, truncate, ApiError, Engine, Harness,
    Planned, RunRequest, RunResponse, TestVerdict, TestsRequest, TestsResponse,
};
use crate::limits::RunLimits;
use serde_json::{json, Value};
use std::path::Path;

/// Where the source and the binary live in the run's /tmp.
const SOURCE: &str = "main.cpp";
const BINARY: &str = "/tmp/main";

#[derive(Debug, Clone)]
pub struct CppInfo {
    pub compiler: String,
    pub version: String,
}

/// The compiler, checked once at start-up: None when none is configured and /usr/bin/g++ is
/// absent (C++ is then off); an error for a configured one that is missing, outside the
/// sandbox's read-only paths, or that does not run.
pub fn resolve_compiler(cfg: &CppConfig, ro_paths: &[String]) -> Result<Option<CppInfo>, String> {
    let compiler = if cfg.compiler.is_empty() {
        if !Path::new("/usr/bin/g++").exists() {
            return Ok(None);
        }
        "/usr/bin/g++".to_string()
    } else {
        cfg.compiler.clone()
    };
    let path = Path::new(&compiler);
    if !path.is_absolute() || !path.exists() {
        return Err(format!(
            "cpp.compiler {compiler:?}: give the absolute path of an existing compiler"
        ));
    }
    // /bin/g++ on a merged-/usr host is /usr/bin/g++: either spelling inside counts.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if !ro_paths
        .iter()
        .any(|p| path.starts_with(p) || real.starts_with(p))
    {
        return Err(format!(
            "cpp.compiler {compiler:?} is outside the paths bound into the sandbox ({}); add its \
             directory to isolation.ro_paths",
            ro_paths.join(", ")
        ));
    }
    let out = std::process::Command::new(&compiler)
        .arg("-dumpfullversion")
        .output()
        .map_err(|e| format!("cpp.compiler {compiler:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cpp.compiler {compiler:?} -dumpfullversion failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Some(CppInfo {
        compiler,
        version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    }))
}

/// What the harness reported for a C++ request: its units (the compile first), whether a
/// binary came out, and the report itself (fetched files).
struct CompiledReport {
    units: Vec<Value>,
    built: bool,
    report: Value,
}

/// How a failed compile reads in an answer: the compiler's own words, or why it was stopped.
struct CompileFailure {
    status: String,
    message: String,
    exit_code: Option<i64>,
    stderr: String,
}

impl Engine {
    fn compile_limits(&self, run: &RunLimits) -> RunLimits {
        let c = &self.cfg.cpp;
        RunLimits {
            timeout_ms: c.compile_timeout_ms,
            cpu_s: c.compile_timeout_ms.div_ceil(1000) + 1,
            memory_bytes: c.compile_memory_mb << 20,
            // The driver starts cc1plus, as, collect2 and ld one after another.
            max_processes: run.max_processes.max(16),
            max_file_bytes: run.max_file_bytes.max(64 << 20),
            max_open_files: run.max_open_files,
            max_output_bytes: run.max_output_bytes.min(1 << 20),
        }
    }

    /// Sends one C++ request (`stdins`: one run per entry) to a slot's harness; returns the
    /// report's units (the compile first) and whether a binary came out.
    fn dispatch_cpp(
        &self,
        code: &str,
        files: &std::collections::BTreeMap<String, String>,
        fetch_files: &[String],
        stdins: Vec<&str>,
        limits: &RunLimits,
        queue: bool,
    ) -> Result<Result<CompiledReport, String>, ApiError> {
        let info = self
            .cpp
            .as_ref()
            .ok_or_else(|| ApiError::BadRequest("C++ is not available on this daemon".into()))?;
        let compile = self.compile_limits(limits);
        let mut argv = vec![info.compiler.clone()];
        argv.extend(self.cfg.cpp.flags.iter().cloned());
        argv.extend(["-o".into(), BINARY.into(), format!("/tmp/{SOURCE}")]);
        let n = stdins.len() as u64;
        let req = json!({
            "source": {"name": SOURCE, "text": code},
            "files": files,
            "fetch_files": fetch_files,
            "binary": BINARY,
            "compile": {"argv": argv, "limits": compile},
            "run": {"argv": [BINARY], "limits": limits},
            "units": stdins.iter().map(|s| json!({"stdin": s})).collect::<Vec<_>>(),
        });
        let budget = compile.timeout_ms + limits.timeout_ms * n + 1_000 + 100 * (n + 1);
        Ok(match self.dispatch(b'C', budget, &req, queue)? {
            Harness::Report(mut r) => {
                let units = match r.get_mut("units").map(Value::take) {
                    Some(Value::Array(u)) => u,
                    _ => Vec::new(),
                };
                let built = r.get("compiled").and_then(Value::as_bool).unwrap_or(false);
                if units.is_empty() {
                    Err("the harness reported no compile".into())
                } else {
                    Ok(CompiledReport {
                        units,
                        built,
                        report: r,
                    })
                }
            }
            Harness::CompileError(e) | Harness::Failed(e) => Err(e),
        })
    }

    fn compile_failure(&self, unit: &Value, limits: &RunLimits) -> CompileFailure {
        let o = classify(unit, &self.compile_limits(limits));
        let (status, message) = match o.status.as_str() {
            "timeout" => (
                "timeout",
                format!(
                    "compilation took longer than {} ms",
                    self.cfg.cpp.compile_timeout_ms
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

    pub(crate) fn run_cpp(
        &self,
        req: RunRequest,
        limits: RunLimits,
        queue: bool,
    ) -> Result<RunResponse, ApiError> {
        let CompiledReport {
            units,
            built,
            report,
        } = match self.dispatch_cpp(
            &req.code,
            &req.files,
            &req.fetch_files,
            vec![&req.stdin],
            &limits,
            queue,
        )? {
            Ok(x) => x,
            Err(m) => return Ok(RunResponse::sandbox_error(m)),
        };
        if !built {
            let f = self.compile_failure(&units[0], &limits);
            return Ok(RunResponse {
                status: f.status,
                exit_code: f.exit_code,
                stderr: f.stderr,
                message: Some(f.message),
                ..Default::default()
            });
        }
        let Some(u) = units.get(1) else {
            return Ok(RunResponse::sandbox_error(
                "the harness ended after the compile",
            ));
        };
        Ok(run_response(
            classify(u, &limits),
            report.get("files").cloned(),
        ))
    }

    pub(crate) fn tests_cpp(
        &self,
        req: &TestsRequest,
        plan: &[Planned],
        limits: RunLimits,
        queue: bool,
    ) -> Result<TestsResponse, ApiError> {
        let mut stdins = Vec::with_capacity(plan.len());
        for (i, p) in plan.iter().enumerate() {
            if p.unit.get("mode").and_then(Value::as_str) != Some("program") {
                return Err(ApiError::BadRequest(format!(
                    "tests[{i}]: C++ programs take stdin/stdout tests (`stdin` + `expected_stdout`), \
                     not function calls"
                )));
            }
            stdins.push(p.unit.get("stdin").and_then(Value::as_str).unwrap_or(""));
        }
        let total = plan.len();
        let none = std::collections::BTreeMap::new();
        let CompiledReport { units, built, .. } =
            match self.dispatch_cpp(&req.code, &none, &[], stdins, &limits, queue)? {
                Ok(x) => x,
                Err(m) => return Ok(tests_failure("sandbox_error", m, total)),
            };
        if !built {
            let f = self.compile_failure(&units[0], &limits);
            let mut r = tests_failure("compile_error", f.message, total);
            r.first_failure = Some(TestVerdict {
                index: 0,
                passed: false,
                status: f.status,
                reason: "compile_error".into(),
                exit_code: f.exit_code,
                signal: None,
                wall_ms: 0.0,
                cpu_ms: 0.0,
                stdout: String::new(),
                stderr: truncate(&f.stderr, req.keep_output_bytes),
                expected: None,
                check: None,
            });
            return Ok(r);
        }
        if units.len() != total + 1 {
            return Ok(tests_failure(
                "sandbox_error",
                "the harness reported the wrong number of tests".into(),
                total,
            ));
        }
        Ok(judge_units(req, plan, &units[1..], &limits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(compiler: &str) -> CppConfig {
        CppConfig {
            compiler: compiler.into(),
            ..CppConfig::default()
        }
    }

    #[test]
    fn a_configured_compiler_must_exist_and_be_inside_the_sandbox() {
        let ro = vec!["/usr".to_string()];
        let err = resolve_compiler(&cfg("/usr/bin/no-such-g++"), &ro).unwrap_err();
        assert!(err.contains("no-such-g++"), "{err}");
        assert!(resolve_compiler(&cfg("g++"), &ro)
            .unwrap_err()
            .contains("absolute"));
        // This test's own binary, under target/: not a path the sandbox binds.
        let me = std::env::current_exe().unwrap();
        let err = resolve_compiler(&cfg(me.to_str().unwrap()), &ro).unwrap_err();
        assert!(err.contains("outside the paths bound"), "{err}");
    }

    #[test]
    fn the_default_is_gxx_where_there_is_one() {
        let found = resolve_compiler(&CppConfig::default(), &["/usr".to_string()]).unwrap();
        assert_eq!(found.is_some(), Path::new("/usr/bin/g++").exists());
        if let Some(info) = found {
            assert!(info
                .version
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit()));
        }
    }
}
