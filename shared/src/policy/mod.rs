//! The gate policy: what a function's release must satisfy before CodeDeploy shifts traffic.
//!
//! A policy is a JSON document (usually read from SSM) described by
//! `schema/policy.schema.json` and `docs/policy.md`. [`Policy::parse`] rejects unknown
//! fields and out-of-range values, and every [`PolicyError`] message starts with the
//! path of the offending field, e.g. `pre_traffic.concurrency: must be between 1 and 32, got 0`.

pub mod post_traffic;
pub mod rollout;

use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;
use std::time::Duration;

use regex_lite::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use thiserror::Error;

/// The only policy format version this build understands.
pub const POLICY_VERSION: u32 = 1;
/// Largest policy document accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Overall gate budget bounds, seconds. The upper bound keeps the hook well inside
/// Lambda's 15-minute limit so it can always report a result.
pub const BUDGET_SECONDS: RangeInclusive<u64> = 1..=840;
pub const DEFAULT_BUDGET_SECONDS: u64 = 120;
/// Smoke tests in flight at once.
pub const CONCURRENCY: RangeInclusive<usize> = 1..=32;
pub const DEFAULT_CONCURRENCY: usize = 10;
/// Lambda's own bounds on a function's memory size.
pub const MEMORY_MB: RangeInclusive<u32> = 128..=10_240;
/// Lambda's own bounds on a function's timeout.
pub const TIMEOUT_SECONDS: RangeInclusive<u32> = 1..=900;
/// Extra attempts per smoke test after the first.
pub const RETRIES: RangeInclusive<u32> = 0..=5;
/// Bound on `expect.max_duration_ms` (Lambda's 15-minute maximum).
pub const MAX_DURATION_MS: RangeInclusive<u64> = 1..=900_000;
pub const MAX_SMOKE_TESTS: usize = 50;
pub const MAX_SMOKE_TEST_NAME_LEN: usize = 64;
/// Largest serialized smoke test payload, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
pub const MAX_REQUIRED_ENV: usize = 64;
pub const MAX_RUNTIME_LEN: usize = 64;
/// Limit on a compiled `body_regex` program, in bytes (guards against pathological patterns).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
pub const MAX_REGEX_LEN: usize = 1024;

/// Why a policy document was rejected. `Display` always starts with the field path
/// (`(document)` for problems with the document as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("(document): policy is {size} bytes, larger than the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },

    #[error("(document): invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        message: String,
        line: usize,
        column: usize,
    },

    #[error(
        "version: unsupported policy version {found} (this rollgate understands {POLICY_VERSION})"
    )]
    UnsupportedVersion { found: u64 },

    /// The document does not have the policy's shape: unknown field, wrong type,
    /// missing required field, unknown enum value.
    #[error("{path}: {message}")]
    Shape { path: String, message: String },

    /// A field has the right type but breaks a rule (range, uniqueness, regex, ...).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl PolicyError {
    /// The field path the error is about (`(document)` for the document as a whole).
    pub fn path(&self) -> &str {
        match self {
            PolicyError::TooLarge { .. } | PolicyError::Syntax { .. } => "(document)",
            PolicyError::UnsupportedVersion { .. } => "version",
            PolicyError::Shape { path, .. } | PolicyError::Invalid { path, .. } => path,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A gate policy. `Policy::default()` is the policy used when a function has none:
/// configuration checks only, nothing invoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default = "default_version")]
    pub version: u32,
    #[serde(default)]
    pub pre_traffic: PreTrafficPolicy,
    /// What the post-traffic hook measures after the shift (see
    /// [`post_traffic`]); absent: that hook's defaults.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub post_traffic: Option<post_traffic::PostTrafficPolicy>,
    /// How the alarm-rollback function treats this function; absent: the stack's defaults.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollback: Option<RollbackPolicy>,
    /// The steps of a rollgate rollout (see [`rollout`]); absent: its defaults.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollout: Option<rollout::RolloutPolicy>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            version: POLICY_VERSION,
            pre_traffic: PreTrafficPolicy::default(),
            post_traffic: None,
            rollback: None,
            rollout: None,
        }
    }
}

/// Bake window bounds for `rollback.bake_minutes`, minutes (up to one week).
pub const ROLLBACK_BAKE_MINUTES: RangeInclusive<u64> = 0..=10_080;

/// What the alarm-rollback function may do for this function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicy {
    /// `false`: alarms are announced but never acted on for this function.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Minutes after a successful deployment during which an alarm rolls it back
    /// ([`ROLLBACK_BAKE_MINUTES`]); absent: the stack's default (`ROLLGATE_BAKE_MINUTES`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub bake_minutes: Option<u64>,
}

