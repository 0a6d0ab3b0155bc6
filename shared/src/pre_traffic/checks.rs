//! Pure evaluation of the pre-traffic checks: configuration guards against a snapshot of
//! the target version, and smoke-test expectations against an invocation's outcome.
//!
//! Nothing here performs I/O; the hook fetches the data and these functions turn it into
//! [`CheckResult`]s with the expected and observed values as evidence.

use serde_json::{Number, Value, json};

use crate::decision::{CheckResult, Outcome};
use crate::policy::{Architecture, Bounds, ConfigGuards, FunctionErrorExpectation, SmokeTest};
use crate::ports::{FunctionSnapshot, InvokeOutcome};

/// Response bodies and error messages kept as evidence are cut to about this many bytes.
pub const MAX_EVIDENCE_BYTES: usize = 1024;
/// Values quoted inside a `detail` sentence are cut to this many characters.
const MAX_DETAIL_VALUE_CHARS: usize = 200;

/// Checks the target version's configuration: always `config.state` and
/// `config.last_update_status`, then one check per guard the policy sets.
pub fn config_checks(snap: &FunctionSnapshot, guards: &ConfigGuards) -> Vec<CheckResult> {
    let mut out = vec![
        status_check(
            "config.state",
            "Active",
            snap.state.as_deref(),
            snap.state_reason.as_deref(),
            "state",
        ),
        status_check(
            "config.last_update_status",
            "Successful",
            snap.last_update_status.as_deref(),
            snap.last_update_status_reason.as_deref(),
            "last update status",
        ),
    ];

    out.extend(
        guards
            .architecture
            .map(|arch| architecture_check(snap, arch)),
    );
    out.extend(guards.runtime.as_deref().map(|r| runtime_check(snap, r)));
    if let Some(bounds) = &guards.memory_mb {
        out.push(bounds_check(
            "config.memory_mb",
            bounds,
            snap.memory_mb,
            "memory",
            "MB",
        ));
    }
    if let Some(bounds) = &guards.timeout_seconds {
        out.push(bounds_check(
            "config.timeout_seconds",
            bounds,
            snap.timeout_seconds,
            "timeout",
            "s",
        ));
    }

    if !guards.required_env.is_empty() {
        out.push(required_env_check(snap, &guards.required_env));
    }
    out
}

fn architecture_check(snap: &FunctionSnapshot, arch: Architecture) -> CheckResult {
    let name = "config.architecture";
    let expected = json!(arch.as_str());
    let actual = json!(snap.architectures);
    if snap.architectures.is_empty() {
        inconclusive(name, expected, actual, "Lambda reported no architectures")
    } else if snap.architectures.iter().any(|a| a == arch.as_str()) {
        CheckResult::pass(name, expected, actual)
    } else {
        CheckResult::fail(name, expected, actual).with_detail(format!(
            "function is built for {}, the policy requires {}",
            snap.architectures.join(", "),
            arch.as_str()
        ))
    }
}

fn runtime_check(snap: &FunctionSnapshot, runtime: &str) -> CheckResult {
    let name = "config.runtime";
    let expected = json!(runtime);
    let actual = json!(snap.runtime);
    match snap.runtime.as_deref() {
        Some(r) if r == runtime => CheckResult::pass(name, expected, actual),
        Some(r) => CheckResult::fail(name, expected, actual).with_detail(format!(
            "function runtime is {r}, the policy requires {runtime}"
        )),
        None => CheckResult::fail(name, expected, actual).with_detail(format!(
            "function reports no runtime (a container image?), the policy requires {runtime}"
        )),
    }
}

fn required_env_check(snap: &FunctionSnapshot, required: &[String]) -> CheckResult {
    let (present, missing): (Vec<&String>, Vec<&String>) =
        required.iter().partition(|k| snap.env_keys.contains(k));
    let name = "config.required_env";
    let expected = json!(required);
    let actual = json!({ "present": present, "missing": missing });
    if missing.is_empty() {
        CheckResult::pass(name, expected, actual)
    } else {
        let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        CheckResult::fail(name, expected, actual).with_detail(format!(
            "missing environment variable(s): {}",
            list.join(", ")
        ))
    }
}

fn status_check(
    name: &str,
    want: &str,
    got: Option<&str>,
    reason: Option<&str>,
    what: &str,
) -> CheckResult {
    match got {
        Some(s) if s == want => CheckResult::pass(name, json!(want), json!(s)),
        Some(s) => {
            let mut detail = format!("function {what} is {s}, not {want}");
            if let Some(r) = reason.filter(|r| !r.is_empty()) {
                detail.push_str(": ");
                detail.push_str(&truncate_chars(r, MAX_EVIDENCE_BYTES));
            }
            CheckResult::fail(name, json!(want), json!(s)).with_detail(detail)
        }
        None => inconclusive(
            name,
            json!(want),
            Value::Null,
            &format!("Lambda reported no {what}"),
        ),
    }
}

