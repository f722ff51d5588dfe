//! Languages beside Python, as a table: C++, C and Rust (compiled to a native binary), Java (javac,
//! then a JVM per run) and JavaScript (Node.js, nothing compiled). A request goes to the slot's
//! harness G (as runs with files do): G writes the source into the run's /tmp, a first
//! sandboxed child runs the compiler there (as the program's uid, under the same namespaces
//! and filter, with limits of its own), and every test then gets a fresh child that execs the
//! program with the test's stdin. The compiler and the program are equally untrusted to the
//! daemon: both only ever run inside the sandbox.

use crate::config::{CompilerConfig, Config};
use crate::engine::{
    classify, compile_error_answer, judge_units, lossy, run_response, tests_failure, truncate,
    unit_passes, ApiError, Engine, Harness, Planned, RunRequest, RunResponse, TestsRequest,
    TestsResponse,
};
use crate::limits::RunLimits;
use serde_json::{json, Value};
use std::path::Path;

/// Where a native binary lives in the run's /tmp (the source is `/tmp/<source>`).
const BINARY: &str = "/tmp/main";
/// The largest build the cache takes from one compile (a statically linked Rust binary is a
/// few MB).
const BUILD_CAP: usize = 32 << 20;

/// How a language's program is built and started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// The compiler makes /tmp/main, which each run execs (C++, C).
    Native,
    /// javac compiles the source into classes under /tmp; each run starts `java` (found next
    /// to javac) on the class that declares `main`.
    Jvm,
    /// Nothing is compiled: each run starts the interpreter on the source (Node.js).
    Script,
}

/// A language the daemon runs besides Python, and its defaults.
pub struct LangSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub label: &'static str,
    /// The source's file name in /tmp (Java's comes from the code: its public class).
    pub source: &'static str,
    /// The tool: the compiler, or for a script language the interpreter.
    pub compiler: &'static str,
    /// Arguments that make the tool print its version.
    pub version_args: &'static [&'static str],
    /// The compiler's flags (a script language: the interpreter's, before the script).
    pub flags: &'static [&'static str],
    /// Arguments after the source (libraries, e.g. `-lm`).
    pub libs: &'static [&'static str],
    /// The runtime's flags for each run (the JVM's).
    pub run_flags: &'static [&'static str],
    pub build: Build,
    /// Address space beyond `memory_mb` that the runtime reserves without using it (the JVM's
    /// code cache and stacks, V8's heap reservations): RLIMIT_AS is `memory_mb` plus this,
    /// while the heap flag holds the program's heap to `memory_mb`.
    pub reserve_mb: u64,
    /// The run's heap-size flag (`{}`: memory_mb), and the compiler's.
    pub heap_flag: Option<&'static str>,
    pub compile_heap_flag: Option<&'static str>,
    /// The environment of the compiler and the program, beyond the sandbox's fixed one.
    pub env: &'static [(&'static str, &'static str)],
    /// Processes (threads count) a run and a compile need at least.
    pub min_processes: u64,
}

/// The JVM's own settings for javac and java: a serial collector (no GC threads), a 64 MB class
/// space (the default reserves 1 GB, which RLIMIT_AS would have to allow; turning compressed
/// class pointers off instead would disable the JDK's class-data archive and double the JVM's
/// start-up), a smaller code cache, no perf-data file in /tmp, and the JVM's warnings on stderr
/// (its default is stdout, where they would spoil the program's output).
const JVM_FLAGS: [&str; 6] = [
    "-XX:+UseSerialGC",
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:ReservedCodeCacheSize=64m",
    "-XX:-UsePerfData",
    "-Xlog:disable",
    "-Xlog:all=warning:stderr",
];