fn enabled_by_default() -> bool {
    true
}

/// What the BeforeAllowTraffic hook checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreTrafficPolicy {
    /// Overall gate budget in seconds ([`BUDGET_SECONDS`]).
    #[serde(default = "default_budget")]
    pub budget_seconds: u64,
    /// Smoke tests in flight at once ([`CONCURRENCY`]).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Guards on the target version's configuration.
    #[serde(default)]
    pub checks: ConfigGuards,
    /// Invocations of the target version and what their responses must look like.
    #[serde(default)]
    pub smoke_tests: Vec<SmokeTest>,
}

impl Default for PreTrafficPolicy {
    fn default() -> Self {
        PreTrafficPolicy {
            budget_seconds: DEFAULT_BUDGET_SECONDS,
            concurrency: DEFAULT_CONCURRENCY,
            checks: ConfigGuards::default(),
            smoke_tests: Vec::new(),
        }
    }
}

impl PreTrafficPolicy {
    /// [`PreTrafficPolicy::budget_seconds`] as a `Duration`.
    pub fn budget(&self) -> Duration {
        Duration::from_secs(self.budget_seconds)
    }
}

/// Configuration guards. Each guard that is set produces one `config.<guard>` check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigGuards {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub architecture: Option<Architecture>,
    /// Exact Lambda runtime identifier, e.g. `provided.al2023`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_mb: Option<Bounds>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_seconds: Option<Bounds>,
    /// Environment variable names the function must define (names only; values are never read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_env: Vec<String>,
}

/// The instruction set a function must be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    #[serde(rename = "arm64")]
    Arm64,
    #[serde(rename = "x86_64")]
    X86_64,
}

impl Architecture {
    /// The name Lambda uses (`arm64`, `x86_64`).
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }
}

/// Inclusive bounds; at least one of `min` and `max` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub min: Option<u32>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub max: Option<u32>,
}

impl Bounds {
    pub fn contains(&self, value: i64) -> bool {
        self.min.is_none_or(|m| value >= i64::from(m))
            && self.max.is_none_or(|m| value <= i64::from(m))
    }
}

/// One invocation of the target version and the expectations on its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeTest {
    /// Unique within the policy; `[A-Za-z0-9_.-]{1,64}`. Appears in check names.
    pub name: String,
    /// Event sent to the function. Defaults to `{}`.
    #[serde(default = "empty_object")]
    pub payload: Value,
    /// Extra attempts after the first when the invocation fails with a transient AWS error.
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub expect: Expect,
}

impl SmokeTest {
    /// A test with the default payload (`{}`), no retries and the default expectation
    /// (the invocation must not return a function error).
    pub fn new(name: impl Into<String>) -> Self {
        SmokeTest {
            name: name.into(),
            payload: empty_object(),
            retries: 0,
            expect: Expect::default(),
        }
    }

    /// The payload as the bytes to send to Lambda.
    pub fn payload_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.payload).expect("a JSON value always serializes")
    }
}

/// What a smoke test's response must look like. Every expectation produces one check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub function_error: FunctionErrorExpectation,
    /// The response must be JSON that contains this value (see `docs/policy.md`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub json_subset: Option<Value>,
    /// JSON pointer -> value that must be found there (subset semantics).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json_pointer: BTreeMap<String, Value>,
    /// The raw response body must match this regular expression.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub body_regex: Option<BodyRegex>,
    /// The invocation must take at most this many milliseconds.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_duration_ms: Option<u64>,
}

/// Whether a smoke test's invocation must, may or must not fail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FunctionErrorExpectation {
    /// `"none"` (default): the invocation must succeed.
    #[default]
    None,
    /// `"any"`: the invocation must fail, with any error.
    Any,
    /// Any other string: the invocation must fail with this `errorType`
    /// or `X-Amz-Function-Error` value (e.g. `ValidationError`, `Unhandled`).
    Type(String),
}

impl FunctionErrorExpectation {
    pub fn as_str(&self) -> &str {
        match self {
            FunctionErrorExpectation::None => "none",
            FunctionErrorExpectation::Any => "any",
            FunctionErrorExpectation::Type(t) => t,
        }
    }
}

impl TryFrom<String> for FunctionErrorExpectation {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "none" => Ok(FunctionErrorExpectation::None),
            "any" => Ok(FunctionErrorExpectation::Any),
            t if t.trim().is_empty() => {
                Err("must be \"none\", \"any\" or an error type, got an empty string".into())
            }
            t if t.len() > 256 => Err("error type is longer than 256 characters".into()),
            _ => Ok(FunctionErrorExpectation::Type(s)),
        }
    }
}

