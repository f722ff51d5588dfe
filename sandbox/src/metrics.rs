//! Counters for `GET /metrics`, in the Prometheus text format, so a fleet of daemons can be
//! scraped and alerted on (timeouts climbing, slots restarting, requests turned away busy).
//! Lock-free atomics on the request path; label sets are fixed, so cardinality stays bounded.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Endpoints with a label of their own; anything else is counted as "other".
const PATHS: [&str; 7] = [
    "/run",
    "/run_tests",
    "/batch",
    "/health",
    "/languages",
    "/metrics",
    "other",
];
const CODES: [u16; 9] = [200, 400, 401, 404, 405, 411, 413, 431, 503];
/// `/run` outcomes (engine.rs `classify`); an unknown one is "other".
const RUN_STATUSES: [&str; 7] = [
    "ok",
    "runtime_error",
    "timeout",
    "memory_limit",
    "output_limit",
    "sandbox_error",
    "other",
];
const TESTS_STATUSES: [&str; 4] = ["ok", "compile_error", "sandbox_error", "other"];
/// Upper bounds (seconds) of the latency histogram's buckets; +Inf is implied.
const BUCKETS: [f64; 12] = [
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

fn index_of(names: &[&str], name: &str) -> usize {
    names
        .iter()
        .position(|n| *n == name)
        .unwrap_or(names.len() - 1)
}

fn path_index(path: &str) -> usize {
    index_of(&PATHS, path)
}

pub struct Metrics {
    http: [[AtomicU64; CODES.len() + 1]; PATHS.len()],
    buckets: [[AtomicU64; BUCKETS.len() + 1]; PATHS.len()],
    seconds_us: [AtomicU64; PATHS.len()],
    runs: [AtomicU64; RUN_STATUSES.len()],
    run_cpu_us: AtomicU64,
    test_cpu_us: AtomicU64,
    tests_spread: AtomicU64,
    tests_requests: [AtomicU64; TESTS_STATUSES.len()],
    tests_passed: AtomicU64,
    tests_failed: AtomicU64,
    output_truncated: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            http: std::array::from_fn(|_| counters()),
            buckets: std::array::from_fn(|_| counters()),
            seconds_us: counters(),
            runs: counters(),
            run_cpu_us: AtomicU64::new(0),
            test_cpu_us: AtomicU64::new(0),
            tests_spread: AtomicU64::new(0),
            tests_requests: counters(),
            tests_passed: AtomicU64::new(0),
            tests_failed: AtomicU64::new(0),
            output_truncated: AtomicU64::new(0),
        }
    }
}

/// What `/metrics` shows besides the counters: the daemon's state at the time of the scrape.
pub struct Gauges<'a> {
    pub version: &'a str,
    pub isolation: &'a str,
    pub python: &'a str,
    pub slots: usize,
    pub idle_slots: usize,
    pub queued: usize,
    pub slot_restarts: u64,
    pub uptime_s: f64,
    pub build_cache: crate::build_cache::CacheStats,
    /// Connections open now, and those the daemon closed or refused itself, by reason.
    pub connections_open: usize,
    pub connections_closed: Vec<(&'static str, u64)>,
}

impl Metrics {
    /// One answered HTTP request: its endpoint, status code and time from body to answer.
    pub fn http(&self, path: &str, code: u16, took: Duration) {
        let p = path_index(path);
        let c = CODES.iter().position(|x| *x == code).unwrap_or(CODES.len());
        self.http[p][c].fetch_add(1, Ordering::Relaxed);
        let s = took.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|le| s <= *le)
            .unwrap_or(BUCKETS.len());
        self.buckets[p][b].fetch_add(1, Ordering::Relaxed);
        self.seconds_us[p].fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// One program run (a `/run` or a `/batch` run item) and its outcome.
    pub fn run(&self, status: &str, cpu_ms: f64) {
        self.runs[index_of(&RUN_STATUSES, status)].fetch_add(1, Ordering::Relaxed);
        if cpu_ms.is_finite() && cpu_ms > 0.0 {
            self.run_cpu_us
                .fetch_add((cpu_ms * 1000.0) as u64, Ordering::Relaxed);
        }
    }

