//! The languages a request may name: Python, and beside it a table of the others, C++, C and
//! Rust (compiled to a native binary), Java (javac, then a JVM per run) and JavaScript (Node.js,
//! nothing compiled); which of them this host runs (each one's tool found and checked at
//! start-up), and how a program of each is built and started (argv, limits, environment).
//! Nothing here runs a request: `compiled.rs` sends them to the slots.

use crate::api::ApiError;
use crate::config::{CompilerConfig, Config};
use crate::limits::RunLimits;
use serde_json::Value;
use std::path::Path;

/// Where a native binary lives in the run's /tmp (the source is `/tmp/<source>`).
pub(crate) const BINARY: &str = "/tmp/main";

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

impl Compiler {
    /// Whether a compile comes before the runs.
    pub fn compiles(&self) -> bool {
        self.spec.build != Build::Script
    }

    /// The compile's own limits, from the language's section and the run's.
    pub(crate) fn limits(&self, run: &RunLimits) -> RunLimits {
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
    pub(crate) fn run_limits(&self, run: &RunLimits) -> RunLimits {
        let mut l = run.clone();
        l.memory_bytes += self.spec.reserve_mb << 20;
        l.max_processes = l.max_processes.max(self.spec.min_processes);
        l
    }

    /// The build-cache key of `code` (`build_cache.rs`): everything its build depends on.
    pub(crate) fn build_key(&self, source: &str, code: &str) -> crate::build_cache::Key {
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
    pub(crate) fn build_paths(&self, binary: &str) -> Vec<String> {
        match self.spec.build {
            Build::Jvm => vec!["/tmp".into()],
            _ => vec![binary.into()],
        }
    }

    pub(crate) fn env(&self) -> Value {
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
    pub(crate) fn plan(
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

/// The language a request names (aliases included), as this daemon runs it.
#[derive(Clone, Copy)]
pub(crate) enum Lang<'a> {
    Python,
    Compiled(&'a Compiler),
}

/// Python's names in requests.
const PYTHON_NAMES: [&str; 3] = ["python", "python3", "py"];

/// The languages this daemon runs, by their main names: Python, then each language of the
/// table whose tool was found.
pub fn language_names(compilers: &[Compiler]) -> Vec<&'static str> {
    std::iter::once("python")
        .chain(compilers.iter().map(|c| c.spec.name))
        .collect()
}

/// The language `lang` names among those this daemon runs; a language of the table whose tool
/// is missing, and a name that is none of them (with the nearest, when it looks like a typo),
/// are refused with the list of what it runs.
pub(crate) fn find_language<'a>(
    compilers: &'a [Compiler],
    lang: &str,
) -> Result<Lang<'a>, ApiError> {
    let wanted = lang.to_ascii_lowercase();
    let lang = wanted.as_str();
    if PYTHON_NAMES.contains(&lang) {
        return Ok(Lang::Python);
    }
    let named = |s: &LangSpec| s.name == lang || s.aliases.contains(&lang);
    if let Some(c) = compilers.iter().find(|c| named(c.spec)) {
        return Ok(Lang::Compiled(c));
    }
    let runs = language_names(compilers).join(", ");
    if let Some(s) = LANGUAGES.iter().find(|s| named(s)) {
        return Err(ApiError::BadRequest(format!(
            "{} is not available on this daemon: no compiler was found (see [{}] compiler); \
                 it runs: {runs}",
            s.label, s.name
        )));
    }
    let known = PYTHON_NAMES.iter().copied().chain(
        LANGUAGES
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
}