impl From<FunctionErrorExpectation> for String {
    fn from(e: FunctionErrorExpectation) -> String {
        e.as_str().to_string()
    }
}

/// A compiled, size-limited `body_regex`. Compares and serializes as its pattern.
#[derive(Debug, Clone)]
pub struct BodyRegex(Regex);

impl BodyRegex {
    /// Compiles `pattern` with rollgate's size limits.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.len() > MAX_REGEX_LEN {
            return Err(format!(
                "invalid regex: pattern is {} bytes, longer than {MAX_REGEX_LEN}",
                pattern.len()
            ));
        }
        RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(BodyRegex)
            .map_err(|e| format!("invalid regex: {}", one_line(&e.to_string())))
    }

    pub fn regex(&self) -> &Regex {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for BodyRegex {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for BodyRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BodyRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(d)?;
        BodyRegex::new(&pattern).map_err(serde::de::Error::custom)
    }
}

/// Regex errors come with a multi-line caret diagram; keep messages on one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Option` fields use this so an explicit `null` is rejected instead of meaning "unset".
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

fn default_version() -> u32 {
    POLICY_VERSION
}
fn default_budget() -> u64 {
    DEFAULT_BUDGET_SECONDS
}
fn default_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}
fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                size: text.len(),
                limit: MAX_POLICY_BYTES,
            });
        }
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let message = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            PolicyError::Syntax {
                message,
                line: e.line(),
                column: e.column(),
            }
        })?;
        // Check the version first: a newer document is more usefully rejected for its
        // version than for the fields this build does not know.
        if let Some(found) = doc.get("version").and_then(Value::as_u64)
            && found != u64::from(POLICY_VERSION)
        {
            return Err(PolicyError::UnsupportedVersion { found });
        }
        reject_arrays_for_sections(&doc)?;
        let policy: Policy = serde_path_to_error::deserialize(&doc).map_err(|e| {
            let path = e.path().to_string();
            PolicyError::Shape {
                // "." is the document itself; "" is an unknown top-level key that is
                // itself empty (`{"": 1}`), which would leave the error without a path.
                path: if path == "." || path.is_empty() {
                    "(document)".into()
                } else {
                    path
                },
                message: e.into_inner().to_string(),
            }
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the rules types cannot express. [`Policy::parse`] calls this; call it
    /// yourself for a policy built in code.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.version != POLICY_VERSION {
            return Err(PolicyError::UnsupportedVersion {
                found: u64::from(self.version),
            });
        }
        if let Some(post) = &self.post_traffic {
            post.validate()?;
        }
        if let Some(rollout) = &self.rollout {
            rollout.validate()?;
        }
        if let Some(bake) = self.rollback.as_ref().and_then(|r| r.bake_minutes) {
            in_range("rollback.bake_minutes", bake, &ROLLBACK_BAKE_MINUTES)?;
        }
        let pre = &self.pre_traffic;
        in_range(
            "pre_traffic.budget_seconds",
            pre.budget_seconds,
            &BUDGET_SECONDS,
        )?;
        in_range("pre_traffic.concurrency", pre.concurrency, &CONCURRENCY)?;
        validate_guards(&pre.checks)?;

        if pre.smoke_tests.len() > MAX_SMOKE_TESTS {
            return Err(PolicyError::invalid(
                "pre_traffic.smoke_tests",
                format!(
                    "at most {MAX_SMOKE_TESTS} smoke tests are allowed, got {}",
                    pre.smoke_tests.len()
                ),
            ));
        }
        let mut names = HashSet::new();
        for (i, test) in pre.smoke_tests.iter().enumerate() {
            let path = format!("pre_traffic.smoke_tests[{i}]");
            validate_smoke_test(&path, test)?;
            if !names.insert(test.name.as_str()) {
                return Err(PolicyError::invalid(
                    format!("{path}.name"),
                    format!("duplicate smoke test name {:?}", test.name),
                ));
            }
        }
        Ok(())
    }
}