    /// One tests request (a `/run_tests` or a `/batch` tests item), its verdicts, and the CPU
    /// time its tests used (the programs' own, as reported per test: with the programs' CPU over
    /// a window an operator sees how close the daemon runs to the machine's floor).
    pub fn tests(&self, status: &str, passed: usize, total: usize, cpu_ms: f64) {
        self.tests_requests[index_of(&TESTS_STATUSES, status)].fetch_add(1, Ordering::Relaxed);
        if cpu_ms.is_finite() && cpu_ms > 0.0 {
            self.test_cpu_us
                .fetch_add((cpu_ms * 1000.0) as u64, Ordering::Relaxed);
        }
        self.tests_passed
            .fetch_add(passed as u64, Ordering::Relaxed);
        self.tests_failed
            .fetch_add(total.saturating_sub(passed) as u64, Ordering::Relaxed);
    }

    /// A tests request whose remaining tests were spread over idle slots after a timeout.
    pub fn tests_spread(&self) {
        self.tests_spread.fetch_add(1, Ordering::Relaxed);
    }

    /// An answer whose program output was cut to `server.max_response_output_bytes`.
    pub fn output_truncated(&self) {
        self.output_truncated.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::with_capacity(8 << 10);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP grpo_sandbox_{name} {help}");
            let _ = writeln!(out, "# TYPE grpo_sandbox_{name} {kind}");
        };
        head(
            &mut out,
            "info",
            "gauge",
            "The daemon's version, isolation mode and interpreter.",
        );
        let _ = writeln!(
            out,
            "grpo_sandbox_info{{version=\"{}\",isolation=\"{}\",python=\"{}\"}} 1",
            label(g.version),
            label(g.isolation),
            label(g.python)
        );
        for (name, help, v) in [
            (
                "slots",
                "Warm interpreters, each serving one run at a time.",
                g.slots,
            ),
            ("idle_slots", "Slots free right now.", g.idle_slots),
            ("queued", "Requests waiting for a slot.", g.queued),
        ] {
            head(&mut out, name, "gauge", help);
            let _ = writeln!(out, "grpo_sandbox_{name} {v}");
        }
        head(
            &mut out,
            "uptime_seconds",
            "gauge",
            "Seconds since the daemon started.",
        );
        let _ = writeln!(out, "grpo_sandbox_uptime_seconds {:.3}", g.uptime_s);
        head(
            &mut out,
            "slot_restarts_total",
            "counter",
            "Slots restarted after their zygote died or missed a deadline.",
        );
        let _ = writeln!(out, "grpo_sandbox_slot_restarts_total {}", g.slot_restarts);
        let c = &g.build_cache;
        for (name, kind, help, v) in [
            (
                "build_cache_hits_total",
                "counter",
                "Compiled programs whose build came from the cache.",
                c.hits,
            ),
            (
                "build_cache_misses_total",
                "counter",
                "Compiled programs looked up in the cache and compiled.",
                c.misses,
            ),
            (
                "build_cache_entries",
                "gauge",
                "Builds in the cache.",
                c.entries as u64,
            ),
            (
                "build_cache_bytes",
                "gauge",
                "Bytes of builds in the cache.",
                c.bytes as u64,
            ),
        ] {
            head(&mut out, name, kind, help);
            let _ = writeln!(out, "grpo_sandbox_{name} {v}");
        }

