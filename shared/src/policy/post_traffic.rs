//! The `post_traffic` section of a gate policy: what the AfterAllowTraffic hook measures
//! and the limits it holds the new version to. Same rules as the rest of the policy:
//! unknown fields are rejected and every error starts with the field's path.

use super::{PolicyError, in_range, is_valid_smoke_test_name as is_name, present};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;

/// Bake length, minutes. Together with `max_extend_minutes` it stays within
/// [`MAX_TOTAL_MINUTES`], so the hook reports well before CodeDeploy's one-hour limit.
pub const BAKE_MINUTES: RangeInclusive<f64> = 0.0..=45.0;
pub const MAX_TOTAL_MINUTES: f64 = 45.0;
pub const POLL_SECONDS: RangeInclusive<u64> = 1..=300;
pub const MAX_PERIOD_SECONDS: u32 = 3600;
pub const ALPHA: RangeInclusive<f64> = 0.0001..=0.5;
/// How long CloudWatch may take to have a period's Lambda metrics, seconds.
pub const INGESTION_DELAY_SECONDS: RangeInclusive<u64> = 0..=600;
/// The new version's first seconds left out of the canary window (cold starts).
pub const WARMUP_SECONDS: RangeInclusive<u64> = 0..=1800;
pub const MAX_ALARMS: usize = 100;
pub const MAX_METRICS: usize = 20;
pub const MAX_DIMENSIONS: usize = 30;
pub const MAX_PROBES: usize = 10;
/// Requests per probe per polling round.
pub const PROBE_COUNT: RangeInclusive<u32> = 1..=20;
pub const PROBE_TIMEOUT_MS: RangeInclusive<u64> = 100..=30_000;

/// What to do when the bake window saw fewer than `min_invocations` invocations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNoData {
    /// Fail the deployment: a release nobody used was not shown to work.
    Fail,
    /// Pass it, saying so in the decision record (the default: idle functions deploy).
    #[default]
    Pass,
    /// Keep baking, `poll_seconds` at a time, up to `max_extend_minutes`; then fail.
    Extend,
}

/// The AfterAllowTraffic hook's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostTrafficPolicy {
    /// Minutes to watch the new version after the full shift (fractions allowed).
    #[serde(default = "default_bake_minutes")]
    pub bake_minutes: f64,
    /// Seconds between polling rounds during the bake.
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// CloudWatch period of every query: 1, 5, 10, 30 or a multiple of 60 seconds.
    #[serde(default = "default_period_seconds")]
    pub period_seconds: u32,
    /// Invocations of the new version the bake window must see to count as traffic.
    #[serde(default = "default_min_invocations")]
    pub min_invocations: u64,
    #[serde(default)]
    pub on_no_data: OnNoData,
    /// Cap on the extension `on_no_data: "extend"` may add to the bake.
    #[serde(default = "default_extend_minutes")]
    pub max_extend_minutes: f64,
    /// Significance level of every judgement (one-sided, each way): Fail when the data
    /// show the new version beyond a limit at this level, Pass when they show it within.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// A period counts once it ended this long ago: CloudWatch takes about a minute to
    /// have Lambda's metrics of a period, and a period read too early looks quiet.
    #[serde(default = "default_ingestion_delay")]
    pub ingestion_delay_seconds: u64,
    #[serde(default)]
    pub canary: Canary,
    #[serde(default)]
    pub bake: Bake,
    /// CloudWatch alarms that must not be in ALARM (nor missing) during the bake.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// Custom metrics judged on the bake window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<CustomMetric>,
    /// HTTP probes sent every polling round of the bake, for functions behind a URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<HttpProbe>,
}

/// Requests to the function's public endpoint during the bake, judged on status and
/// latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// Unique, `[A-Za-z0-9_.-]{1,64}`; appears as `probe[<name>]`.
    pub name: String,
    /// `http://` or `https://` URL.
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Statuses that count as success.
    #[serde(default = "default_expect_status")]
    pub expect_status: Vec<u16>,
    /// A slower answer counts as a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<u64>,
    /// Requests per polling round.
    #[serde(default = "default_probe_count")]
    pub count: u32,
    /// Give up on one request after this long (a failure).
    #[serde(default = "default_probe_timeout")]
    pub timeout_ms: u64,
    /// Share of failed requests tolerated over the whole bake (0 = none).
    #[serde(default)]
    pub max_failure_rate: f64,
}