/// Derived struct deserializers also accept a JSON array, filling fields by position;
/// a policy section written as an array is a mistake, so reject it before serde sees it.
fn reject_arrays_for_sections(doc: &Value) -> Result<(), PolicyError> {
    let mut sections: Vec<(String, &Value)> = vec![("(document)".into(), doc)];
    if let Some(post) = doc.get("post_traffic") {
        sections.extend(post_traffic::object_sections(post));
    }
    if let Some(rollback) = doc.get("rollback") {
        sections.push(("rollback".into(), rollback));
    }
    if let Some(rollout) = doc.get("rollout") {
        sections.push(("rollout".into(), rollout));
        if let Some(steps) = rollout.get("steps").and_then(Value::as_array) {
            for (i, step) in steps.iter().enumerate() {
                sections.push((format!("rollout.steps[{i}]"), step));
            }
        }
    }
    if let Some(pre) = doc.get("pre_traffic") {
        sections.push(("pre_traffic".into(), pre));
        if let Some(checks) = pre.get("checks") {
            sections.push(("pre_traffic.checks".into(), checks));
            for bounds in ["memory_mb", "timeout_seconds"] {
                if let Some(b) = checks.get(bounds) {
                    sections.push((format!("pre_traffic.checks.{bounds}"), b));
                }
            }
        }
        if let Some(tests) = pre.get("smoke_tests").and_then(Value::as_array) {
            for (i, test) in tests.iter().enumerate() {
                sections.push((format!("pre_traffic.smoke_tests[{i}]"), test));
                if let Some(expect) = test.get("expect") {
                    sections.push((format!("pre_traffic.smoke_tests[{i}].expect"), expect));
                }
            }
        }
    }
    match sections.into_iter().find(|(_, v)| v.is_array()) {
        Some((path, _)) => Err(PolicyError::Shape {
            path,
            message: "invalid type: array, expected an object".into(),
        }),
        None => Ok(()),
    }
}

fn in_range<T>(path: &str, value: T, range: &RangeInclusive<T>) -> Result<(), PolicyError>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        Ok(())
    } else {
        Err(PolicyError::invalid(
            path,
            format!(
                "must be between {} and {}, got {value}",
                range.start(),
                range.end()
            ),
        ))
    }
}

fn validate_bounds(
    path: &str,
    bounds: &Bounds,
    range: &RangeInclusive<u32>,
) -> Result<(), PolicyError> {
    if bounds.min.is_none() && bounds.max.is_none() {
        return Err(PolicyError::invalid(path, "set min, max or both"));
    }
    if let Some(min) = bounds.min {
        in_range(&format!("{path}.min"), min, range)?;
    }
    if let Some(max) = bounds.max {
        in_range(&format!("{path}.max"), max, range)?;
    }
    if let (Some(min), Some(max)) = (bounds.min, bounds.max)
        && min > max
    {
        return Err(PolicyError::invalid(
            path,
            format!("min ({min}) must not be greater than max ({max})"),
        ));
    }
    Ok(())
}