        head(
            &mut out,
            "http_requests_total",
            "counter",
            "HTTP requests answered, by endpoint and status code.",
        );
        for (p, path) in PATHS.iter().enumerate() {
            for (c, n) in self.http[p].iter().enumerate() {
                let n = load(n);
                if n > 0 {
                    let code = CODES.get(c).map_or("other".to_string(), |x| x.to_string());
                    let _ = writeln!(
                        out,
                        "grpo_sandbox_http_requests_total{{path=\"{path}\",code=\"{code}\"}} {n}"
                    );
                }
            }
        }
        head(
            &mut out,
            "request_duration_seconds",
            "histogram",
            "Time from a request's body to its answer, by endpoint.",
        );
        for (p, path) in PATHS.iter().enumerate() {
            let count: u64 = self.buckets[p].iter().map(load).sum();
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (b, n) in self.buckets[p].iter().enumerate() {
                cumulative += load(n);
                let le = BUCKETS.get(b).map_or("+Inf".to_string(), |x| x.to_string());
                let _ = writeln!(
                    out,
                    "grpo_sandbox_request_duration_seconds_bucket{{path=\"{path}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = load(&self.seconds_us[p]) as f64 / 1e6;
            let _ = writeln!(
                out,
                "grpo_sandbox_request_duration_seconds_sum{{path=\"{path}\"}} {sum:.6}"
            );
            let _ = writeln!(
                out,
                "grpo_sandbox_request_duration_seconds_count{{path=\"{path}\"}} {count}"
            );
        }
        by_status(
            &mut out,
            "runs_total",
            "Programs run (/run and /batch run items), by outcome.",
            &RUN_STATUSES,
            &self.runs,
        );
        by_status(
            &mut out,
            "test_requests_total",
            "Tests requests (/run_tests and /batch tests items), by outcome.",
            &TESTS_STATUSES,
            &self.tests_requests,
        );
        head(
            &mut out,
            "tests_total",
            "counter",
            "Tests judged, by verdict.",
        );
        let _ = writeln!(
            out,
            "grpo_sandbox_tests_total{{verdict=\"passed\"}} {}",
            load(&self.tests_passed)
        );
        let _ = writeln!(
            out,
            "grpo_sandbox_tests_total{{verdict=\"failed\"}} {}",
            load(&self.tests_failed)
        );
        // The counters of a single sample.
        for (name, help, value) in [
            (
                "run_cpu_seconds_total",
                "CPU time programs of /run and /batch run items used.",
                format!("{:.6}", load(&self.run_cpu_us) as f64 / 1e6),
            ),
            (
                "test_cpu_seconds_total",
                "CPU time the programs of tests requests used, summed over their tests.",
                format!("{:.6}", load(&self.test_cpu_us) as f64 / 1e6),
            ),
            (
                "tests_spread_total",
                "Tests requests whose remaining tests were spread over idle slots after a timeout.",
                load(&self.tests_spread).to_string(),
            ),
            (
                "responses_truncated_total",
                "Answers whose program output was cut to server.max_response_output_bytes.",
                load(&self.output_truncated).to_string(),
            ),
        ] {
            head(&mut out, name, "counter", help);
            let _ = writeln!(out, "grpo_sandbox_{name} {value}");
        }
        head(&mut out, "connections", "gauge", "Connections open.");
        let _ = writeln!(out, "grpo_sandbox_connections {}", g.connections_open);
        head(
            &mut out,
            "connections_closed_total",
            "counter",
            "Connections the daemon closed or refused itself, by reason.",
        );
        for (reason, n) in &g.connections_closed {
            let _ = writeln!(
                out,
                "grpo_sandbox_connections_closed_total{{reason=\"{reason}\"}} {n}"
            );
        }
        out
    }
}

/// A counter family with one sample per status, zeros included (so a rate is defined from the
/// first scrape on).
fn by_status(out: &mut String, name: &str, help: &str, statuses: &[&str], counts: &[AtomicU64]) {
    let _ = writeln!(out, "# HELP grpo_sandbox_{name} {help}");
    let _ = writeln!(out, "# TYPE grpo_sandbox_{name} counter");
    for (status, n) in statuses.iter().zip(counts) {
        let _ = writeln!(
            out,
            "grpo_sandbox_{name}{{status=\"{status}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges<'static> {
        Gauges {
            version: "0.1.0",
            isolation: "native",
            python: "3.11.2 \"x\"",
            slots: 2,
            idle_slots: 1,
            queued: 0,
            slot_restarts: 3,
            uptime_s: 1.5,
            build_cache: crate::build_cache::CacheStats {
                entries: 2,
                bytes: 100,
                cap: 1000,
                hits: 5,
                misses: 7,
            },
            connections_open: 4,
            connections_closed: vec![("timed_out", 2)],
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"))
    }

    #[test]
    fn counts_land_under_their_labels_and_unknown_ones_under_other() {
        let m = Metrics::default();
        m.http("/run", 200, Duration::from_millis(3));
        m.http("/run", 200, Duration::from_millis(30));
        m.http("/run", 503, Duration::from_micros(50));
        m.http("/../etc", 404, Duration::from_micros(10)); // a path label is never request data
        m.http("/run", 418, Duration::from_micros(10));
        m.run("ok", 1.5);
        m.run("timeout", 1000.0);
        m.run("something new", 0.0);
        m.tests("ok", 7, 10, 250.0);
        let t = m.render(&gauges());
        assert_eq!(
            line(
                &t,
                "grpo_sandbox_http_requests_total{path=\"/run\",code=\"200\"}"
            ),
            "grpo_sandbox_http_requests_total{path=\"/run\",code=\"200\"} 2"
        );
        assert!(t.contains("{path=\"/run\",code=\"503\"} 1"));
        assert!(t.contains("{path=\"/run\",code=\"other\"} 1"));
        assert!(t.contains("{path=\"other\",code=\"404\"} 1"));
        assert!(!t.contains("etc"));
        assert!(t.contains("grpo_sandbox_runs_total{status=\"ok\"} 1\n"));
        assert!(t.contains("grpo_sandbox_runs_total{status=\"timeout\"} 1\n"));
        assert!(t.contains("grpo_sandbox_runs_total{status=\"other\"} 1\n"));
        assert!(t.contains("grpo_sandbox_runs_total{status=\"memory_limit\"} 0\n"));
        assert!(t.contains("grpo_sandbox_run_cpu_seconds_total 1.001500\n"));
        assert!(t.contains("grpo_sandbox_tests_total{verdict=\"passed\"} 7\n"));
        assert!(t.contains("grpo_sandbox_test_cpu_seconds_total 0.250000\n"));
        assert!(t.contains("grpo_sandbox_tests_total{verdict=\"failed\"} 3\n"));
        assert!(t.contains("grpo_sandbox_slot_restarts_total 3\n"));
        assert!(
            t.contains("grpo_sandbox_build_cache_hits_total 5\n")
                && t.contains("grpo_sandbox_build_cache_misses_total 7\n")
        );
        assert!(t.contains("python=\"3.11.2 \\\"x\\\"\"} 1\n"));
    }

    #[test]
    fn the_histogram_is_cumulative_and_ends_in_its_count() {
        let m = Metrics::default();
        for ms in [1, 3, 3, 40, 5000, 120_000] {
            m.http("/batch", 200, Duration::from_millis(ms));
        }
        let t = m.render(&gauges());
        let b = |le: &str| {
            line(
                &t,
                &format!(
                    "grpo_sandbox_request_duration_seconds_bucket{{path=\"/batch\",le=\"{le}\"}}"
                ),
            )
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
        };
        assert_eq!(
            (
                b("0.002"),
                b("0.005"),
                b("0.05"),
                b("10"),
                b("60"),
                b("+Inf")
            ),
            (1, 3, 4, 5, 5, 6)
        );
        assert!(t.contains("grpo_sandbox_request_duration_seconds_count{path=\"/batch\"} 6\n"));
        assert!(
            t.contains("grpo_sandbox_request_duration_seconds_sum{path=\"/batch\"} 125.047000\n")
        );
        assert!(
            !t.contains("path=\"/run\",le="),
            "endpoints never asked are left out"
        );
    }
}