impl Default for PostTrafficPolicy {
    fn default() -> Self {
        PostTrafficPolicy {
            bake_minutes: default_bake_minutes(),
            poll_seconds: default_poll_seconds(),
            period_seconds: default_period_seconds(),
            min_invocations: default_min_invocations(),
            on_no_data: OnNoData::default(),
            max_extend_minutes: default_extend_minutes(),
            alpha: default_alpha(),
            ingestion_delay_seconds: default_ingestion_delay(),
            canary: Canary::default(),
            bake: Bake::default(),
            alarms: Vec::new(),
            metrics: Vec::new(),
            probes: Vec::new(),
        }
    }
}

/// Tolerances of the new-versus-old comparison over the canary window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// The new error rate may be at most `max_error_rate_ratio` times the old one plus
    /// `max_error_rate_increase` (an absolute share: 0.0005 = 0.05 percentage points).
    #[serde(default = "default_error_ratio")]
    pub max_error_rate_ratio: f64,
    #[serde(default = "default_error_increase")]
    pub max_error_rate_increase: f64,
    /// The new version's requests, their latency divided by `1 + pct/100`, may not be
    /// slower than the old version's (judged on request counts per latency bin).
    #[serde(default = "default_latency_increase")]
    pub max_latency_increase_pct: f64,
    /// Invocations each version needs in the canary window before it is compared at all.
    #[serde(default = "default_canary_invocations")]
    pub min_invocations: u64,
    /// Periods with data each version needs in the canary window.
    #[serde(default = "default_min_periods")]
    pub min_periods: usize,
    /// The new version's first seconds after the deployment started are left out of the
    /// canary window: its cold starts land there.
    #[serde(default = "default_warmup")]
    pub warmup_seconds: u64,
}

impl Default for Canary {
    fn default() -> Self {
        Canary {
            max_error_rate_ratio: default_error_ratio(),
            max_error_rate_increase: default_error_increase(),
            max_latency_increase_pct: default_latency_increase(),
            min_invocations: default_canary_invocations(),
            min_periods: default_min_periods(),
            warmup_seconds: default_warmup(),
        }
    }
}

/// Absolute limits on the new version over the bake window. Unset limits are not checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bake {
    #[serde(
        default = "default_max_error_rate",
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_error_rate: Option<f64>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_p99_ms: Option<f64>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_throttles: Option<u64>,
}

impl Default for Bake {
    fn default() -> Self {
        Bake {
            max_error_rate: default_max_error_rate(),
            max_p99_ms: None,
            max_throttles: None,
        }
    }
}

/// A metric of the function's own (or any) namespace with the condition that fails it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomMetric {
    /// Unique, `[A-Za-z0-9_.-]{1,64}`; appears as `metric[<name>]`.
    pub name: String,
    pub namespace: String,
    pub metric_name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    /// `Sum`, `Average`, `Minimum`, `Maximum`, `SampleCount` or a percentile `p0`-`p100`.
    pub statistic: String,
    /// The condition that FAILS the check, as CloudWatch alarms spell it.
    pub comparison: Comparison,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    GreaterThanThreshold,
    GreaterThanOrEqualToThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }
}

fn default_method() -> String {
    "GET".into()
}
fn default_expect_status() -> Vec<u16> {
    vec![200]
}
fn default_probe_count() -> u32 {
    1
}
fn default_probe_timeout() -> u64 {
    5000
}
fn default_bake_minutes() -> f64 {
    5.0
}
fn default_poll_seconds() -> u64 {
    60
}
fn default_period_seconds() -> u32 {
    60
}
fn default_min_invocations() -> u64 {
    10
}
fn default_extend_minutes() -> f64 {
    10.0
}
fn default_alpha() -> f64 {
    0.05
}
fn default_error_increase() -> f64 {
    0.0005
}
fn default_error_ratio() -> f64 {
    1.5
}
fn default_ingestion_delay() -> u64 {
    60
}
fn default_warmup() -> u64 {
    60
}
fn default_latency_increase() -> f64 {
    20.0
}
fn default_canary_invocations() -> u64 {
    20
}
fn default_min_periods() -> usize {
    2
}
fn default_max_error_rate() -> Option<f64> {
    Some(0.05)
}