fn validate_guards(guards: &ConfigGuards) -> Result<(), PolicyError> {
    const BASE: &str = "pre_traffic.checks";
    if let Some(runtime) = &guards.runtime
        && (runtime.trim().is_empty() || runtime.len() > MAX_RUNTIME_LEN)
    {
        return Err(PolicyError::invalid(
            format!("{BASE}.runtime"),
            format!("must be a runtime identifier of 1-{MAX_RUNTIME_LEN} characters"),
        ));
    }
    if let Some(b) = &guards.memory_mb {
        validate_bounds(&format!("{BASE}.memory_mb"), b, &MEMORY_MB)?;
    }
    if let Some(b) = &guards.timeout_seconds {
        validate_bounds(&format!("{BASE}.timeout_seconds"), b, &TIMEOUT_SECONDS)?;
    }
    if guards.required_env.len() > MAX_REQUIRED_ENV {
        return Err(PolicyError::invalid(
            format!("{BASE}.required_env"),
            format!(
                "at most {MAX_REQUIRED_ENV} names are allowed, got {}",
                guards.required_env.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (i, key) in guards.required_env.iter().enumerate() {
        let path = format!("{BASE}.required_env[{i}]");
        if !is_env_name(key) {
            return Err(PolicyError::invalid(
                path,
                format!(
                    "{key:?} is not an environment variable name (a letter, then letters, digits or '_')"
                ),
            ));
        }
        if !seen.insert(key.as_str()) {
            return Err(PolicyError::invalid(
                path,
                format!("duplicate name {key:?}"),
            ));
        }
    }
    Ok(())
}

fn is_env_name(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && key.len() <= 128
}

/// `[A-Za-z0-9_.-]{1,64}`.
pub fn is_valid_smoke_test_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SMOKE_TEST_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A JSON pointer (RFC 6901): empty, or `/`-separated tokens where `~` only appears as `~0` or `~1`.
pub fn is_valid_json_pointer(pointer: &str) -> bool {
    if pointer.is_empty() {
        return true;
    }
    if !pointer.starts_with('/') {
        return false;
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

fn validate_smoke_test(path: &str, test: &SmokeTest) -> Result<(), PolicyError> {
    if !is_valid_smoke_test_name(&test.name) {
        return Err(PolicyError::invalid(
            format!("{path}.name"),
            format!(
                "{:?} must be 1-{MAX_SMOKE_TEST_NAME_LEN} characters of letters, digits, '_', '.' or '-'",
                test.name
            ),
        ));
    }
    in_range(&format!("{path}.retries"), test.retries, &RETRIES)?;
    let payload_len = test.payload_bytes().len();
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(PolicyError::invalid(
            format!("{path}.payload"),
            format!("is {payload_len} bytes serialized, larger than {MAX_PAYLOAD_BYTES}"),
        ));
    }
    let expect = &test.expect;
    for pointer in expect.json_pointer.keys() {
        if !is_valid_json_pointer(pointer) {
            return Err(PolicyError::invalid(
                format!("{path}.expect.json_pointer"),
                format!(
                    "{pointer:?} is not a JSON pointer (it must be empty or start with '/', and '~' must be followed by 0 or 1)"
                ),
            ));
        }
    }
    if let Some(ms) = expect.max_duration_ms {
        in_range(
            &format!("{path}.expect.max_duration_ms"),
            ms,
            &MAX_DURATION_MS,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> String {
        Policy::parse(text).unwrap_err().to_string()
    }

    /// A policy with one smoke test whose body is `test` merged into a named test.
    fn with_test(test: Value) -> String {
        let mut t = json!({"name": "health"});
        t.as_object_mut()
            .unwrap()
            .extend(test.as_object().unwrap().clone());
        json!({"pre_traffic": {"smoke_tests": [t]}}).to_string()
    }

    fn with_checks(checks: Value) -> String {
        json!({"pre_traffic": {"checks": checks}}).to_string()
    }

    #[test]
    fn empty_document_is_the_default_policy() {
        let p = Policy::parse("{}").unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(p.version, 1);
        assert_eq!(p.pre_traffic.budget_seconds, 120);
        assert_eq!(p.pre_traffic.budget(), Duration::from_secs(120));
        assert_eq!(p.pre_traffic.concurrency, 10);
        assert_eq!(p.pre_traffic.checks, ConfigGuards::default());
        assert!(p.pre_traffic.smoke_tests.is_empty());
        assert!(p.post_traffic.is_none());
        assert_eq!(
            Policy::parse(r#"{"version": 1, "pre_traffic": {}}"#).unwrap(),
            p
        );
    }

    #[test]
    fn parses_a_full_policy() {
        let text = json!({
            "version": 1,
            "pre_traffic": {
                "budget_seconds": 300,
                "concurrency": 8,
                "checks": {
                    "architecture": "arm64",
                    "runtime": "provided.al2023",
                    "memory_mb": {"min": 128, "max": 1024},
                    "timeout_seconds": {"max": 30},
                    "required_env": ["TABLE_NAME", "QUEUE_URL"]
                },
                "smoke_tests": [
                    {"name": "health", "payload": {"path": "/health"}, "retries": 2,
                     "expect": {"json_subset": {"ok": true}, "json_pointer": {"/statusCode": 200},
                                "body_regex": "ok", "max_duration_ms": 1000}},
                    {"name": "bad-input", "expect": {"function_error": "ValidationError"}},
                    {"name": "boom.any", "expect": {"function_error": "any"}}
                ]
            },
            "post_traffic": {"alarms": ["x"]}
        })
        .to_string();
        let p = Policy::parse(&text).unwrap();
        let pre = &p.pre_traffic;
        assert_eq!(pre.checks.architecture, Some(Architecture::Arm64));
        assert_eq!(pre.checks.runtime.as_deref(), Some("provided.al2023"));
        assert_eq!(
            pre.checks.memory_mb,
            Some(Bounds {
                min: Some(128),
                max: Some(1024)
            })
        );
        assert_eq!(
            pre.checks.timeout_seconds,
            Some(Bounds {
                min: None,
                max: Some(30)
            })
        );
        let health = &pre.smoke_tests[0];
        assert_eq!(health.retries, 2);
        assert_eq!(health.payload, json!({"path": "/health"}));
        assert_eq!(health.expect.function_error, FunctionErrorExpectation::None);
        assert!(
            health
                .expect
                .body_regex
                .as_ref()
                .unwrap()
                .regex()
                .is_match("all ok")
        );
        assert_eq!(health.expect.json_pointer["/statusCode"], json!(200));
        assert_eq!(
            pre.smoke_tests[1].expect.function_error,
            FunctionErrorExpectation::Type("ValidationError".into())
        );
        assert_eq!(pre.smoke_tests[1].payload, json!({}));
        assert_eq!(
            pre.smoke_tests[2].expect.function_error,
            FunctionErrorExpectation::Any
        );
        assert_eq!(
            p.post_traffic.as_ref().unwrap().alarms,
            vec!["x".to_owned()]
        );

        // Serializing and parsing again gives the same policy.
        let again = Policy::parse(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn version_must_be_1() {
        assert_eq!(
            err(r#"{"version": 2}"#),
            "version: unsupported policy version 2 (this rollgate understands 1)"
        );
        assert_eq!(
            err(r#"{"version": 0}"#),
            "version: unsupported policy version 0 (this rollgate understands 1)"
        );
        // The version is reported even when the newer document has fields we do not know.
        assert_eq!(
            err(r#"{"version": 3, "canary": {}}"#),
            "version: unsupported policy version 3 (this rollgate understands 1)"
        );
        assert!(err(r#"{"version": "1"}"#).starts_with("version: invalid type: string"));
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let msg = err(r#"{"pre_trafic": {}}"#);
        assert!(msg.contains("unknown field `pre_trafic`"), "{msg}");
        let msg = err(&with_checks(json!({"memory": {"min": 128}})));
        assert!(msg.starts_with("pre_traffic.checks"), "{msg}");
        assert!(msg.contains("unknown field `memory`"), "{msg}");
        let msg = err(&with_test(json!({"expect": {"status": 200}})));
        assert!(
            msg.starts_with("pre_traffic.smoke_tests[0].expect"),
            "{msg}"
        );
        assert!(msg.contains("unknown field `status`"), "{msg}");
        let msg = err(&with_checks(json!({"memory_mb": {"min": 128, "mx": 2}})));
        assert!(msg.starts_with("pre_traffic.checks.memory_mb"), "{msg}");
    }

    #[test]
    fn wrong_types_are_named() {
        let msg = err(r#"{"pre_traffic": {"concurrency": "4"}}"#);
        assert!(
            msg.starts_with("pre_traffic.concurrency: invalid type: string"),
            "{msg}"
        );
        let msg = err(r#"{"pre_traffic": {"budget_seconds": -1}}"#);
        assert!(
            msg.starts_with("pre_traffic.budget_seconds: invalid value"),
            "{msg}"
        );
        let msg = err(&with_checks(json!({"architecture": "amd64"})));
        assert!(
            msg.starts_with("pre_traffic.checks.architecture: unknown variant `amd64`"),
            "{msg}"
        );
        let msg = err(&with_checks(json!({"runtime": null})));
        assert!(
            msg.starts_with("pre_traffic.checks.runtime: invalid type: null"),
            "{msg}"
        );
        let msg = err(r#"{"pre_traffic": {"smoke_tests": [{"payload": {}}]}}"#);
        assert!(
            msg.starts_with("pre_traffic.smoke_tests[0]: missing field `name`"),
            "{msg}"
        );
        assert_eq!(
            err("[]"),
            "(document): invalid type: array, expected an object"
        );
        assert!(err("3").starts_with("(document): invalid type: integer `3`"));
        for (doc, path) in [
            (json!({"pre_traffic": [300, 4]}), "pre_traffic"),
            (json!({"pre_traffic": {"checks": []}}), "pre_traffic.checks"),
            (
                json!({"pre_traffic": {"checks": {"memory_mb": [128, 256]}}}),
                "pre_traffic.checks.memory_mb",
            ),
            (
                json!({"pre_traffic": {"checks": {"timeout_seconds": [1]}}}),
                "pre_traffic.checks.timeout_seconds",
            ),
            (
                json!({"pre_traffic": {"smoke_tests": [["a"]]}}),
                "pre_traffic.smoke_tests[0]",
            ),
            (
                json!({"pre_traffic": {"smoke_tests": [{"name": "a", "expect": []}]}}),
                "pre_traffic.smoke_tests[0].expect",
            ),
        ] {
            assert_eq!(
                err(&doc.to_string()),
                format!("{path}: invalid type: array, expected an object")
            );
        }
    }

    #[test]
    fn syntax_errors_give_the_position() {
        assert_eq!(
            Policy::parse("{\n  \"version\": 1,\n}").unwrap_err(),
            PolicyError::Syntax {
                message: "trailing comma".into(),
                line: 3,
                column: 1
            }
        );
        assert!(err("").starts_with("(document): invalid JSON at line 1, column 0"));
    }

    #[test]
    fn an_empty_unknown_key_still_names_a_path() {
        // Found by the `policy` fuzz target: the path of `{"": ...}` was empty, so the
        // message started with ": " instead of the field path.
        let e = Policy::parse(r#"{"version": 1, "": {}}"#).unwrap_err();
        assert_eq!(e.path(), "(document)");
        assert!(
            e.to_string().starts_with("(document): unknown field ``"),
            "{e}"
        );
    }

    #[test]
    fn document_size_is_capped() {
        let big = format!(
            r#"{{"post_traffic": {{"pad": "{}"}}}}"#,
            "x".repeat(MAX_POLICY_BYTES)
        );
        let e = Policy::parse(&big).unwrap_err();
        assert!(matches!(e, PolicyError::TooLarge { .. }));
        assert!(e.to_string().starts_with("(document): policy is "));
        assert_eq!(e.path(), "(document)");
    }

    #[test]
    fn budget_and_concurrency_ranges() {
        assert_eq!(
            err(r#"{"pre_traffic": {"concurrency": 0}}"#),
            "pre_traffic.concurrency: must be between 1 and 32, got 0"
        );
        assert_eq!(
            err(r#"{"pre_traffic": {"concurrency": 33}}"#),
            "pre_traffic.concurrency: must be between 1 and 32, got 33"
        );
        assert_eq!(
            err(r#"{"pre_traffic": {"budget_seconds": 0}}"#),
            "pre_traffic.budget_seconds: must be between 1 and 840, got 0"
        );
        assert_eq!(
            err(r#"{"pre_traffic": {"budget_seconds": 841}}"#),
            "pre_traffic.budget_seconds: must be between 1 and 840, got 841"
        );
        assert!(
            Policy::parse(r#"{"pre_traffic": {"budget_seconds": 840, "concurrency": 32}}"#).is_ok()
        );
        assert!(
            Policy::parse(r#"{"pre_traffic": {"budget_seconds": 1, "concurrency": 1}}"#).is_ok()
        );
    }

    #[test]
    fn bounds_rules() {
        assert_eq!(
            err(&with_checks(
                json!({"memory_mb": {"min": 2048, "max": 1024}})
            )),
            "pre_traffic.checks.memory_mb: min (2048) must not be greater than max (1024)"
        );
        assert_eq!(
            err(&with_checks(json!({"memory_mb": {"min": 64}}))),
            "pre_traffic.checks.memory_mb.min: must be between 128 and 10240, got 64"
        );
        assert_eq!(
            err(&with_checks(json!({"timeout_seconds": {"max": 901}}))),
            "pre_traffic.checks.timeout_seconds.max: must be between 1 and 900, got 901"
        );
        assert_eq!(
            err(&with_checks(json!({"timeout_seconds": {}}))),
            "pre_traffic.checks.timeout_seconds: set min, max or both"
        );
        let b = Bounds {
            min: Some(128),
            max: None,
        };
        assert!(b.contains(128) && b.contains(4096) && !b.contains(127));
    }

    #[test]
    fn runtime_and_required_env_rules() {
        assert!(
            err(&with_checks(json!({"runtime": " "}))).starts_with("pre_traffic.checks.runtime: ")
        );
        assert!(
            err(&with_checks(json!({"required_env": ["OK", "1BAD"]}))).starts_with(
                "pre_traffic.checks.required_env[1]: \"1BAD\" is not an environment variable name"
            )
        );
        assert!(
            err(&with_checks(json!({"required_env": [""]})))
                .starts_with("pre_traffic.checks.required_env[0]: ")
        );
        assert_eq!(
            err(&with_checks(json!({"required_env": ["A", "A"]}))),
            "pre_traffic.checks.required_env[1]: duplicate name \"A\""
        );
        let many: Vec<String> = (0..=MAX_REQUIRED_ENV).map(|i| format!("K{i}")).collect();
        assert!(
            err(&with_checks(json!({"required_env": many})))
                .starts_with("pre_traffic.checks.required_env: at most")
        );
    }

    #[test]
    fn smoke_test_names() {
        for bad in ["", "has space", "ünï", "a/b", &"x".repeat(65)] {
            let msg = err(&with_test(json!({"name": bad})));
            assert!(
                msg.starts_with("pre_traffic.smoke_tests[0].name: "),
                "{bad}: {msg}"
            );
        }
        assert!(Policy::parse(&with_test(json!({"name": "A-z_0.9"}))).is_ok());
        assert!(Policy::parse(&with_test(json!({"name": "x".repeat(64)}))).is_ok());
        let dup =
            json!({"pre_traffic": {"smoke_tests": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}});
        assert_eq!(
            err(&dup.to_string()),
            "pre_traffic.smoke_tests[2].name: duplicate smoke test name \"a\""
        );
    }

    #[test]
    fn smoke_test_count_is_capped() {
        let tests: Vec<Value> = (0..=MAX_SMOKE_TESTS)
            .map(|i| json!({"name": format!("t{i}")}))
            .collect();
        let msg = err(&json!({"pre_traffic": {"smoke_tests": tests}}).to_string());
        assert_eq!(
            msg,
            "pre_traffic.smoke_tests: at most 50 smoke tests are allowed, got 51"
        );
    }

    #[test]
    fn retries_range() {
        assert_eq!(
            err(&with_test(json!({"retries": 6}))),
            "pre_traffic.smoke_tests[0].retries: must be between 0 and 5, got 6"
        );
        assert!(Policy::parse(&with_test(json!({"retries": 5}))).is_ok());
    }

    #[test]
    fn body_regex_must_compile_within_limits() {
        let msg = err(&with_test(json!({"expect": {"body_regex": "("}})));
        assert!(
            msg.starts_with("pre_traffic.smoke_tests[0].expect.body_regex: invalid regex: "),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
        let msg = err(&with_test(
            json!({"expect": {"body_regex": "(?:\\w{1000}){1000}"}}),
        ));
        assert!(
            msg.starts_with("pre_traffic.smoke_tests[0].expect.body_regex: invalid regex: "),
            "{msg}"
        );
        let msg = err(&with_test(
            json!({"expect": {"body_regex": "a".repeat(MAX_REGEX_LEN + 1)}}),
        ));
        assert!(
            msg.starts_with(
                "pre_traffic.smoke_tests[0].expect.body_regex: invalid regex: pattern is"
            ),
            "{msg}"
        );
        // No Unicode classes: refused when parsed, not at the first smoke test.
        let msg = err(&with_test(json!({"expect": {"body_regex": "\\p{L}+"}})));
        assert!(msg.contains("invalid regex: "), "{msg}");
        // Case folding and classes are ASCII; `u` is accepted and changes nothing.
        for pattern in ["(?i)all OK", "(?i-u)all OK"] {
            let re = BodyRegex::new(pattern).unwrap();
            assert!(re.regex().is_match("\"status\": \"All ok\""), "{pattern}");
        }
        assert!(!BodyRegex::new("^\\w+$").unwrap().regex().is_match("café"));
        // Second test: the index in the path follows the test.
        let two = json!({"pre_traffic": {"smoke_tests": [{"name": "a"}, {"name": "b", "expect": {"body_regex": "[z-a]"}}]}});
        assert!(
            err(&two.to_string())
                .starts_with("pre_traffic.smoke_tests[1].expect.body_regex: invalid regex: ")
        );
    }

    #[test]
    fn json_pointer_keys_must_be_pointers() {
        for bad in ["statusCode", "/a~2", "/a~"] {
            let msg = err(&with_test(json!({"expect": {"json_pointer": {bad: 1}}})));
            assert!(
                msg.starts_with("pre_traffic.smoke_tests[0].expect.json_pointer: "),
                "{bad}: {msg}"
            );
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
        assert!(
            Policy::parse(&with_test(
                json!({"expect": {"json_pointer": {"": {}, "/a~0b/~1c/0": null}}})
            ))
            .is_ok()
        );
    }

    #[test]
    fn function_error_values() {
        let msg = err(&with_test(json!({"expect": {"function_error": ""}})));
        assert!(
            msg.starts_with("pre_traffic.smoke_tests[0].expect.function_error: "),
            "{msg}"
        );
        let msg = err(&with_test(json!({"expect": {"function_error": true}})));
        assert!(
            msg.starts_with("pre_traffic.smoke_tests[0].expect.function_error: invalid type"),
            "{msg}"
        );
    }

    #[test]
    fn max_duration_range() {
        assert_eq!(
            err(&with_test(json!({"expect": {"max_duration_ms": 0}}))),
            "pre_traffic.smoke_tests[0].expect.max_duration_ms: must be between 1 and 900000, got 0"
        );
    }

    #[test]
    fn payload_size_is_capped() {
        let mut test = SmokeTest::new("big");
        test.payload = json!({"pad": "x".repeat(MAX_PAYLOAD_BYTES)});
        let mut policy = Policy::default();
        policy.pre_traffic.smoke_tests.push(test);
        let msg = policy.validate().unwrap_err().to_string();
        assert!(
            msg.starts_with("pre_traffic.smoke_tests[0].payload: is "),
            "{msg}"
        );
    }

    #[test]
    fn post_traffic_must_be_an_object() {
        assert_eq!(
            err(r#"{"post_traffic": []}"#),
            "post_traffic: invalid type: array, expected an object"
        );
        assert!(
            err(r#"{"post_traffic": null}"#).starts_with("post_traffic: invalid type: null"),
            "{}",
            err(r#"{"post_traffic": null}"#)
        );
    }

    #[test]
    fn every_example_policy_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policies");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = Policy::parse(&text) {
                panic!("{}: {e}", path.display());
            }
            seen += 1;
        }
        assert!(
            seen >= 3,
            "expected the example policies in {dir}, found {seen}"
        );
    }
}
