//! Compiled languages (C++, C). A request goes to the slot's harness G (as runs with files
//! do): G writes the source into the run's /tmp, a first sandboxed child runs the compiler there
//! (as the program's uid, under the same namespaces and filter, with limits of its own), and
//! every test then gets a fresh child that execs the binary with the test's stdin. The compiler
//! and the program are equally untrusted to the daemon: both only ever run inside the sandbox.

use crate::config::{CompilerConfig, Config};
use crate::engine::{
    classify, compile_error_answer, judge_units, lossy, run_response, tests_failure, truncate,
    ApiError, Engine, Harness, Planned, RunRequest, RunResponse, TestsRequest, TestsResponse,
};
use crate::limits::RunLimits;
use serde_json::{json, Value};
use std::path::Path;

/// Where the binary lives in the run's /tmp (the source is `/tmp/<source>`).
const BINARY: &str = "/tmp/main";

/// A compiled language the daemon knows, and its defaults.
pub struct LangSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub label: &'static str,
    pub source: &'static str,
    pub compiler: &'static str,
    pub flags: &'static [&'static str],
    pub libs: &'static [&'static str],
}

pub const LANGUAGES: [LangSpec; 2] = [
    LangSpec {
        name: "cpp",
        aliases: &["c++", "cxx"],
        label: "C++",
        source: "main.cpp",
        compiler: "/usr/bin/g++",
        flags: &["-O2", "-std=gnu++17", "-pipe"],
        libs: &[],
    },
    LangSpec {
        name: "c",
        aliases: &[],
        label: "C",
        source: "main.c",
        compiler: "/usr/bin/gcc",
        flags: &["-O2", "-std=gnu11", "-pipe"],
        libs: &["-lm"],
    },
];

/// A compiled language this daemon runs: its compiler, found and checked at start-up.
#[derive(Debug, Clone)]
pub struct Compiler {
    pub spec: &'static LangSpec,
    pub path: String,
    pub version: String,
    pub flags: Vec<String>,
    pub libs: Vec<String>,
    pub compile_timeout_ms: u64,
    pub compile_memory_mb: u64,
}

impl std::fmt::Debug for LangSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

fn section<'a>(cfg: &'a Config, spec: &LangSpec) -> &'a CompilerConfig {
    match spec.name {
        "c" => &cfg.c,
        _ => &cfg.cpp,
    }
}

/// Every compiled language whose compiler is present (`/languages` lists them).
pub fn resolve_compilers(cfg: &Config, ro_paths: &[String]) -> Result<Vec<Compiler>, String> {
    let mut out = Vec::new();
    for spec in &LANGUAGES {
        if let Some(c) = resolve_compiler(spec, section(cfg, spec), ro_paths)? {
            out.push(c);
        }
    }
    Ok(out)
}

/// One language's compiler: None when none is configured and the default is absent (the
/// language is then off); an error for a configured one that is missing, outside the sandbox's
/// read-only paths, or that does not run.
pub fn resolve_compiler(
    spec: &'static LangSpec,
    cfg: &CompilerConfig,
    ro_paths: &[String],
) -> Result<Option<Compiler>, String> {
    let key = spec.name;
    let compiler = if cfg.compiler.is_empty() {
        if !Path::new(spec.compiler).exists() {
            return Ok(None);
        }
        spec.compiler.to_string()
    } else {
        cfg.compiler.clone()
    };
    let path = Path::new(&compiler);
    if !path.is_absolute() || !path.exists() {
        return Err(format!(
            "{key}.compiler {compiler:?}: give the absolute path of an existing compiler"
        ));
    }
    // /bin/g++ on a merged-/usr host is /usr/bin/g++: either spelling inside counts.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if !ro_paths
        .iter()
        .any(|p| path.starts_with(p) || real.starts_with(p))
    {
        return Err(format!(
            "{key}.compiler {compiler:?} is outside the paths bound into the sandbox ({}); add its \
             directory to isolation.ro_paths",
            ro_paths.join(", ")
        ));
    }
    let out = std::process::Command::new(&compiler)
        .arg("-dumpfullversion")
        .output()
        .map_err(|e| format!("{key}.compiler {compiler:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{key}.compiler {compiler:?} -dumpfullversion failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Ok(Some(Compiler {
        spec,
        path: compiler,
        version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        flags: cfg.flags.clone().unwrap_or_else(|| owned(spec.flags)),
        libs: cfg.libs.clone().unwrap_or_else(|| owned(spec.libs)),
        compile_timeout_ms: cfg.compile_timeout_ms,
        compile_memory_mb: cfg.compile_memory_mb,
    }))
}

/// What the harness reported for a compiled-language request: its units (the compile first), whether a
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