/// C++, and what every language takes unless its row says otherwise: a native binary, no
/// runtime flags, reservations or environment of its own.
const CPP: LangSpec = LangSpec {
    name: "cpp",
    aliases: &["c++", "cxx"],
    label: "C++",
    source: "main.cpp",
    compiler: "/usr/bin/g++",
    version_args: &["-dumpfullversion"],
    flags: &["-O2", "-std=gnu++17", "-pipe"],
    libs: &[],
    run_flags: &[],
    build: Build::Native,
    reserve_mb: 0,
    heap_flag: None,
    compile_heap_flag: None,
    env: &[],
    min_processes: 0,
};

/// glibc's per-thread malloc arenas reserve 64 MB of address space each: two are plenty.
const FEW_ARENAS: &[(&str, &str)] = &[("MALLOC_ARENA_MAX", "2")];

pub const LANGUAGES: [LangSpec; 5] = [
    CPP,
    LangSpec {
        name: "c",
        aliases: &[],
        label: "C",
        source: "main.c",
        compiler: "/usr/bin/gcc",
        flags: &["-O2", "-std=gnu11", "-pipe"],
        libs: &["-lm"],
        ..CPP
    },
    LangSpec {
        name: "rust",
        aliases: &["rs"],
        label: "Rust",
        source: "main.rs",
        // Debian's; a rustup toolchain's rustc (not the ~/.cargo/bin proxy) works once its
        // sysroot is in isolation.ro_paths.
        compiler: "/usr/bin/rustc",
        version_args: &["--version"],
        // /usr/bin/cc is often an alternatives link through /etc, which the sandbox lacks.
        flags: &["-O", "--edition=2021", "-Clinker=/usr/bin/gcc"],
        // rustc's codegen threads, then cc and ld.
        min_processes: 32,
        ..CPP
    },
    LangSpec {
        name: "java",
        aliases: &[],
        label: "Java",
        source: "Main.java",
        compiler: "/usr/bin/javac",
        version_args: &["-version"],
        flags: &["-encoding", "UTF-8", "-nowarn", "-J-XX:TieredStopAtLevel=1"],
        run_flags: &["-Xss16m", "-Xshare:auto"],
        build: Build::Jvm,
        reserve_mb: 768,
        heap_flag: Some("-Xmx{}m"),
        compile_heap_flag: Some("-J-Xmx{}m"),
        env: FEW_ARENAS,
        min_processes: 64,
        ..CPP
    },
    LangSpec {
        name: "javascript",
        aliases: &["js", "node", "nodejs"],
        label: "JavaScript",
        source: "main.js",
        compiler: "/usr/bin/node",
        version_args: &["--version"],
        flags: &[],
        build: Build::Script,
        reserve_mb: 1024,
        heap_flag: Some("--max-old-space-size={}"),
        env: FEW_ARENAS,
        min_processes: 32,
        ..CPP
    },
];

/// A language this daemon runs: its tool, found and checked at start-up.
#[derive(Debug, Clone)]
pub struct Compiler {
    pub spec: &'static LangSpec,
    pub path: String,
    /// The runtime each run starts, where it is not the program itself (Java's `java`).
    pub runtime: Option<String>,
    pub version: String,
    pub flags: Vec<String>,
    pub libs: Vec<String>,
    pub run_flags: Vec<String>,
    pub compile_timeout_ms: u64,
    pub compile_memory_mb: u64,
}

impl std::fmt::Debug for LangSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

fn section<'a>(cfg: &'a Config, spec: &LangSpec) -> &'a CompilerConfig {
    let sections = cfg.language_sections();
    sections
        .iter()
        .find(|(name, _)| *name == spec.name)
        .map_or(&cfg.cpp, |(_, c)| *c)
}

/// Every language whose tool is present (`/languages` lists them), and the paths beyond
/// `ro_paths` that the sandbox must bind for them (a JDK's links into /etc).
pub fn resolve_compilers(
    cfg: &Config,
    ro_paths: &[String],
) -> Result<(Vec<Compiler>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut extra = Vec::new();
    for spec in &LANGUAGES {
        if let Some(c) = resolve_compiler(spec, section(cfg, spec), ro_paths)? {
            if spec.build == Build::Jvm {
                let home = Path::new(&c.path).parent().and_then(Path::parent);
                for p in home.map(|h| links_outside(h, ro_paths)).unwrap_or_default() {
                    if !extra.contains(&p) {
                        extra.push(p);
                    }
                }
            }
            out.push(c);
        }
    }
    Ok((out, extra))
}