fn bounds_check(
    name: &str,
    bounds: &Bounds,
    value: Option<i32>,
    what: &str,
    unit: &str,
) -> CheckResult {
    let expected = json!(bounds);
    let Some(v) = value else {
        return inconclusive(
            name,
            expected,
            Value::Null,
            &format!("Lambda reported no {what}"),
        );
    };
    if bounds.contains(i64::from(v)) {
        return CheckResult::pass(name, expected, json!(v));
    }
    let range = match (bounds.min, bounds.max) {
        (Some(lo), Some(hi)) => format!("between {lo} and {hi} {unit}"),
        (Some(lo), None) => format!("at least {lo} {unit}"),
        (None, Some(hi)) => format!("at most {hi} {unit}"),
        (None, None) => "anything".to_string(),
    };
    CheckResult::fail(name, expected, json!(v)).with_detail(format!(
        "function {what} is {v} {unit}, the policy requires {range}"
    ))
}

fn inconclusive(name: &str, expected: Value, actual: Value, detail: &str) -> CheckResult {
    CheckResult::new(name, Outcome::Inconclusive, expected, actual).with_detail(detail)
}

/// Evaluates every expectation of `test` against `outcome`: one check per expectation,
/// each carrying the invocation's duration.
pub fn evaluate_smoke(test: &SmokeTest, outcome: &InvokeOutcome) -> Vec<CheckResult> {
    let prefix = format!("smoke[{}]", test.name);
    let expect = &test.expect;
    let mut out = vec![function_error_check(
        &format!("{prefix}.function_error"),
        &expect.function_error,
        outcome,
    )];

    let body: Result<Value, String> = parse_body(&outcome.payload);

    if let Some(subset) = &expect.json_subset {
        let name = format!("{prefix}.json_subset");
        out.push(match &body {
            Err(why) => CheckResult::fail(name, subset.clone(), body_evidence(&outcome.payload))
                .with_detail(why.clone()),
            Ok(actual) => match subset_mismatch(subset, actual, "") {
                None => CheckResult::pass(name, subset.clone(), value_evidence(actual)),
                Some(why) => {
                    CheckResult::fail(name, subset.clone(), value_evidence(actual)).with_detail(why)
                }
            },
        });
    }

    for (pointer, want) in &expect.json_pointer {
        let name = format!("{prefix}.json_pointer{pointer}");
        out.push(match &body {
            Err(why) => CheckResult::fail(name, want.clone(), body_evidence(&outcome.payload))
                .with_detail(why.clone()),
            Ok(doc) => match doc.pointer(pointer) {
                None => CheckResult::fail(name, want.clone(), Value::Null).with_detail(format!(
                    "{}: nothing at this pointer in the response",
                    display_path(pointer)
                )),
                Some(found) => match subset_mismatch(want, found, pointer) {
                    None => CheckResult::pass(name, want.clone(), value_evidence(found)),
                    Some(why) => CheckResult::fail(name, want.clone(), value_evidence(found))
                        .with_detail(why),
                },
            },
        });
    }

    if let Some(re) = &expect.body_regex {
        let name = format!("{prefix}.body_regex");
        let text = String::from_utf8_lossy(&outcome.payload);
        let expected = json!(re.as_str());
        let actual = Value::String(truncate_text(&text));
        out.push(if re.regex().is_match(&text) {
            CheckResult::pass(name, expected, actual)
        } else {
            CheckResult::fail(name, expected, actual).with_detail(format!(
                "response body ({} bytes) does not match /{}/",
                outcome.payload.len(),
                re.as_str()
            ))
        });
    }

    if let Some(max) = expect.max_duration_ms {
        let name = format!("{prefix}.max_duration_ms");
        let (expected, actual) = (json!(max), json!(outcome.duration_ms));
        out.push(if outcome.duration_ms <= max {
            CheckResult::pass(name, expected, actual)
        } else {
            CheckResult::fail(name, expected, actual).with_detail(format!(
                "invocation took {} ms, more than the {max} ms allowed",
                outcome.duration_ms
            ))
        });
    }

    out.into_iter()
        .map(|c| c.with_duration_ms(outcome.duration_ms))
        .collect()
}