impl Compiler {
    /// The compile's own limits, from the language's section and the run's.
    fn limits(&self, run: &RunLimits) -> RunLimits {
        RunLimits {
            timeout_ms: self.compile_timeout_ms,
            cpu_s: self.compile_timeout_ms.div_ceil(1000) + 1,
            memory_bytes: self.compile_memory_mb << 20,
            // The driver starts cc1plus, as, collect2 and ld one after another.
            max_processes: run.max_processes.max(16),
            max_file_bytes: run.max_file_bytes.max(64 << 20),
            max_open_files: run.max_open_files,
            max_output_bytes: run.max_output_bytes.min(1 << 20),
        }
    }
}

impl Engine {
    /// Sends one compiled-language request (`stdins`: one run per entry) to a slot's harness;
    /// returns the report's units (the compile first) and whether a binary came out.
    #[allow(clippy::too_many_arguments)]
    fn dispatch_compiled(
        &self,
        comp: &Compiler,
        code: &str,
        files: &std::collections::BTreeMap<String, String>,
        fetch_files: &[String],
        stdins: Vec<&str>,
        limits: &RunLimits,
        queue: bool,
    ) -> Result<Result<CompiledReport, String>, ApiError> {
        let compile = comp.limits(limits);
        let source = comp.spec.source;
        let mut argv = vec![comp.path.clone()];
        argv.extend(comp.flags.iter().cloned());
        argv.extend(["-o".into(), BINARY.into(), format!("/tmp/{source}")]);
        argv.extend(comp.libs.iter().cloned());
        let n = stdins.len() as u64;
        let req = json!({
            "source": {"name": source, "text": code},
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

    fn compile_failure(&self, comp: &Compiler, unit: &Value, limits: &RunLimits) -> CompileFailure {
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

    pub(crate) fn run_compiled(
        &self,
        comp: &Compiler,
        req: RunRequest,
        limits: RunLimits,
        queue: bool,
    ) -> Result<RunResponse, ApiError> {
        let CompiledReport {
            units,
            built,
            report,
        } = match self.dispatch_compiled(
            comp,
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
            let f = self.compile_failure(comp, &units[0], &limits);
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

    pub(crate) fn tests_compiled(
        &self,
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
        let CompiledReport { units, built, .. } =
            match self.dispatch_compiled(comp, &req.code, &none, &[], stdins, &limits, queue)? {
                Ok(x) => x,
                Err(m) => return Ok(tests_failure("sandbox_error", m, total)),
            };
        if !built {
            let f = self.compile_failure(comp, &units[0], &limits);
            return Ok(compile_error_answer(
                f.message,
                total,
                f.status,
                f.exit_code,
                truncate(&f.stderr, req.keep_output_bytes),
            ));
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

    fn cfg(compiler: &str) -> CompilerConfig {
        CompilerConfig {
            compiler: compiler.into(),
            ..CompilerConfig::default()
        }
    }

    #[test]
    fn a_configured_compiler_must_exist_and_be_inside_the_sandbox() {
        let ro = vec!["/usr".to_string()];
        let cpp = &LANGUAGES[0];
        let err = resolve_compiler(cpp, &cfg("/usr/bin/no-such-g++"), &ro).unwrap_err();
        assert!(
            err.starts_with("cpp.compiler") && err.contains("no-such-g++"),
            "{err}"
        );
        assert!(resolve_compiler(cpp, &cfg("g++"), &ro)
            .unwrap_err()
            .contains("absolute"));
        // This test's own binary, under target/: not a path the sandbox binds.
        let me = std::env::current_exe().unwrap();
        let err = resolve_compiler(cpp, &cfg(me.to_str().unwrap()), &ro).unwrap_err();
        assert!(err.contains("outside the paths bound"), "{err}");
    }

    #[test]
    fn defaults_are_the_system_compilers_where_there_are_some() {
        let found = resolve_compilers(&Config::default(), &["/usr".to_string()]).unwrap();
        let names: Vec<_> = found.iter().map(|c| c.spec.name).collect();
        for spec in &LANGUAGES {
            assert_eq!(
                names.contains(&spec.name),
                Path::new(spec.compiler).exists()
            );
        }
        for c in &found {
            assert!(c
                .version
                .chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_digit()));
            assert_eq!(c.flags, c.spec.flags);
        }
    }

    #[test]
    fn a_section_overrides_only_what_it_names() {
        let cfg = Config::parse("[c]\nflags = [\"-O0\"]\n").unwrap();
        if let Some(c) = resolve_compiler(&LANGUAGES[1], &cfg.c, &["/usr".to_string()]).unwrap() {
            assert_eq!(
                (c.flags, c.libs),
                (vec!["-O0".to_string()], vec!["-lm".to_string()])
            );
        }
    }
}