/// Directories outside `ro_paths` that symlinks under `dir` point into, as their first two
/// components (`/etc/java-17-openjdk` for Debian's JDK, whose conf files live there).
fn links_outside(dir: &Path, ro_paths: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() && depth < 8 {
                stack.push((e.path(), depth + 1));
            } else if ft.is_symlink() {
                let Ok(real) = std::fs::canonicalize(e.path()) else {
                    continue;
                };
                if ro_paths.iter().any(|p| real.starts_with(p)) {
                    continue;
                }
                let top: std::path::PathBuf = real.components().take(3).collect();
                let top = top.to_string_lossy().into_owned();
                if top.len() > 1 && !found.contains(&top) {
                    found.push(top);
                }
            }
        }
    }
    found.sort();
    found
}

/// The version a tool prints: its first word that starts with a digit (`v20.1.0` counts).
fn version_of(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| w.trim_start_matches('v').trim_matches('"'))
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
}

/// One language's tool: None when none is configured and the default is absent (the language
/// is then off); an error for a configured one that is missing, outside the sandbox's read-only
/// paths, or that does not run.
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
    let inside = |p: &Path, r: &Path| {
        ro_paths
            .iter()
            .any(|ro| p.starts_with(ro) || r.starts_with(ro))
    };
    if !inside(path, &real) {
        return Err(format!(
            "{key}.compiler {compiler:?} is outside the paths bound into the sandbox ({}); add its \
             directory to isolation.ro_paths",
            ro_paths.join(", ")
        ));
    }
    // javac's launcher finds its JDK from its own path: keep the real one (an alternatives
    // link in /etc is not in the sandbox).
    let compiler = if spec.build == Build::Jvm {
        real.to_string_lossy().into_owned()
    } else {
        compiler
    };
    let runtime = if spec.build == Build::Jvm {
        let java = real.with_file_name("java");
        if !java.exists() {
            return Err(format!(
                "{key}.compiler {compiler:?}: no `java` beside it (a JDK has both)"
            ));
        }
        Some(java.to_string_lossy().into_owned())
    } else {
        None
    };
    let out = std::process::Command::new(&compiler)
        .args(spec.version_args)
        .output()
        .map_err(|e| format!("{key}.compiler {compiler:?}: {e}"))?;
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let version = match version_of(&printed) {
        Some(v) if out.status.success() => v,
        _ => {
            return Err(format!(
                "{key}.compiler {compiler:?} {} failed: {}",
                spec.version_args.join(" "),
                printed.trim()
            ))
        }
    };
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Ok(Some(Compiler {
        spec,
        path: compiler,
        runtime,
        version,
        flags: cfg.flags.clone().unwrap_or_else(|| owned(spec.flags)),
        libs: cfg.libs.clone().unwrap_or_else(|| owned(spec.libs)),
        run_flags: cfg
            .run_flags
            .clone()
            .unwrap_or_else(|| owned(spec.run_flags)),
        compile_timeout_ms: cfg.compile_timeout_ms,
        compile_memory_mb: cfg.compile_memory_mb,
    }))
}