/// The check for a smoke test whose invocation failed at the AWS level (throttled,
/// access denied, timed out before a response): `smoke[<name>].invoke`, always `Fail`.
pub fn smoke_error(test_name: &str, message: &str, attempts: u32, duration_ms: u64) -> CheckResult {
    let message = truncate_text(message);
    CheckResult::fail(
        format!("smoke[{test_name}].invoke"),
        json!("the invocation completes"),
        json!({ "error": message, "attempts": attempts }),
    )
    .with_detail(format!(
        "invoke failed after {attempts} attempt{}: {message}",
        if attempts == 1 { "" } else { "s" }
    ))
    .with_duration_ms(duration_ms)
}

fn function_error_check(
    name: &str,
    want: &FunctionErrorExpectation,
    outcome: &InvokeOutcome,
) -> CheckResult {
    let mut actual = json!({
        "function_error": outcome.function_error,
        "error_type": outcome.error_type,
        "attempts": outcome.attempts,
    });
    if let Some(v) = &outcome.executed_version {
        actual["executed_version"] = json!(v);
    }
    let expected = json!(want.as_str());
    let failed = outcome.function_error.is_some();
    let got = describe_error(outcome);
    match want {
        FunctionErrorExpectation::None if !failed => CheckResult::pass(name, expected, actual),
        FunctionErrorExpectation::None => {
            let mut detail = format!("invocation returned a function error ({got})");
            if let Some(msg) = error_message(&outcome.payload) {
                detail.push_str(": ");
                detail.push_str(&truncate_chars(&msg, MAX_DETAIL_VALUE_CHARS));
            }
            CheckResult::fail(name, expected, actual).with_detail(detail)
        }
        FunctionErrorExpectation::Any if failed => CheckResult::pass(name, expected, actual),
        FunctionErrorExpectation::Any => CheckResult::fail(name, expected, actual)
            .with_detail("expected the invocation to fail, but it succeeded"),
        FunctionErrorExpectation::Type(t) if !failed => CheckResult::fail(name, expected, actual)
            .with_detail(format!(
                "expected a {t} error, but the invocation succeeded"
            )),
        FunctionErrorExpectation::Type(t) => {
            let matches = outcome.error_type.as_deref() == Some(t.as_str())
                || outcome.function_error.as_deref() == Some(t.as_str());
            if matches {
                CheckResult::pass(name, expected, actual)
            } else {
                CheckResult::fail(name, expected, actual)
                    .with_detail(format!("expected a {t} error, got {got}"))
            }
        }
    }
}

fn describe_error(outcome: &InvokeOutcome) -> String {
    let header = outcome.function_error.as_deref().unwrap_or("none");
    match outcome.error_type.as_deref() {
        Some(t) => format!("errorType {t}, X-Amz-Function-Error {header}"),
        None => format!("X-Amz-Function-Error {header}"),
    }
}

/// `errorMessage` from a Lambda error body, if the body is one.
fn error_message(payload: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    v.get("errorMessage")?.as_str().map(str::to_string)
}

fn parse_body(payload: &[u8]) -> Result<Value, String> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err("response body is empty, so it cannot match a JSON expectation".into());
    }
    serde_json::from_slice(payload).map_err(|e| {
        format!(
            "response body is not JSON ({e}), so it cannot match a JSON expectation; body starts {}",
            truncate_chars(&String::from_utf8_lossy(payload), 80)
        )
    })
}

