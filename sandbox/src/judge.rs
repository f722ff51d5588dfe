//! Judging, outside the sandbox: what a unit that came back from the harness was (ok, timeout,
//! memory limit, ...), the tests of a request turned into harness units with how to judge each,
//! and each test's verdict from its unit. Pure functions of the request and the reported units:
//! no slot, no process, so every case is tested here without root.

use crate::api::{ApiError, RunResponse, TestVerdict, TestsRequest, TestsResponse};
use crate::checker::{check_chain, stdout_matches, CompareMode, PyVal};
use crate::limits::RunLimits;
use base64::Engine as _;
use serde_json::{json, Value};

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

/// The request's `tests` as harness units, each with how to judge it (call style: the returned
/// value against `expected`; stdin/stdout style: the output against `expected_stdout`).
pub(crate) fn plan_tests(req: &TestsRequest) -> Result<Vec<Planned>, ApiError> {
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
    Ok(plan)
}

/// Assertion-style test code as the zygote parsed it ('P': `setup`, the `checks` with their
/// operands and operators, or the `whole` code where it is not a plain list of asserts) turned
/// into harness units: the checker process evaluates each check's expressions, and the literal
/// operands stay here, judged against the values that come back.
pub(crate) fn plan_assertions(parsed: &Value, plan: &mut Vec<Planned>) -> Result<(), ApiError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn limits() -> RunLimits {
        RunLimits::clamp(&crate::config::LimitsConfig::default(), Some(2_000), None)
    }

    /// A unit as `zygote.rs` hands it over: the meta fields, stdout and stderr in base64 and the
    /// result value as text.
    fn unit(meta: Value, stdout: &str, stderr: &str, result: &str) -> Value {
        let mut u = meta;
        u["stdout"] = STANDARD.encode(stdout).into();
        u["stderr"] = STANDARD.encode(stderr).into();
        u["result"] = result.into();
        u
    }

    fn exited(code: i64, stdout: &str) -> Value {
        unit(json!({"exit_code": code, "cpu_ms": 5.0}), stdout, "", "")
    }

    fn returned(values: Value) -> Value {
        unit(
            json!({"exit_code": 0}),
            "",
            "",
            &json!({ "values": values }).to_string(),
        )
    }

    fn request(v: Value) -> TestsRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn outcomes_are_classified_by_what_ended_the_unit() {
        let cpu_limit_ms = limits().cpu_s as f64 * 1000.0;
        let cases: &[(&str, Value, &str, &str, Option<&str>)] = &[
            ("exit_0_is_ok", json!({"exit_code": 0}), "", "ok", None),
            (
                "a_nonzero_exit_is_a_runtime_error",
                json!({"exit_code": 1}),
                "Traceback ...\nValueError: x",
                "runtime_error",
                None,
            ),
            (
                "a_fatal_signal_is_a_runtime_error",
                json!({"signal": libc::SIGSEGV}),
                "",
                "runtime_error",
                None,
            ),
            (
                "the_wall_clock_backstop_is_a_wall_timeout",
                json!({"signal": libc::SIGKILL, "timed_out": true}),
                "",
                "timeout",
                Some("wall"),
            ),
            (
                "the_harness_names_the_limit_that_ended_it",
                json!({"signal": libc::SIGKILL, "timed_out": true, "timeout_kind": "cpu"}),
                "",
                "timeout",
                Some("cpu"),
            ),
            (
                "sigxcpu_is_the_cpu_limit",
                json!({"signal": libc::SIGXCPU}),
                "",
                "timeout",
                Some("cpu"),
            ),
            (
                "sigkill_at_the_hard_cpu_limit_is_a_cpu_timeout",
                json!({"signal": libc::SIGKILL, "cpu_ms": cpu_limit_ms}),
                "",
                "timeout",
                Some("cpu"),
            ),
            (
                "sigkill_well_before_the_cpu_limit_is_a_runtime_error",
                json!({"signal": libc::SIGKILL, "cpu_ms": 10.0}),
                "",
                "runtime_error",
                None,
            ),
            (
                "the_memory_cgroup_s_kill_is_a_memory_limit",
                json!({"signal": libc::SIGKILL, "oom_killed": true}),
                "",
                "memory_limit",
                None,
            ),
            (
                "python_s_memory_error_is_a_memory_limit",
                json!({"exit_code": 1}),
                "Traceback ...\nMemoryError",
                "memory_limit",
                None,
            ),
            (
                "c_plus_plus_bad_alloc_is_a_memory_limit",
                json!({"signal": libc::SIGABRT}),
                "terminate called after throwing an instance of 'std::bad_alloc'",
                "memory_limit",
                None,
            ),
            (
                "rust_s_allocation_failure_is_a_memory_limit",
                json!({"signal": libc::SIGABRT}),
                "memory allocation of 1048576 bytes failed",
                "memory_limit",
                None,
            ),
            (
                "memory_words_from_a_program_that_exits_0_are_only_output",
                json!({"exit_code": 0}),
                "MemoryError",
                "ok",
                None,
            ),
            (
                "too_much_output_wins_over_everything_the_program_did",
                json!({"exit_code": 1, "output_limit": true, "oom_killed": true}),
                "",
                "output_limit",
                None,
            ),
            (
                "the_sandbox_s_own_setup_failure_is_no_program_error",
                json!({"exit_code": 111}),
                "grpo-sandboxd: sandbox setup failed: mount",
                "sandbox_error",
                None,
            ),
            (
                "exit_111_from_the_program_itself_is_a_runtime_error",
                json!({"exit_code": 111}),
                "",
                "runtime_error",
                None,
            ),
        ];
        for (name, meta, stderr, status, kind) in cases {
            let o = classify(&unit(meta.clone(), "", stderr, ""), &limits());
            assert_eq!(o.status, *status, "{name}");
            assert_eq!(o.timeout_kind.as_deref(), *kind, "{name}");
        }
    }

    #[test]
    fn cpu_wait_is_reported_with_timeouts_only() {
        let waited = |status: Value| {
            let mut m = status;
            m["cpu_wait_ms"] = json!(1500.0);
            classify(&unit(m, "", "", ""), &limits()).cpu_wait_ms
        };
        assert_eq!(
            waited(json!({"signal": libc::SIGKILL, "timed_out": true})),
            Some(1500.0)
        );
        assert_eq!(waited(json!({"exit_code": 0})), None);
    }

    #[test]
    fn stdout_tests_are_judged_by_the_request_s_compare_mode() {
        let cases: &[(&str, &str, &str, &str, bool)] = &[
            (
                "whitespace_ignores_a_missing_newline",
                "whitespace",
                "3\n",
                "3",
                true,
            ),
            ("exact_needs_the_same_bytes", "exact", "3\n", "3", false),
            ("tokens_ignore_line_breaks", "tokens", "1\n2\n", "1 2", true),
            (
                "float_takes_the_tolerance",
                "float",
                "0.3333333\n",
                "0.33333333",
                true,
            ),
            ("a_wrong_answer_is_wrong", "whitespace", "4\n", "3\n", false),
        ];
        for (name, mode, out, expected, pass) in cases {
            let req = request(json!({"code": "", "compare": mode,
                "tests": [{"stdin": "", "expected_stdout": expected}]}));
            let plan = plan_tests(&req).unwrap();
            let r = judge_units(&req, &plan, &[exited(0, out)], &limits());
            assert_eq!(r.tests[0].passed, *pass, "{name}");
            let reason = if *pass { "passed" } else { "wrong_output" };
            assert_eq!(r.tests[0].reason, reason, "{name}");
            // The expected output is shown where the test failed, and only there.
            assert_eq!(r.tests[0].expected.is_some(), !pass, "{name}");
        }
    }

    #[test]
    fn call_tests_compare_the_returned_value_as_python_would() {
        let cases: &[(&str, Value, Value, &str)] = &[
            ("equal_ints", json!(5), json!([5]), "passed"),
            ("an_int_equals_its_float", json!(5), json!([5.0]), "passed"),
            (
                "expected_none_is_a_value",
                json!(null),
                json!([null]),
                "passed",
            ),
            ("none_is_not_zero", json!(null), json!([0]), "wrong_value"),
            (
                "apps_wraps_the_expected_value_in_a_list",
                json!([5]),
                json!([5]),
                "passed",
            ),
            (
                "a_list_is_compared_whole",
                json!([1, 2]),
                json!([[1, 2]]),
                "passed",
            ),
            (
                "a_tuple_equals_its_list_leniently",
                json!([1, 2]),
                json!([{"$tuple": [1, 2]}]),
                "passed",
            ),
            ("a_str_is_not_an_int", json!(5), json!(["5"]), "wrong_value"),
            (
                "true_is_not_the_string_true",
                json!(true),
                json!(["True"]),
                "wrong_value",
            ),
        ];
        for (name, expected, values, reason) in cases {
            let req = request(json!({"code": "",
                "tests": [{"call": "f", "args": [1], "expected": expected}]}));
            let plan = plan_tests(&req).unwrap();
            let r = judge_units(&req, &plan, &[returned(values.clone())], &limits());
            assert_eq!(r.tests[0].reason, *reason, "{name}");
            assert_eq!(r.tests[0].check.as_deref(), Some("f(*[1], **{})"), "{name}");
        }
    }

    #[test]
    fn a_result_that_is_missing_or_an_exception_fails() {
        let req = request(json!({"code": "", "tests": [{"call": "f", "expected": 1}]}));
        let plan = plan_tests(&req).unwrap();
        let judged = |u: Value| {
            judge_units(&req, &plan, &[u], &limits()).tests[0]
                .reason
                .clone()
        };
        assert_eq!(judged(exited(0, "")), "no_result");
        assert_eq!(
            judged(unit(json!({"exit_code": 0}), "", "", "not json")),
            "no_result"
        );
        assert_eq!(
            judged(unit(
                json!({"exit_code": 0}),
                "",
                "",
                r#"{"error": "ZeroDivisionError: x"}"#
            )),
            "exception: ZeroDivisionError: x"
        );
        assert_eq!(
            judged(unit(
                json!({"exit_code": 0}),
                "",
                "",
                r#"{"values": [{"$int": 5}]}"#
            )),
            "bad_result"
        );
        // A unit that did not end well is judged by how it ended, whatever it returned.
        let mut timeout = returned(json!([1]));
        timeout["timed_out"] = json!(true);
        timeout["signal"] = json!(libc::SIGKILL);
        assert_eq!(judged(timeout), "timeout");
    }

    #[test]
    fn tests_without_a_complete_style_are_refused() {
        let refused = |tests: Value| match plan_tests(&request(json!({"code": "", "tests": tests})))
        {
            Err(ApiError::BadRequest(m)) => m,
            _ => panic!("accepted {tests}"),
        };
        assert!(refused(json!([{"call": "f", "args": [1]}])).contains("`call` needs `expected`"));
        assert!(refused(json!([{"stdin": "1"}])).starts_with("tests[0]: give"));
    }

    /// What the zygote's parse ('P') reports for `assert f(2) == 4` and `assert not g(0)`.
    fn parsed_asserts() -> Value {
        json!({
            "setup": "",
            "names": ["f", "g"],
            "checks": [
                {"src": "f(2) == 4", "operands": [{"expr": "f(2)"}, {"literal": 4}], "ops": ["=="], "negate": false},
                {"src": "g(0)", "operands": [{"expr": "g(0)"}], "ops": [], "negate": true},
            ],
        })
    }

    #[test]
    fn assertions_are_judged_here_with_their_literals_kept_outside() {
        let mut plan = Vec::new();
        plan_assertions(&parsed_asserts(), &mut plan).unwrap();
        assert_eq!(plan.len(), 2);
        // Only the expression crosses to the checker process; the literal 4 stays here.
        assert_eq!(plan[0].unit["exprs"], json!(["f(2)"]));
        assert_eq!(plan[0].label.as_deref(), Some("assert f(2) == 4"));
        let req = request(json!({"code": "", "test_code": "..."}));
        let cases: &[(&str, Value, Value, [&str; 2])] = &[
            ("both_hold", json!([4]), json!([0]), ["passed", "passed"]),
            (
                "a_wrong_value",
                json!([5]),
                json!([0]),
                ["assertion_failed", "passed"],
            ),
            (
                "a_truthy_value_under_not",
                json!([4]),
                json!([[1]]),
                ["passed", "assertion_failed"],
            ),
            (
                "a_float_equal_to_the_int",
                json!([4.0]),
                json!([""]),
                ["passed", "passed"],
            ),
            (
                "a_string_is_not_the_int",
                json!(["4"]),
                json!([null]),
                ["assertion_failed", "passed"],
            ),
        ];
        for (name, first, second, reasons) in cases {
            let units = [returned(first.clone()), returned(second.clone())];
            let r = judge_units(&req, &plan, &units, &limits());
            let got: Vec<_> = r.tests.iter().map(|t| t.reason.as_str()).collect();
            assert_eq!(got, reasons, "{name}");
            // An assertion's expected side is in its label, not an `expected` field.
            assert!(r.tests.iter().all(|t| t.expected.is_none()), "{name}");
        }
    }

    #[test]
    fn test_code_that_is_no_list_of_asserts_runs_whole() {
        let mut plan = Vec::new();
        let parsed = json!({"whole": "def check(c):\n    for x in [1]:\n        assert c(x)\ncheck(f)", "names": ["f"]});
        plan_assertions(&parsed, &mut plan).unwrap();
        assert_eq!(plan.len(), 1);
        let req = request(json!({"code": "", "test_code": "..."}));
        let r = judge_units(&req, &plan, &[returned(json!([]))], &limits());
        assert!(r.all_passed);
        let raised = unit(
            json!({"exit_code": 0}),
            "",
            "",
            r#"{"error": "AssertionError: "}"#,
        );
        let r = judge_units(&req, &plan, &[raised], &limits());
        assert_eq!(r.tests[0].reason, "exception: AssertionError: ");
    }

    #[test]
    fn a_literal_the_daemon_cannot_read_refuses_the_request() {
        let parsed = json!({"setup": "", "names": [], "checks": [
            {"src": "f() == x", "operands": [{"expr": "f()"}, {"literal": {"$int": 5}}], "ops": ["=="]}]});
        assert!(plan_assertions(&parsed, &mut Vec::new()).is_err());
    }

    #[test]
    fn after_a_stop_the_rest_are_skipped_and_the_score_counts_them() {
        let req = request(json!({"code": "", "stop_at_first_failure": true, "tests": [
            {"stdin": "", "expected_stdout": "1"},
            {"stdin": "", "expected_stdout": "2"},
            {"stdin": "", "expected_stdout": "3"},
            {"stdin": "", "expected_stdout": "4"}]}));
        let plan = plan_tests(&req).unwrap();
        assert!(unit_passes(&req, &plan[0], &exited(0, "1\n"), &limits()));
        assert!(!unit_passes(&req, &plan[1], &exited(0, "9\n"), &limits()));
        // The failure streamed back, the zygote was told to stop: the unit running then came
        // back marked `stopped`, and the last never ran.
        let mut cut = exited(0, "");
        cut["stopped"] = json!(true);
        let units = [exited(0, "1\n"), exited(0, "9\n"), cut];
        let r = judge_units(&req, &plan, &units, &limits());
        let got: Vec<_> = r.tests.iter().map(|t| t.status.as_str()).collect();
        assert_eq!(got, ["ok", "ok", "skipped", "skipped"]);
        assert_eq!((r.passed, r.total, r.pass_fraction), (1, 4, 0.25));
        assert!(!r.all_passed);
        assert_eq!(r.first_failure.map(|f| f.index), Some(1));
    }

    #[test]
    fn kept_output_is_cut_at_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "h…[truncated]");
        assert_eq!(truncate("short", 10), "short");
        let req = request(json!({"code": "", "keep_output_bytes": 4,
            "tests": [{"stdin": "", "expected_stdout": "x"}]}));
        let plan = plan_tests(&req).unwrap();
        let r = judge_units(&req, &plan, &[exited(0, "abcdefgh")], &limits());
        assert_eq!(r.tests[0].stdout, "abcd…[truncated]");
    }

    #[test]
    fn a_run_s_answer_carries_its_unit_and_fetched_files() {
        let o = classify(&exited(0, "hi\n"), &limits());
        let r = run_response(o, Some(json!({"out.txt": "x"})));
        assert_eq!(
            (r.status.as_str(), r.stdout.as_str(), r.exit_code),
            ("ok", "hi\n", Some(0))
        );
        assert_eq!(r.files, Some(json!({"out.txt": "x"})));
    }
}