/// Java's names for a program: the source's file name (its public top-level class, which javac
/// insists on), and the class to run (the one declaring `main`, with its package), read from
/// the code with comments and literals blanked out.
pub fn java_names(code: &str) -> (String, String) {
    let text = blank_comments_and_literals(code);
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$' || c == '.'))
        .filter(|w| !w.is_empty())
        .collect();
    let class_after = |i: usize| -> Option<&str> {
        (words.get(i) == Some(&"class"))
            .then(|| words.get(i + 1).copied())
            .flatten()
    };
    let mut public = None;
    for (i, w) in words.iter().enumerate() {
        if *w == "public" {
            let mut j = i + 1;
            while matches!(words.get(j), Some(&"final" | &"abstract" | &"strictfp")) {
                j += 1;
            }
            if let Some(name) = class_after(j) {
                public = Some(name);
                break;
            }
        }
    }
    // The class declaring main: the last `class X` before the first `static void main`.
    let main_at = (0..words.len()).find(|&i| {
        words[i] == "static"
            && words.get(i + 1) == Some(&"void")
            && words.get(i + 2) == Some(&"main")
    });
    let main = main_at.and_then(|m| (0..m).rev().find_map(class_after));
    let package = (0..words.len())
        .find(|&i| words[i] == "package")
        .and_then(|i| words.get(i + 1).copied());
    let valid = |n: &&str| {
        n.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    };
    let file = public
        .filter(valid)
        .or(main.filter(valid))
        .unwrap_or("Main");
    let class = main.filter(valid).unwrap_or(file);
    let qualified = match package.filter(|p| p.split('.').all(|s| !s.is_empty() && valid(&s))) {
        Some(p) => format!("{p}.{class}"),
        None => class.to_string(),
    };
    (format!("{file}.java"), qualified)
}

/// The code with `//` and `/* */` comments and string, text-block and char literals replaced
/// by spaces, so that words inside them are not read as declarations.
fn blank_comments_and_literals(code: &str) -> String {
    let b = code.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let (skip_to, keep_newlines) = if rest.starts_with(b"//") {
            (
                rest.iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p),
                true,
            )
        } else if rest.starts_with(b"/*") {
            (find(b, i + 2, b"*/").map_or(b.len(), |p| p + 2), true)
        } else if rest.starts_with(b"\"\"\"") {
            (find(b, i + 3, b"\"\"\"").map_or(b.len(), |p| p + 3), true)
        } else if rest[0] == b'"' || rest[0] == b'\'' {
            let q = rest[0];
            let mut j = i + 1;
            while j < b.len() && b[j] != q && b[j] != b'\n' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            ((j + 1).min(b.len()), true)
        } else {
            out.push(b[i]);
            i += 1;
            continue;
        };
        for &c in &b[i..skip_to.max(i)] {
            out.push(if keep_newlines && c == b'\n' {
                b'\n'
            } else {
                b' '
            });
        }
        i = skip_to.max(i + 1);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
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

impl Compiler {
    /// Whether a compile comes before the runs.
    pub fn compiles(&self) -> bool {
        self.spec.build != Build::Script
    }

    /// The compile's own limits, from the language's section and the run's.
    fn limits(&self, run: &RunLimits) -> RunLimits {
        RunLimits {
            timeout_ms: self.compile_timeout_ms,
            cpu_s: self.compile_timeout_ms.div_ceil(1000) + 1,
            memory_bytes: (self.compile_memory_mb + self.spec.reserve_mb) << 20,
            // The driver starts cc1plus, as, collect2 and ld one after another; javac is a JVM.
            max_processes: run.max_processes.max(16).max(self.spec.min_processes),
            max_file_bytes: run.max_file_bytes.max(64 << 20),
            max_open_files: run.max_open_files,
            max_output_bytes: run.max_output_bytes.min(1 << 20),
        }
    }

    /// A run's limits: the runtime's reservations on top of the program's own memory.
    fn run_limits(&self, run: &RunLimits) -> RunLimits {
        let mut l = run.clone();
        l.memory_bytes += self.spec.reserve_mb << 20;
        l.max_processes = l.max_processes.max(self.spec.min_processes);
        l
    }