/// The first place where `actual` fails to contain `expected`, as `<path>: <why>`.
///
/// Objects: every expected key must be present with a matching value (extra keys are
/// fine). Arrays: same length, element-wise match. Scalars: equal, numbers numerically.
pub fn subset_mismatch(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => want.iter().find_map(|(key, w)| {
            let child = format!("{path}/{}", escape_token(key));
            match got.get(key) {
                None => Some(format!(
                    "{}: expected {}, but the key is missing",
                    display_path(&child),
                    short(w)
                )),
                Some(g) => subset_mismatch(w, g, &child),
            }
        }),
        (Value::Array(want), Value::Array(got)) => {
            if want.len() != got.len() {
                return Some(format!(
                    "{}: expected an array of {} element(s), got {}",
                    display_path(path),
                    want.len(),
                    got.len()
                ));
            }
            want.iter()
                .zip(got)
                .enumerate()
                .find_map(|(i, (w, g))| subset_mismatch(w, g, &format!("{path}/{i}")))
        }
        (Value::Number(w), Value::Number(g)) if numbers_equal(w, g) => None,
        (w, g) if w == g => None,
        (w, g) => Some(format!(
            "{}: expected {}, got {}",
            display_path(path),
            short(w),
            short(g)
        )),
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    fn int(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// RFC 6901 escaping of one reference token.
fn escape_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

/// A value quoted in a detail sentence: compact JSON, cut to a couple of hundred characters.
fn short(v: &Value) -> String {
    truncate_chars(&v.to_string(), MAX_DETAIL_VALUE_CHARS)
}

/// The response body as evidence: the JSON value when it is small JSON, otherwise
/// (lossy UTF-8) text cut to [`MAX_EVIDENCE_BYTES`] with a marker.
pub fn body_evidence(payload: &[u8]) -> Value {
    if payload.len() <= MAX_EVIDENCE_BYTES
        && let Ok(v) = serde_json::from_slice::<Value>(payload)
    {
        return v;
    }
    Value::String(truncate_text(&String::from_utf8_lossy(payload)))
}

/// A JSON value as evidence: itself when its serialization is small, otherwise truncated text.
fn value_evidence(v: &Value) -> Value {
    let text = v.to_string();
    if text.len() <= MAX_EVIDENCE_BYTES {
        v.clone()
    } else {
        Value::String(truncate_text(&text))
    }
}

/// Cuts `text` to at most [`MAX_EVIDENCE_BYTES`] bytes on a character boundary and
/// appends a marker saying how long it was.
fn truncate_text(text: &str) -> String {
    if text.len() <= MAX_EVIDENCE_BYTES {
        return text.to_string();
    }
    let mut end = MAX_EVIDENCE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}…[truncated, {} bytes in total]",
        &text[..end],
        text.len()
    )
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((i, _)) => format!("{}…", &text[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Architecture, BodyRegex, Expect};

    fn healthy() -> FunctionSnapshot {
        FunctionSnapshot {
            version: "7".into(),
            state: Some("Active".into()),
            state_reason: None,
            last_update_status: Some("Successful".into()),
            last_update_status_reason: None,
            architectures: vec!["arm64".into()],
            runtime: Some("provided.al2023".into()),
            memory_mb: Some(512),
            timeout_seconds: Some(10),
            env_keys: vec!["TABLE_NAME".into(), "LOG_LEVEL".into()],
        }
    }

    fn all_guards() -> ConfigGuards {
        ConfigGuards {
            architecture: Some(Architecture::Arm64),
            runtime: Some("provided.al2023".into()),
            memory_mb: Some(Bounds {
                min: Some(128),
                max: Some(1024),
            }),
            timeout_seconds: Some(Bounds {
                min: None,
                max: Some(30),
            }),
            required_env: vec!["TABLE_NAME".into()],
        }
    }

    fn find<'a>(checks: &'a [CheckResult], name: &str) -> &'a CheckResult {
        checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"))
    }

    fn names(checks: &[CheckResult]) -> Vec<&str> {
        checks.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn no_guards_means_only_state_checks() {
        let checks = config_checks(&healthy(), &ConfigGuards::default());
        assert_eq!(
            names(&checks),
            ["config.state", "config.last_update_status"]
        );
        assert!(checks.iter().all(CheckResult::passed));
        assert_eq!(checks[0].expected, json!("Active"));
        assert_eq!(checks[1].actual, json!("Successful"));
    }

    #[test]
    fn every_guard_produces_a_passing_check() {
        let checks = config_checks(&healthy(), &all_guards());
        assert_eq!(
            names(&checks),
            [
                "config.state",
                "config.last_update_status",
                "config.architecture",
                "config.runtime",
                "config.memory_mb",
                "config.timeout_seconds",
                "config.required_env"
            ]
        );
        assert!(checks.iter().all(CheckResult::passed), "{checks:#?}");
        let mem = find(&checks, "config.memory_mb");
        assert_eq!(mem.expected, json!({"min": 128, "max": 1024}));
        assert_eq!(mem.actual, json!(512));
        assert_eq!(
            find(&checks, "config.timeout_seconds").expected,
            json!({"max": 30})
        );
    }

    #[test]
    fn state_must_be_active() {
        let mut snap = healthy();
        snap.state = Some("Pending".into());
        snap.state_reason = Some("The function is being created.".into());
        let c = &config_checks(&snap, &ConfigGuards::default())[0];
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.actual, json!("Pending"));
        assert_eq!(
            c.detail.as_deref(),
            Some("function state is Pending, not Active: The function is being created.")
        );
        snap.state = None;
        let c = &config_checks(&snap, &ConfigGuards::default())[0];
        assert_eq!(c.outcome, Outcome::Inconclusive);
        assert_eq!(c.actual, Value::Null);
    }

    #[test]
    fn last_update_must_be_successful() {
        let mut snap = healthy();
        snap.last_update_status = Some("Failed".into());
        snap.last_update_status_reason = Some("EniLimitExceeded".into());
        let c = find(
            &config_checks(&snap, &ConfigGuards::default()),
            "config.last_update_status",
        )
        .clone();
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail
                .unwrap()
                .contains("Failed, not Successful: EniLimitExceeded")
        );
        snap.last_update_status = Some("InProgress".into());
        snap.last_update_status_reason = Some(String::new());
        let checks = config_checks(&snap, &ConfigGuards::default());
        let c = find(&checks, "config.last_update_status");
        assert_eq!(
            c.detail.as_deref(),
            Some("function last update status is InProgress, not Successful")
        );
    }

    #[test]
    fn architecture_guard() {
        let mut snap = healthy();
        snap.architectures = vec!["x86_64".into()];
        let checks = config_checks(&snap, &all_guards());
        let c = find(&checks, "config.architecture");
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            (c.expected.clone(), c.actual.clone()),
            (json!("arm64"), json!(["x86_64"]))
        );
        snap.architectures.clear();
        let checks = config_checks(&snap, &all_guards());
        assert_eq!(
            find(&checks, "config.architecture").outcome,
            Outcome::Inconclusive
        );
    }

    #[test]
    fn runtime_guard() {
        let mut snap = healthy();
        snap.runtime = Some("nodejs22.x".into());
        let checks = config_checks(&snap, &all_guards());
        let c = find(&checks, "config.runtime");
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail.as_deref(),
            Some("function runtime is nodejs22.x, the policy requires provided.al2023")
        );
        snap.runtime = None;
        let checks = config_checks(&snap, &all_guards());
        let c = find(&checks, "config.runtime");
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.actual, Value::Null);
    }

    #[test]
    fn memory_and_timeout_guards() {
        let mut snap = healthy();
        snap.memory_mb = Some(2048);
        snap.timeout_seconds = Some(31);
        let checks = config_checks(&snap, &all_guards());
        let mem = find(&checks, "config.memory_mb");
        assert_eq!(mem.outcome, Outcome::Fail);
        assert_eq!(
            mem.detail.as_deref(),
            Some("function memory is 2048 MB, the policy requires between 128 and 1024 MB")
        );
        let t = find(&checks, "config.timeout_seconds");
        assert_eq!(t.outcome, Outcome::Fail);
        assert_eq!(
            t.detail.as_deref(),
            Some("function timeout is 31 s, the policy requires at most 30 s")
        );
        // Boundaries are inclusive.
        snap.memory_mb = Some(1024);
        snap.timeout_seconds = Some(30);
        let checks = config_checks(&snap, &all_guards());
        assert!(find(&checks, "config.memory_mb").passed());
        assert!(find(&checks, "config.timeout_seconds").passed());
        snap.memory_mb = None;
        let checks = config_checks(&snap, &all_guards());
        assert_eq!(
            find(&checks, "config.memory_mb").outcome,
            Outcome::Inconclusive
        );
    }

    #[test]
    fn required_env_lists_missing_names_only() {
        let mut guards = all_guards();
        guards.required_env = vec!["TABLE_NAME".into(), "QUEUE_URL".into(), "API_KEY".into()];
        let checks = config_checks(&healthy(), &guards);
        let c = find(&checks, "config.required_env");
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.expected, json!(["TABLE_NAME", "QUEUE_URL", "API_KEY"]));
        assert_eq!(
            c.actual,
            json!({"present": ["TABLE_NAME"], "missing": ["QUEUE_URL", "API_KEY"]})
        );
        assert_eq!(
            c.detail.as_deref(),
            Some("missing environment variable(s): QUEUE_URL, API_KEY")
        );
        // Names of variables the policy does not ask about are not reported.
        assert!(!serde_json::to_string(c).unwrap().contains("LOG_LEVEL"));
    }

    fn test_with(expect: Expect) -> SmokeTest {
        let mut t = SmokeTest::new("health");
        t.expect = expect;
        t
    }

    fn ok(body: &str) -> InvokeOutcome {
        InvokeOutcome {
            function_error: None,
            error_type: None,
            payload: body.as_bytes().to_vec(),
            duration_ms: 42,
            executed_version: Some("7".into()),
            attempts: 1,
        }
    }

    fn errored(header: &str, error_type: &str, message: &str) -> InvokeOutcome {
        InvokeOutcome {
            function_error: Some(header.into()),
            error_type: Some(error_type.into()),
            payload: json!({"errorType": error_type, "errorMessage": message})
                .to_string()
                .into_bytes(),
            duration_ms: 9,
            executed_version: Some("7".into()),
            attempts: 1,
        }
    }

    fn subset(expected: Value, body: &str) -> CheckResult {
        let t = test_with(Expect {
            json_subset: Some(expected),
            ..Expect::default()
        });
        find(&evaluate_smoke(&t, &ok(body)), "smoke[health].json_subset").clone()
    }

    #[test]
    fn default_expectation_is_no_function_error() {
        let checks = evaluate_smoke(&SmokeTest::new("health"), &ok("{}"));
        assert_eq!(names(&checks), ["smoke[health].function_error"]);
        let c = &checks[0];
        assert!(c.passed());
        assert_eq!(c.expected, json!("none"));
        assert_eq!(c.duration_ms, 42);
        assert_eq!(c.actual["executed_version"], json!("7"));

        let checks = evaluate_smoke(
            &SmokeTest::new("health"),
            &errored("Unhandled", "TypeError", "x is undefined"),
        );
        assert_eq!(checks[0].outcome, Outcome::Fail);
        assert_eq!(
            checks[0].detail.as_deref(),
            Some(
                "invocation returned a function error (errorType TypeError, X-Amz-Function-Error Unhandled): x is undefined"
            )
        );
    }

    #[test]
    fn expected_errors() {
        let any = test_with(Expect {
            function_error: FunctionErrorExpectation::Any,
            ..Expect::default()
        });
        assert!(evaluate_smoke(&any, &errored("Unhandled", "Boom", "m"))[0].passed());
        let c = &evaluate_smoke(&any, &ok("{}"))[0];
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail.as_deref(),
            Some("expected the invocation to fail, but it succeeded")
        );

        let typed = test_with(Expect {
            function_error: FunctionErrorExpectation::Type("ValidationError".into()),
            ..Expect::default()
        });
        assert!(evaluate_smoke(&typed, &errored("Unhandled", "ValidationError", "m"))[0].passed());
        let c = &evaluate_smoke(&typed, &errored("Unhandled", "TypeError", "m"))[0];
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail.as_deref(),
            Some(
                "expected a ValidationError error, got errorType TypeError, X-Amz-Function-Error Unhandled"
            )
        );
        let c = &evaluate_smoke(&typed, &ok("{}"))[0];
        assert_eq!(
            c.detail.as_deref(),
            Some("expected a ValidationError error, but the invocation succeeded")
        );

        // The header value works too, including when the body has no errorType.
        let unhandled = test_with(Expect {
            function_error: FunctionErrorExpectation::Type("Unhandled".into()),
            ..Expect::default()
        });
        let mut out = ok("not json");
        out.function_error = Some("Unhandled".into());
        assert!(evaluate_smoke(&unhandled, &out)[0].passed());
    }

    #[test]
    fn expectations_apply_to_error_bodies() {
        let t = test_with(Expect {
            function_error: FunctionErrorExpectation::Type("ValidationError".into()),
            json_subset: Some(json!({"errorType": "ValidationError"})),
            body_regex: Some(BodyRegex::new("(?i-u)at least one item").unwrap()),
            ..Expect::default()
        });
        let checks = evaluate_smoke(
            &t,
            &errored("Unhandled", "ValidationError", "At least one item"),
        );
        assert_eq!(
            names(&checks),
            [
                "smoke[health].function_error",
                "smoke[health].json_subset",
                "smoke[health].body_regex"
            ]
        );
        assert!(checks.iter().all(CheckResult::passed), "{checks:#?}");
    }

    #[test]
    fn subset_objects_allow_extra_keys() {
        let c = subset(json!({"ok": true}), r#"{"ok": true, "extra": [1, 2]}"#);
        assert!(c.passed());
        assert_eq!(c.actual, json!({"ok": true, "extra": [1, 2]}));
        assert!(subset(json!({}), r#"{"anything": 1}"#).passed());
    }

    #[test]
    fn subset_names_the_first_differing_path() {
        let c = subset(
            json!({"items": [{"id": 3}, {"id": 5}]}),
            r#"{"items": [{"id": 4, "x": 1}, {"id": 6}]}"#,
        );
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.detail.as_deref(), Some("/items/0/id: expected 3, got 4"));
    }

    #[test]
    fn subset_arrays_need_the_same_length() {
        let c = subset(json!({"items": [1]}), r#"{"items": [1, 2]}"#);
        assert_eq!(
            c.detail.as_deref(),
            Some("/items: expected an array of 1 element(s), got 2")
        );
        assert!(subset(json!([[1, [2]], []]), "[[1, [2]], []]").passed());
        let c = subset(json!([[1, [2]], []]), "[[1, [3]], []]");
        assert_eq!(c.detail.as_deref(), Some("/0/1/0: expected 2, got 3"));
        // Elements are themselves matched as subsets.
        assert!(subset(json!([{"a": 1}]), r#"[{"a": 1, "b": 2}]"#).passed());
    }

    #[test]
    fn subset_null_is_not_missing() {
        assert!(subset(json!({"a": null}), r#"{"a": null}"#).passed());
        let c = subset(json!({"a": null}), r#"{"b": 1}"#);
        assert_eq!(
            c.detail.as_deref(),
            Some("/a: expected null, but the key is missing")
        );
        let c = subset(json!({"a": 0}), r#"{"a": null}"#);
        assert_eq!(c.detail.as_deref(), Some("/a: expected 0, got null"));
    }

    #[test]
    fn subset_numbers_compare_numerically() {
        assert!(subset(json!({"n": 1}), r#"{"n": 1.0}"#).passed());
        assert!(subset(json!({"n": 1.5}), r#"{"n": 1.50}"#).passed());
        assert!(subset(json!({"n": -3}), r#"{"n": -3}"#).passed());
        assert!(subset(json!({"n": u64::MAX}), &format!(r#"{{"n": {}}}"#, u64::MAX)).passed());
        assert!(!subset(json!({"n": u64::MAX}), r#"{"n": -1}"#).passed());
        let c = subset(json!({"n": 1}), r#"{"n": "1"}"#);
        assert_eq!(c.detail.as_deref(), Some("/n: expected 1, got \"1\""));
        let c = subset(json!({"b": true}), r#"{"b": 1}"#);
        assert_eq!(c.detail.as_deref(), Some("/b: expected true, got 1"));
    }

    #[test]
    fn subset_type_mismatches_and_root() {
        let c = subset(json!({"a": {"b": 1}}), r#"{"a": [1]}"#);
        assert_eq!(c.detail.as_deref(), Some("/a: expected {\"b\":1}, got [1]"));
        let c = subset(json!("ok"), r#""nope""#);
        assert_eq!(
            c.detail.as_deref(),
            Some("(root): expected \"ok\", got \"nope\"")
        );
    }

    #[test]
    fn subset_handles_unicode_and_escaped_keys() {
        assert!(subset(json!({"naïve": "日本語 ✓"}), r#"{"naïve": "日本語 ✓"}"#).passed());
        let c = subset(json!({"a/b": {"t~x": "ü"}}), r#"{"a/b": {"t~x": "u"}}"#);
        assert_eq!(
            c.detail.as_deref(),
            Some("/a~1b/t~0x: expected \"ü\", got \"u\"")
        );
    }

    #[test]
    fn json_expectations_on_non_json_bodies_fail_clearly() {
        let c = subset(json!({"ok": true}), "<html>oops</html>");
        assert_eq!(c.outcome, Outcome::Fail);
        let detail = c.detail.unwrap();
        assert!(detail.starts_with("response body is not JSON"), "{detail}");
        assert!(detail.contains("<html>oops</html>"), "{detail}");
        assert_eq!(c.actual, json!("<html>oops</html>"));
        let c = subset(json!({"ok": true}), "");
        assert_eq!(
            c.detail.as_deref(),
            Some("response body is empty, so it cannot match a JSON expectation")
        );
    }

    #[test]
    fn json_pointer_expectations() {
        let t = test_with(Expect {
            json_pointer: [
                ("/statusCode".to_string(), json!(200)),
                ("/body/items/1".to_string(), json!({"id": 2})),
                ("/missing".to_string(), json!(null)),
                ("".to_string(), json!({"statusCode": 200.0})),
                ("/headers/x".to_string(), json!("b")),
            ]
            .into_iter()
            .collect(),
            ..Expect::default()
        });
        let body = r#"{"statusCode": 200, "body": {"items": [{"id": 1}, {"id": 2, "n": "x"}]}, "headers": {"x": "a"}}"#;
        let checks = evaluate_smoke(&t, &ok(body));
        assert!(find(&checks, "smoke[health].json_pointer/statusCode").passed());
        assert!(find(&checks, "smoke[health].json_pointer/body/items/1").passed());
        assert!(find(&checks, "smoke[health].json_pointer").passed());
        let missing = find(&checks, "smoke[health].json_pointer/missing");
        assert_eq!(missing.outcome, Outcome::Fail);
        assert_eq!(
            missing.detail.as_deref(),
            Some("/missing: nothing at this pointer in the response")
        );
        let wrong = find(&checks, "smoke[health].json_pointer/headers/x");
        assert_eq!(
            wrong.detail.as_deref(),
            Some("/headers/x: expected \"b\", got \"a\"")
        );
        assert_eq!(wrong.actual, json!("a"));
        assert!(checks.iter().all(|c| c.duration_ms == 42));

        let checks = evaluate_smoke(&t, &ok("plain text"));
        assert!(checks[1..].iter().all(|c| c.outcome == Outcome::Fail));
    }

    #[test]
    fn body_regex_expectation() {
        let t = test_with(Expect {
            body_regex: Some(BodyRegex::new(r#""status":\s*"ok""#).unwrap()),
            ..Expect::default()
        });
        let c = find(
            &evaluate_smoke(&t, &ok(r#"{"status": "ok"}"#)),
            "smoke[health].body_regex",
        )
        .clone();
        assert!(c.passed());
        assert_eq!(c.actual, json!(r#"{"status": "ok"}"#));
        let c = find(
            &evaluate_smoke(&t, &ok(r#"{"status": "down"}"#)),
            "smoke[health].body_regex",
        )
        .clone();
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail.as_deref(),
            Some(r#"response body (18 bytes) does not match /"status":\s*"ok"/"#)
        );
        // Non-UTF-8 bytes are matched lossily rather than rejected.
        let t = test_with(Expect {
            body_regex: Some(BodyRegex::new("^ok").unwrap()),
            ..Expect::default()
        });
        let mut out = ok("");
        out.payload = vec![b'o', b'k', 0xff, 0xfe];
        assert!(evaluate_smoke(&t, &out)[1].passed());
    }

    #[test]
    fn max_duration_expectation() {
        let t = test_with(Expect {
            max_duration_ms: Some(42),
            ..Expect::default()
        });
        let checks = evaluate_smoke(&t, &ok("{}"));
        let c = find(&checks, "smoke[health].max_duration_ms");
        assert!(c.passed());
        assert_eq!(
            (c.expected.clone(), c.actual.clone()),
            (json!(42), json!(42))
        );
        let mut slow = ok("{}");
        slow.duration_ms = 43;
        let c = evaluate_smoke(&t, &slow)[1].clone();
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail.as_deref(),
            Some("invocation took 43 ms, more than the 42 ms allowed")
        );
        assert_eq!(c.duration_ms, 43);
    }

    #[test]
    fn huge_bodies_are_truncated_in_evidence() {
        let big = format!(r#"{{"data": "{}", "ok": false}}"#, "é".repeat(5000));
        let t = test_with(Expect {
            json_subset: Some(json!({"ok": true})),
            body_regex: Some(BodyRegex::new("never").unwrap()),
            ..Expect::default()
        });
        let checks = evaluate_smoke(&t, &ok(&big));
        for name in ["smoke[health].json_subset", "smoke[health].body_regex"] {
            let c = find(&checks, name);
            let s = c
                .actual
                .as_str()
                .unwrap_or_else(|| panic!("{name}: {:?}", c.actual));
            assert!(s.len() < MAX_EVIDENCE_BYTES + 64, "{name}: {}", s.len());
            assert!(s.contains("é…[truncated, "), "{name}: {s}");
            assert!(s.ends_with(" bytes in total]"), "{name}");
        }
        assert_eq!(
            find(&checks, "smoke[health].json_subset").detail.as_deref(),
            Some("/ok: expected true, got false")
        );
        // Long error messages in details are cut too.
        let long = errored("Unhandled", "E", &"m".repeat(5000));
        let c = &evaluate_smoke(&SmokeTest::new("health"), &long)[0];
        assert!(c.detail.as_ref().unwrap().len() < 400);
    }

    #[test]
    fn body_evidence_keeps_small_json_as_json() {
        assert_eq!(body_evidence(br#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(body_evidence(b"hi"), json!("hi"));
        assert_eq!(body_evidence(b""), json!(""));
    }

    #[test]
    fn smoke_error_is_a_failed_invoke_check() {
        let c = smoke_error("health", "TooManyRequestsException: Rate exceeded", 3, 1500);
        assert_eq!(c.name, "smoke[health].invoke");
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.duration_ms, 1500);
        assert_eq!(
            c.actual,
            json!({"error": "TooManyRequestsException: Rate exceeded", "attempts": 3})
        );
        assert_eq!(
            c.detail.as_deref(),
            Some("invoke failed after 3 attempts: TooManyRequestsException: Rate exceeded")
        );
        let c = smoke_error("x", &"e".repeat(10_000), 1, 0);
        assert!(
            c.detail
                .unwrap()
                .starts_with("invoke failed after 1 attempt: eee")
        );
        assert!(c.actual["error"].as_str().unwrap().len() < MAX_EVIDENCE_BYTES + 64);
    }
}