fn in_range_f(path: &str, value: f64, range: &RangeInclusive<f64>) -> Result<(), PolicyError> {
    if value.is_finite() && range.contains(&value) {
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

/// CloudWatch accepts these periods (1-30 s only for high-resolution metrics).
pub fn is_valid_period(seconds: u32) -> bool {
    matches!(seconds, 1 | 5 | 10 | 30)
        || (seconds >= 60 && seconds.is_multiple_of(60) && seconds <= MAX_PERIOD_SECONDS)
}

pub fn is_valid_statistic(stat: &str) -> bool {
    matches!(
        stat,
        "Sum" | "Average" | "Minimum" | "Maximum" | "SampleCount"
    ) || stat.strip_prefix('p').is_some_and(|p| {
        // Plain decimals only, as CloudWatch writes them (`p99`, `p99.9`, `p100`); the
        // same rule as the schema's pattern.
        let (int, frac) = p.split_once('.').unwrap_or((p, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        digits(int)
            && digits(frac)
            && (int.len() <= 2 || int == "100")
            && p.parse::<f64>().is_ok_and(|v| (0.0..=100.0).contains(&v))
    })
}

fn at_most(path: &str, what: &str, len: usize, max: usize) -> Result<(), PolicyError> {
    if len > max {
        return Err(PolicyError::invalid(
            path,
            format!("at most {max} {what}, got {len}"),
        ));
    }
    Ok(())
}

/// `<path>.name` is a valid name and the first of its kind with it.
fn unique_name<'a>(
    path: &str,
    kind: &str,
    name: &'a str,
    seen: &mut HashSet<&'a str>,
) -> Result<(), PolicyError> {
    if !is_name(name) {
        return Err(PolicyError::invalid(
            format!("{path}.name"),
            format!("{name:?} must be 1-64 characters of letters, digits, '_', '.' or '-'"),
        ));
    }
    if !seen.insert(name) {
        return Err(PolicyError::invalid(
            format!("{path}.name"),
            format!("duplicate {kind} name {name:?}"),
        ));
    }
    Ok(())
}

/// JSON shapes inside `post_traffic` that must be objects (checked before serde, which
/// would accept an array for a struct).
pub fn object_sections(post: &serde_json::Value) -> Vec<(String, &serde_json::Value)> {
    let mut out = vec![("post_traffic".to_owned(), post)];
    for key in ["canary", "bake"] {
        if let Some(v) = post.get(key) {
            out.push((format!("post_traffic.{key}"), v));
        }
    }
    for list in ["metrics", "probes"] {
        if let Some(items) = post.get(list).and_then(|m| m.as_array()) {
            for (i, m) in items.iter().enumerate() {
                out.push((format!("post_traffic.{list}[{i}]"), m));
            }
        }
    }
    out
}

impl HttpProbe {
    /// URL, method and headers: a request that can be sent.
    fn validate_request(&self, path: &str) -> Result<(), PolicyError> {
        let p = self;
        let scheme_ok = ["http://", "https://"].iter().any(|s| {
            p.url.len() > s.len()
                && p.url
                    .get(..s.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(s))
        });
        if !scheme_ok || p.url.len() > 2048 || p.url.chars().any(char::is_whitespace) {
            return Err(PolicyError::invalid(
                format!("{path}.url"),
                format!(
                    "{:?} must be an http:// or https:// URL without spaces, at most 2048 characters",
                    p.url
                ),
            ));
        }
        if !matches!(
            p.method.as_str(),
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"
        ) {
            return Err(PolicyError::invalid(
                format!("{path}.method"),
                format!(
                    "{:?} is not GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS",
                    p.method
                ),
            ));
        }
        for name in p.headers.keys() {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(PolicyError::invalid(
                    format!("{path}.headers"),
                    format!("{name:?} is not a valid header name"),
                ));
            }
        }
        if let Some((name, _)) = p
            .headers
            .iter()
            .find(|(_, v)| v.bytes().any(|b| b == b'\r' || b == b'\n'))
        {
            return Err(PolicyError::invalid(
                format!("{path}.headers.{name}"),
                "must not contain line breaks",
            ));
        }
        if p.expect_status.is_empty() || p.expect_status.iter().any(|s| !(100..=599).contains(s)) {
            return Err(PolicyError::invalid(
                format!("{path}.expect_status"),
                format!("must list HTTP statuses 100-599, got {:?}", p.expect_status),
            ));
        }
        Ok(())
    }

    /// Statuses, counts, timeouts and tolerated failures.
    fn validate_expectations(&self, path: &str) -> Result<(), PolicyError> {
        let p = self;
        in_range(&format!("{path}.count"), p.count, &PROBE_COUNT)?;
        in_range(
            &format!("{path}.timeout_ms"),
            p.timeout_ms,
            &PROBE_TIMEOUT_MS,
        )?;
        if let Some(ms) = p.max_latency_ms
            && !(1..=p.timeout_ms).contains(&ms)
        {
            return Err(PolicyError::invalid(
                format!("{path}.max_latency_ms"),
                format!(
                    "must be between 1 and timeout_ms ({}), got {ms}",
                    p.timeout_ms
                ),
            ));
        }
        in_range_f(
            &format!("{path}.max_failure_rate"),
            p.max_failure_rate,
            &(0.0..=1.0),
        )?;
        Ok(())
    }
}

impl PostTrafficPolicy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.validate_timing()?;
        self.validate_limits()?;
        self.validate_alarms()?;
        self.validate_metrics()?;
        self.validate_probes()
    }

    /// The bake's length, extension, polling and period, and the significance level.
    fn validate_timing(&self) -> Result<(), PolicyError> {
        const B: &str = "post_traffic";
        in_range_f(
            &format!("{B}.bake_minutes"),
            self.bake_minutes,
            &BAKE_MINUTES,
        )?;
        in_range_f(
            &format!("{B}.max_extend_minutes"),
            self.max_extend_minutes,
            &(0.0..=MAX_TOTAL_MINUTES),
        )?;
        let total = self.bake_minutes
            + self.max_extend_minutes
            + self.ingestion_delay_seconds as f64 / 60.0;
        if total > MAX_TOTAL_MINUTES {
            return Err(PolicyError::invalid(
                format!("{B}.max_extend_minutes"),
                format!(
                    "bake_minutes + max_extend_minutes + ingestion_delay_seconds / 60 must be at most {MAX_TOTAL_MINUTES} (the hook must report well within CodeDeploy's hour), got {total}"
                ),
            ));
        }
        in_range(
            &format!("{B}.poll_seconds"),
            self.poll_seconds,
            &POLL_SECONDS,
        )?;
        if !is_valid_period(self.period_seconds) {
            return Err(PolicyError::invalid(
                format!("{B}.period_seconds"),
                format!(
                    "must be 1, 5, 10, 30 or a multiple of 60 up to {MAX_PERIOD_SECONDS}, got {}",
                    self.period_seconds
                ),
            ));
        }
        in_range(
            &format!("{B}.ingestion_delay_seconds"),
            self.ingestion_delay_seconds,
            &INGESTION_DELAY_SECONDS,
        )?;
        in_range(
            &format!("{B}.canary.warmup_seconds"),
            self.canary.warmup_seconds,
            &WARMUP_SECONDS,
        )?;
        in_range_f(&format!("{B}.alpha"), self.alpha, &ALPHA)
    }

    /// The canary's tolerances and the bake's absolute limits.
    fn validate_limits(&self) -> Result<(), PolicyError> {
        const B: &str = "post_traffic";
        let c = &self.canary;
        in_range_f(
            &format!("{B}.canary.max_error_rate_increase"),
            c.max_error_rate_increase,
            &(0.0..=1.0),
        )?;
        in_range_f(
            &format!("{B}.canary.max_error_rate_ratio"),
            c.max_error_rate_ratio,
            &(1.0..=1000.0),
        )?;
        in_range_f(
            &format!("{B}.canary.max_latency_increase_pct"),
            c.max_latency_increase_pct,
            &(0.0..=1000.0),
        )?;
        if !(1..=1000).contains(&c.min_periods) {
            return Err(PolicyError::invalid(
                format!("{B}.canary.min_periods"),
                format!("must be between 1 and 1000, got {}", c.min_periods),
            ));
        }
        if let Some(rate) = self.bake.max_error_rate {
            in_range_f(&format!("{B}.bake.max_error_rate"), rate, &(0.0..=1.0))?;
        }
        if let Some(ms) = self.bake.max_p99_ms {
            in_range_f(&format!("{B}.bake.max_p99_ms"), ms, &(1.0..=900_000.0))?;
        }
        Ok(())
    }

    fn validate_alarms(&self) -> Result<(), PolicyError> {
        const B: &str = "post_traffic";
        if self.alarms.len() > MAX_ALARMS {
            return Err(PolicyError::invalid(
                format!("{B}.alarms"),
                format!("at most {MAX_ALARMS} alarms, got {}", self.alarms.len()),
            ));
        }
        let mut seen = HashSet::new();
        for (i, alarm) in self.alarms.iter().enumerate() {
            if alarm.trim().is_empty() || alarm.len() > 255 {
                return Err(PolicyError::invalid(
                    format!("{B}.alarms[{i}]"),
                    "must be an alarm name of 1-255 characters",
                ));
            }
            if !seen.insert(alarm) {
                return Err(PolicyError::invalid(
                    format!("{B}.alarms[{i}]"),
                    format!("duplicate alarm {alarm:?}"),
                ));
            }
        }
        Ok(())
    }

    fn validate_metrics(&self) -> Result<(), PolicyError> {
        const B: &str = "post_traffic";
        at_most(
            &format!("{B}.metrics"),
            "metrics",
            self.metrics.len(),
            MAX_METRICS,
        )?;
        let mut names = HashSet::new();
        for (i, m) in self.metrics.iter().enumerate() {
            let path = format!("{B}.metrics[{i}]");
            unique_name(&path, "metric", &m.name, &mut names)?;
            for (field, value) in [("namespace", &m.namespace), ("metric_name", &m.metric_name)] {
                if value.trim().is_empty() || value.len() > 255 {
                    return Err(PolicyError::invalid(
                        format!("{path}.{field}"),
                        "must be 1-255 characters",
                    ));
                }
            }
            if m.dimensions.len() > MAX_DIMENSIONS {
                return Err(PolicyError::invalid(
                    format!("{path}.dimensions"),
                    format!("at most {MAX_DIMENSIONS} dimensions"),
                ));
            }
            if !is_valid_statistic(&m.statistic) {
                return Err(PolicyError::invalid(
                    format!("{path}.statistic"),
                    format!(
                        "{:?} is not Sum, Average, Minimum, Maximum, SampleCount or a percentile p0-p100",
                        m.statistic
                    ),
                ));
            }
            if !m.threshold.is_finite() {
                return Err(PolicyError::invalid(
                    format!("{path}.threshold"),
                    "must be a finite number",
                ));
            }
        }
        Ok(())
    }

    fn validate_probes(&self) -> Result<(), PolicyError> {
        const B: &str = "post_traffic.probes";
        at_most(B, "probes", self.probes.len(), MAX_PROBES)?;
        let mut names = HashSet::new();
        for (i, p) in self.probes.iter().enumerate() {
            let path = format!("{B}[{i}]");
            unique_name(&path, "probe", &p.name, &mut names)?;
            p.validate_request(&path)?;
            p.validate_expectations(&path)?;
        }
        Ok(())
    }

    /// The longest the bake may last with every extension, seconds.
    pub fn max_bake_seconds(&self) -> f64 {
        let extend = if self.on_no_data == OnNoData::Extend {
            self.max_extend_minutes
        } else {
            0.0
        };
        (self.bake_minutes + extend) * 60.0 + self.ingestion_delay_seconds as f64
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;
    use serde_json::json;

    use super::*;

    fn post(section: serde_json::Value) -> Result<PostTrafficPolicy, String> {
        Policy::parse(&json!({"post_traffic": section}).to_string())
            .map(|p| p.post_traffic.unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn empty_section_has_defaults() {
        let p = post(json!({})).unwrap();
        assert_eq!(p, PostTrafficPolicy::default());
        assert_eq!(p.on_no_data, OnNoData::Pass);
        assert_eq!(p.bake.max_error_rate, Some(0.05));
        assert_eq!(p.max_bake_seconds(), 360.0);
    }

    #[test]
    fn full_section_parses() {
        let p = post(json!({
            "bake_minutes": 0.5, "poll_seconds": 5, "period_seconds": 1, "min_invocations": 50,
            "on_no_data": "extend", "max_extend_minutes": 2, "alpha": 0.01,
            "canary": {"max_error_rate_increase": 0.02, "max_latency_increase_pct": 10,
                       "min_invocations": 30, "min_periods": 5},
            "bake": {"max_error_rate": 0.1, "max_p99_ms": 800, "max_throttles": 0},
            "alarms": ["orders-5xx"],
            "metrics": [{"name": "failed-orders", "namespace": "Orders", "metric_name": "Failed",
                         "dimensions": {"Service": "orders"}, "statistic": "p99",
                         "comparison": "GreaterThanThreshold", "threshold": 3}]
        }))
        .unwrap();
        assert_eq!(p.on_no_data, OnNoData::Extend);
        // The bake and its extension, and the ingestion delay the last round waits out.
        assert_eq!(p.max_bake_seconds(), 150.0 + 60.0);
        assert_eq!(p.metrics[0].comparison, Comparison::GreaterThanThreshold);
        assert_eq!(p.bake.max_p99_ms, Some(800.0));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"bake_minutes": 46}),
                "post_traffic.bake_minutes: must be between 0 and 45",
            ),
            (
                json!({"bake_minutes": 30, "max_extend_minutes": 20}),
                "post_traffic.max_extend_minutes: bake_minutes + max_extend_minutes",
            ),
            (
                json!({"poll_seconds": 0}),
                "post_traffic.poll_seconds: must be between 1 and 300",
            ),
            (
                json!({"period_seconds": 90}),
                "post_traffic.period_seconds: must be 1, 5, 10, 30",
            ),
            (json!({"alpha": 0.9}), "post_traffic.alpha: must be between"),
            (
                json!({"on_no_data": "maybe"}),
                "post_traffic.on_no_data: unknown variant `maybe`",
            ),
            (
                json!({"canary": {"max_error_rate_increase": 2}}),
                "post_traffic.canary.max_error_rate_increase",
            ),
            (
                json!({"canary": {"min_periods": 0}}),
                "post_traffic.canary.min_periods",
            ),
            (
                json!({"canary": {"tolerance": 1}}),
                "post_traffic.canary.tolerance: unknown field `tolerance`",
            ),
            (
                json!({"bake": {"max_error_rate": null}}),
                "post_traffic.bake.max_error_rate: invalid type: null",
            ),
            (
                json!({"bake": {"max_p99_ms": 0}}),
                "post_traffic.bake.max_p99_ms",
            ),
            (
                json!({"bake": []}),
                "post_traffic.bake: invalid type: array",
            ),
            (
                json!({"alarms": ["a", "a"]}),
                "post_traffic.alarms[1]: duplicate alarm",
            ),
            (json!({"alarms": [""]}), "post_traffic.alarms[0]"),
            (
                json!({"metrics": [{"name": "x y", "namespace": "n", "metric_name": "m", "statistic": "Sum", "comparison": "GreaterThanThreshold", "threshold": 1}]}),
                "post_traffic.metrics[0].name",
            ),
            (
                json!({"metrics": [{"name": "x", "namespace": "n", "metric_name": "m", "statistic": "p101", "comparison": "GreaterThanThreshold", "threshold": 1}]}),
                "post_traffic.metrics[0].statistic",
            ),
            (
                json!({"metrics": [{"name": "x", "namespace": "n", "metric_name": "m", "statistic": "Sum", "comparison": "Above", "threshold": 1}]}),
                "post_traffic.metrics[0].comparison: unknown variant `Above`",
            ),
            (
                json!({"metrics": [{"name": "x", "namespace": "n", "metric_name": "m", "statistic": "Sum", "comparison": "GreaterThanThreshold"}]}),
                "post_traffic.metrics[0]: missing field `threshold`",
            ),
            (
                json!({"surprise": 1}),
                "post_traffic.surprise: unknown field `surprise`",
            ),
            (json!([]), "post_traffic: invalid type: array"),
            (
                json!({"probes": [{"name": "p", "url": "ftp://x"}]}),
                "post_traffic.probes[0].url",
            ),
            (
                // A multi-byte character across the scheme's length is refused, not a panic.
                json!({"probes": [{"name": "p", "url": "http:/\u{e9}/x"}]}),
                "post_traffic.probes[0].url",
            ),
            (
                json!({"probes": [{"name": "p", "url": "https://x", "method": "get"}]}),
                "post_traffic.probes[0].method",
            ),
            (
                json!({"probes": [{"name": "p", "url": "https://x"}, {"name": "p", "url": "https://y"}]}),
                "post_traffic.probes[1].name: duplicate probe name",
            ),
            (
                json!({"probes": [{"name": "p", "url": "https://x", "expect_status": [99]}]}),
                "post_traffic.probes[0].expect_status",
            ),
            (
                json!({"probes": [{"name": "p", "url": "https://x", "count": 0}]}),
                "post_traffic.probes[0].count: must be between 1 and 20",
            ),
            (
                json!({"probes": [{"name": "p", "url": "https://x", "timeout_ms": 1000, "max_latency_ms": 2000}]}),
                "post_traffic.probes[0].max_latency_ms",
            ),
            (
                json!({"probes": [{"name": "p", "url": "https://x", "headers": {"a b": "1"}}]}),
                "post_traffic.probes[0].headers",
            ),
            (
                json!({"probes": [{"name": "p", "url": "https://x", "headers": {"x": "1\r\nHost: evil"}}]}),
                "post_traffic.probes[0].headers.x: must not contain line breaks",
            ),
            (
                json!({"probes": [{"name": "p", "url": "https://x", "status": 200}]}),
                "post_traffic.probes[0].status: unknown field `status`",
            ),
            (
                json!({"probes": [{"name": "p"}]}),
                "post_traffic.probes[0]: missing field `url`",
            ),
            (
                json!({"probes": {"name": "p"}}),
                "post_traffic.probes: invalid type: map",
            ),
        ];
        for (section, expected) in cases {
            let e = post(section.clone()).unwrap_err();
            assert!(e.starts_with(expected), "{section}: {e}");
        }
    }

    #[test]
    fn periods_and_statistics() {
        for ok in [1, 5, 10, 30, 60, 120, 3600] {
            assert!(is_valid_period(ok), "{ok}");
        }
        for bad in [0, 2, 59, 61, 7200] {
            assert!(!is_valid_period(bad), "{bad}");
        }
        for ok in ["Sum", "p99", "p99.9", "p0", "p100", "p100.0", "SampleCount"] {
            assert!(is_valid_statistic(ok), "{ok}");
        }
        for bad in [
            "sum", "p", "p-1", "tm99", "", "p1e1", "p+5", "p100.5", "p101", "p099", "p99.", "p.5",
            "pNaN", "pinf",
        ] {
            assert!(!is_valid_statistic(bad), "{bad}");
        }
        assert!(Comparison::GreaterThanOrEqualToThreshold.breached(1.0, 1.0));
        assert!(!Comparison::GreaterThanThreshold.breached(1.0, 1.0));
        assert!(Comparison::LessThanThreshold.breached(0.5, 1.0));
        assert!(Comparison::LessThanOrEqualToThreshold.breached(1.0, 1.0));
    }
}