    /// A report's units as (the compile's, the runs'); a cached build has no compile unit.
    fn split<'a>(&self, r: &'a CompiledReport) -> (Option<&'a Value>, &'a [Value]) {
        match r.units.split_first() {
            Some((c, runs)) if self.compiles() && !r.cached => (Some(c), runs),
            _ => (None, &r.units),
        }
    }

    /// The build-cache key of `code` (`build_cache.rs`): everything its build depends on.
    fn build_key(&self, source: &str, code: &str) -> crate::build_cache::Key {
        let mut parts: Vec<&[u8]> = vec![
            self.spec.name.as_bytes(),
            self.path.as_bytes(),
            self.version.as_bytes(),
            source.as_bytes(),
            code.as_bytes(),
        ];
        parts.push(b"flags");
        parts.extend(self.flags.iter().map(|f| f.as_bytes()));
        parts.push(b"libs");
        parts.extend(self.libs.iter().map(|f| f.as_bytes()));
        crate::build_cache::key(&parts)
    }

    /// What of /tmp a build is: the binary, or every class file.
    fn build_paths(&self, binary: &str) -> Vec<String> {
        match self.spec.build {
            Build::Jvm => vec!["/tmp".into()],
            _ => vec![binary.into()],
        }
    }

    fn env(&self) -> Value {
        Value::Object(
            self.spec
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect(),
        )
    }

    /// What the harness runs for one request of `code`: the source file, the compile (None
    /// for a script language), the file the compile must leave, and each run's argv.
    fn plan(
        &self,
        code: &str,
        limits: &RunLimits,
    ) -> (String, Option<Vec<String>>, Option<String>, Vec<String>) {
        let heap = |flag: Option<&str>, mb: u64| flag.map(|f| f.replace("{}", &mb.to_string()));
        let memory_mb = limits.memory_bytes >> 20;
        match self.spec.build {
            Build::Native => {
                let source = self.spec.source.to_string();
                let mut argv = vec![self.path.clone()];
                argv.extend(self.flags.iter().cloned());
                argv.extend(["-o".into(), BINARY.into(), format!("/tmp/{source}")]);
                argv.extend(self.libs.iter().cloned());
                (source, Some(argv), Some(BINARY.into()), vec![BINARY.into()])
            }
            Build::Jvm => {
                let (source, class) = java_names(code);
                let mut argv = vec![self.path.clone()];
                argv.extend(JVM_FLAGS.iter().map(|f| format!("-J{f}")));
                argv.extend(heap(self.spec.compile_heap_flag, self.compile_memory_mb));
                argv.extend(self.flags.iter().cloned());
                argv.extend(["-d".into(), "/tmp".into(), format!("/tmp/{source}")]);
                let binary = format!("/tmp/{}.class", class.replace('.', "/"));
                let mut run = vec![self.runtime.clone().unwrap_or_default()];
                run.extend(JVM_FLAGS.iter().map(|f| f.to_string()));
                run.extend(heap(self.spec.heap_flag, memory_mb));
                run.extend(self.run_flags.iter().cloned());
                run.extend(["-cp".into(), "/tmp".into(), class]);
                (source, Some(argv), Some(binary), run)
            }
            Build::Script => {
                let source = self.spec.source.to_string();
                let mut run = vec![self.path.clone()];
                run.extend(heap(self.spec.heap_flag, memory_mb));
                run.extend(self.flags.iter().cloned());
                run.push(format!("/tmp/{source}"));
                (source, None, None, run)
            }
        }
    }
}

impl Engine {
    /// Sends one request of a language in the table (`stdins`: one run per entry) to a slot's
    /// harness; returns the report's units (the compile first, where there is one) and
    /// whether the compile left what the runs need. `stop` sees each run as it comes back (its
    /// index among the runs): when it says true, the runs after it are not started.
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
        stop: &dyn Fn(usize, &Value) -> bool,
    ) -> Result<Result<CompiledReport, String>, ApiError> {
        let compile = comp.limits(limits);
        let (source, compile_argv, binary, run_argv) = comp.plan(code, limits);
        let n = stdins.len() as u64;
        let env = comp.env();
        // The build cache: for a compiled language, a request without files.
        let cache = &self.build_cache;
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
        let budget = compile.timeout_ms * (self.wall_factor + 1) + self.budget(limits, n as usize);
        // The compile unit streams first (unless the build came from the cache): never a stop.
        let first_run = usize::from(comp.compiles() && prebuilt.is_none());
        let stop_run = |i: usize, u: &Value| i >= first_run && stop(i - first_run, u);
        Ok(
            match self.dispatch_until(b'C', budget, &req, queue, &stop_run)? {
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
        let report = match self.dispatch_compiled(
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
        let (compile, runs) = comp.split(&report);
        if let (false, Some(c)) = (report.built, compile) {
            let f = self.compile_failure(comp, c, &limits);
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
        let stop = |i: usize, u: &Value| {
            req.stop_at_first_failure
                && plan
                    .get(i)
                    .is_some_and(|p| !unit_passes(req, p, u, &limits))
        };
        let report = match self.dispatch_compiled(
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
        let (compile, runs) = comp.split(&report);
        if let (false, Some(c)) = (report.built, compile) {
            let f = self.compile_failure(comp, c, &limits);
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
        let (found, _) = resolve_compilers(&Config::default(), &["/usr".to_string()]).unwrap();
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

    #[test]
    fn java_names_come_from_the_public_class_and_main() {
        let n = |c: &str| java_names(c);
        assert_eq!(
            n("public class Main { public static void main(String[] a) {} }"),
            ("Main.java".into(), "Main".into())
        );
        // No public class: the file and the class to run are the one declaring main.
        assert_eq!(
            n("import java.util.*;\nclass Solution {\n  static void helper() {}\n  public static void main(String[] a) {}\n}"),
            ("Solution.java".into(), "Solution".into())
        );
        // Words in comments and literals are not declarations; a package qualifies the class.
        let code = "package a.b;\n// public class Fake\n/* class Nope { static void main */\n\
                    class Helper { String s = \"class X static void main\"; char c = '\\''; }\n\
                    public final class Sol { public static void main(String[] a) {} }";
        assert_eq!(n(code), ("Sol.java".into(), "a.b.Sol".into()));
        // main in a helper beside the public class: javac wants the public one's file name.
        assert_eq!(
            n("class Run { public static void main(String[] a) {} }\npublic class Pub {}"),
            ("Pub.java".into(), "Run".into())
        );
        assert_eq!(n("garbage"), ("Main.java".into(), "Main".into()));
    }

    #[test]
    fn versions_are_the_first_number_a_tool_prints() {
        assert_eq!(version_of("12.2.0\n").as_deref(), Some("12.2.0"));
        assert_eq!(version_of("javac 17.0.15\n").as_deref(), Some("17.0.15"));
        assert_eq!(version_of("v20.20.2\n").as_deref(), Some("20.20.2"));
        assert_eq!(
            version_of("openjdk version \"17.0.15\" 2025-04-15").as_deref(),
            Some("17.0.15")
        );
        assert_eq!(version_of("no version here"), None);
    }

    #[test]
    fn links_out_of_the_bound_paths_are_found() {
        let root = std::env::temp_dir().join(format!("grpo-links-{}", std::process::id()));
        let (home, etc) = (root.join("jdk/conf"), root.join("etc/jdk-conf"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("a.properties"), "x").unwrap();
        std::os::unix::fs::symlink(etc.join("a.properties"), home.join("a.properties")).unwrap();
        std::os::unix::fs::symlink(home.join("a.properties"), home.join("inside")).unwrap();
        let jdk = root.join("jdk");
        let bound = vec![jdk.to_string_lossy().into_owned()];
        let found = links_outside(&jdk, &bound);
        // The first two components of the target (here the temp dir's own, e.g. /tmp/grpo-links-N).
        let top: std::path::PathBuf = std::fs::canonicalize(etc.join("a.properties"))
            .unwrap()
            .components()
            .take(3)
            .collect();
        assert_eq!(found, vec![top.to_string_lossy().into_owned()]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn every_language_has_its_own_section() {
        let cfg = Config::default();
        let names: Vec<_> = cfg.language_sections().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, LANGUAGES.iter().map(|l| l.name).collect::<Vec<_>>());
    }
}
