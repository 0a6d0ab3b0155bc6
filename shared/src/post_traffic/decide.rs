//! The post-traffic decision table, as pure functions over already-fetched series.
//!
//! | check | window | Pass | Fail | Inconclusive |
//! |---|---|---|---|---|
//! | `canary.error_rate` | canary | no significant increase beyond the tolerance | two-proportion p < alpha | either version < `canary.min_invocations` |
//! | `canary.latency_p99` | canary | no significant slowdown beyond the tolerance | Mann-Whitney p < alpha | either version < `canary.min_periods` periods |
//! | `bake.error_rate` | bake | rate <= `bake.max_error_rate` | rate above it | no invocations |
//! | `bake.p99` | bake | every period's p99 <= `bake.max_p99_ms` | a period above it | no Duration data |
//! | `bake.throttles` | bake | sum <= `bake.max_throttles` | above it | - |
//! | `alarm[<name>]` | now | OK | ALARM, or no such alarm | INSUFFICIENT_DATA |
//! | `metric[<name>]` | bake | condition not met | condition met | no data |
//! | `bake.traffic` | bake, at its end | >= `min_invocations` | fewer, `on_no_data: fail` (or `extend` at its cap) | - |
//!
//! Inconclusive never fails a deployment by itself: lack of traffic is decided once, by
//! `bake.traffic` and `on_no_data`. Any Fail fails it; mid-bake a Fail ends the bake
//! early, except a bake error rate seen on fewer than `min_invocations` invocations.

use super::policy::{CustomMetric, OnNoData, PostTrafficPolicy};
use super::stats::{self, Finding};
use crate::decision::{CheckResult, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One version's metrics over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionWindow {
    pub invocations: f64,
    pub errors: f64,
    pub throttles: f64,
    /// Per-period Duration percentiles (periods with data only), milliseconds.
    pub p50: Vec<f64>,
    pub p90: Vec<f64>,
    pub p99: Vec<f64>,
}

impl VersionWindow {
    pub fn error_rate(&self) -> Option<f64> {
        (self.invocations > 0.0).then(|| (self.errors / self.invocations).clamp(0.0, 1.0))
    }

    fn summary(&self) -> serde_json::Value {
        json!({
            "invocations": self.invocations,
            "errors": self.errors,
            "throttles": self.throttles,
            "error_rate": self.error_rate(),
            "periods": self.p99.len(),
            "p50_median_ms": stats::median(&self.p50),
            "p90_median_ms": stats::median(&self.p90),
            "p99_median_ms": stats::median(&self.p99),
        })
    }
}

fn outcome(f: Finding) -> Outcome {
    match f {
        Finding::Pass => Outcome::Pass,
        Finding::Fail => Outcome::Fail,
        Finding::Inconclusive => Outcome::Inconclusive,
    }
}

/// New against old over the canary window.
pub fn canary_checks(
    policy: &PostTrafficPolicy,
    old: &VersionWindow,
    new: &VersionWindow,
) -> Vec<CheckResult> {
    let c = &policy.canary;
    let errors = stats::two_proportion(
        (old.errors, old.invocations),
        (new.errors, new.invocations),
        c.max_error_rate_increase,
        policy.alpha,
        c.min_invocations as f64,
    );
    let latency = stats::mann_whitney(
        &old.p99,
        &new.p99,
        c.max_latency_increase_pct,
        policy.alpha,
        c.min_periods,
    );
    vec![
        CheckResult::new(
            "canary.error_rate",
            outcome(errors.finding),
            json!({"max_increase": c.max_error_rate_increase, "alpha": policy.alpha,
                   "min_invocations": c.min_invocations, "test": "two-proportion z (one-sided)"}),
            json!({"old": old.summary(), "new": new.summary(), "test": errors}),
        )
        .with_detail(errors.why.clone()),
        CheckResult::new(
            "canary.latency_p99",
            outcome(latency.finding),
            json!({"max_increase_pct": c.max_latency_increase_pct, "alpha": policy.alpha,
                   "min_periods": c.min_periods, "test": "Mann-Whitney U on per-period p99 (one-sided)"}),
            json!({"old_p99_ms": old.p99, "new_p99_ms": new.p99, "test": latency}),
        )
        .with_detail(latency.why.clone()),
    ]
}

/// The new version against the policy's absolute limits over the bake window.
pub fn bake_checks(policy: &PostTrafficPolicy, new: &VersionWindow) -> Vec<CheckResult> {
    let b = &policy.bake;
    let mut out = Vec::new();
    if let Some(max) = b.max_error_rate {
        let expected = json!({"max_error_rate": max});
        let actual = json!({"errors": new.errors, "invocations": new.invocations, "error_rate": new.error_rate()});
        out.push(match new.error_rate() {
            None => CheckResult::new("bake.error_rate", Outcome::Inconclusive, expected, actual)
                .with_detail("no invocations of the new version in the bake window yet"),
            Some(rate) if rate > max => CheckResult::fail("bake.error_rate", expected, actual)
                .with_detail(format!("error rate {rate:.4} is above {max}")),
            Some(_) => CheckResult::pass("bake.error_rate", expected, actual),
        });
    }
    if let Some(max) = b.max_p99_ms {
        let expected = json!({"max_p99_ms": max, "rule": "every period"});
        let worst = new
            .p99
            .iter()
            .copied()
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let actual =
            json!({"worst_period_p99_ms": worst, "periods": new.p99.len(), "p99_ms": new.p99});
        out.push(match worst {
            None => CheckResult::new("bake.p99", Outcome::Inconclusive, expected, actual)
                .with_detail("no Duration data for the new version in the bake window yet"),
            Some(w) if w > max => CheckResult::fail("bake.p99", expected, actual)
                .with_detail(format!("a period's p99 of {w} ms is above {max} ms")),
            Some(_) => CheckResult::pass("bake.p99", expected, actual),
        });
    }
    if let Some(max) = b.max_throttles {
        let expected = json!({"max_throttles": max});
        let actual = json!({"throttles": new.throttles});
        out.push(if new.throttles > max as f64 {
            CheckResult::fail("bake.throttles", expected, actual)
                .with_detail(format!("{} throttles, more than {max}", new.throttles))
        } else {
            CheckResult::pass("bake.throttles", expected, actual)
        });
    }
    out
}

/// An alarm's state as DescribeAlarms reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmState {
    pub name: String,
    pub state: String,
    pub reason: Option<String>,
}

pub fn alarm_checks(names: &[String], found: &[AlarmState]) -> Vec<CheckResult> {
    names
        .iter()
        .map(|name| {
            let check = format!("alarm[{name}]");
            let expected = json!({"state": "OK"});
            match found.iter().find(|a| &a.name == name) {
                None => CheckResult::fail(check, expected, json!({"state": null}))
                    .with_detail(format!("alarm {name} does not exist (a policy naming it cannot be checked: failing closed)")),
                Some(a) => {
                    let actual = json!({"state": a.state, "reason": a.reason});
                    match a.state.as_str() {
                        "OK" => CheckResult::pass(check, expected, actual),
                        "ALARM" => CheckResult::fail(check, expected, actual)
                            .with_detail(format!("alarm {name} is in ALARM")),
                        _ => CheckResult::new(check, Outcome::Inconclusive, expected, actual)
                            .with_detail(format!("alarm {name} is {}", a.state)),
                    }
                }
            }
        })
        .collect()
}

/// Aggregate a custom metric's per-period values over the bake window by its statistic:
/// sums add up, averages average, everything else (min, max, percentiles) takes the
/// worst period in the direction the comparison fails.
pub fn custom_check(metric: &CustomMetric, values: &[f64]) -> CheckResult {
    use super::policy::Comparison::*;
    let name = format!("metric[{}]", metric.name);
    let expected = json!({"namespace": metric.namespace, "metric_name": metric.metric_name,
        "dimensions": metric.dimensions, "statistic": metric.statistic,
        "fails_when": format!("{:?}", metric.comparison), "threshold": metric.threshold});
    if values.is_empty() {
        return CheckResult::new(name, Outcome::Inconclusive, expected, json!({"periods": 0}))
            .with_detail("no data for this metric in the bake window yet");
    }
    let value = match metric.statistic.as_str() {
        "Sum" | "SampleCount" => values.iter().fold(0.0, |a, b| a + b),
        "Average" => values.iter().sum::<f64>() / values.len() as f64,
        _ => match metric.comparison {
            GreaterThanThreshold | GreaterThanOrEqualToThreshold => {
                values.iter().copied().fold(f64::MIN, f64::max)
            }
            LessThanThreshold | LessThanOrEqualToThreshold => {
                values.iter().copied().fold(f64::MAX, f64::min)
            }
        },
    };
    let actual = json!({"value": value, "periods": values.len()});
    if metric.comparison.breached(value, metric.threshold) {
        CheckResult::fail(name, expected, actual).with_detail(format!(
            "{} {} is {:?} {}",
            metric.metric_name, metric.statistic, metric.comparison, metric.threshold
        ))
    } else {
        CheckResult::pass(name, expected, actual)
    }
}

/// What the lack (or presence) of traffic at the end of the bake means.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    Decided(Box<CheckResult>),
    /// `on_no_data: extend` and the cap is not reached: keep baking.
    Extend,
}

/// `elapsed_extension_s`: how far past the planned bake end we already are.
pub fn traffic_check(
    policy: &PostTrafficPolicy,
    new_invocations: f64,
    elapsed_extension_s: f64,
    cap_reached: bool,
) -> Traffic {
    let expected =
        json!({"min_invocations": policy.min_invocations, "on_no_data": policy.on_no_data});
    let actual = json!({"invocations": new_invocations, "extended_s": elapsed_extension_s});
    if new_invocations >= policy.min_invocations as f64 {
        return Traffic::Decided(Box::new(CheckResult::pass(
            "bake.traffic",
            expected,
            actual,
        )));
    }
    let short = format!(
        "{new_invocations} invocations of the new version in the bake window, fewer than {}",
        policy.min_invocations
    );
    match policy.on_no_data {
        OnNoData::Pass => Traffic::Decided(Box::new(
            CheckResult::pass("bake.traffic", expected, actual)
                .with_detail(format!("{short}: passed because on_no_data is \"pass\"")),
        )),
        OnNoData::Fail => Traffic::Decided(Box::new(
            CheckResult::fail("bake.traffic", expected, actual)
                .with_detail(format!("{short}: on_no_data is \"fail\"")),
        )),
        OnNoData::Extend
            if !cap_reached && elapsed_extension_s < policy.max_extend_minutes * 60.0 =>
        {
            Traffic::Extend
        }
        OnNoData::Extend => Traffic::Decided(Box::new(
            CheckResult::fail("bake.traffic", expected, actual).with_detail(format!(
                "{short} even after extending the bake by {} minutes",
                policy.max_extend_minutes
            )),
        )),
    }
}

/// Whether a mid-bake round may stop the bake early with these checks. Not on a
/// bake error rate seen on fewer than `min_invocations` invocations, nor on a probe
/// that tolerates some failures (its share is judged over the whole bake).
pub fn fails_early(
    policy: &PostTrafficPolicy,
    checks: &[CheckResult],
    new_bake: &VersionWindow,
) -> bool {
    checks.iter().any(|c| {
        let tolerant_probe = policy
            .probes
            .iter()
            .any(|p| p.max_failure_rate > 0.0 && c.name == format!("probe[{}]", p.name));
        c.outcome == Outcome::Fail
            && !tolerant_probe
            && (c.name != "bake.error_rate"
                || new_bake.invocations >= policy.min_invocations as f64)
    })
}

#[cfg(test)]
mod tests {
    use super::super::policy::{Comparison, CustomMetric, OnNoData, PostTrafficPolicy};
    use super::*;

    fn policy() -> PostTrafficPolicy {
        let mut p = PostTrafficPolicy::default();
        p.canary.min_invocations = 20;
        p.canary.min_periods = 4;
        p.bake.max_p99_ms = Some(500.0);
        p.bake.max_throttles = Some(0);
        p
    }

    fn window(invocations: f64, errors: f64, p99: &[f64]) -> VersionWindow {
        VersionWindow {
            invocations,
            errors,
            throttles: 0.0,
            p50: p99.iter().map(|v| v / 2.0).collect(),
            p90: p99.to_vec(),
            p99: p99.to_vec(),
        }
    }

    fn outcomes(checks: &[CheckResult]) -> Vec<(String, Outcome)> {
        checks.iter().map(|c| (c.name.clone(), c.outcome)).collect()
    }

    const FAST: [f64; 6] = [100.0, 110.0, 95.0, 105.0, 98.0, 102.0];
    const SLOW: [f64; 6] = [400.0, 420.0, 390.0, 410.0, 405.0, 399.0];

    #[test]
    fn healthy_canary_passes() {
        let c = canary_checks(
            &policy(),
            &window(500.0, 2.0, &FAST),
            &window(60.0, 0.0, &FAST),
        );
        assert_eq!(
            outcomes(&c),
            vec![
                ("canary.error_rate".into(), Outcome::Pass),
                ("canary.latency_p99".into(), Outcome::Pass)
            ]
        );
        assert_eq!(c[0].actual["new"]["invocations"], 60.0);
    }

    #[test]
    fn error_regression_fails_the_canary() {
        let c = canary_checks(
            &policy(),
            &window(500.0, 1.0, &FAST),
            &window(100.0, 30.0, &FAST),
        );
        assert_eq!(c[0].outcome, Outcome::Fail, "{:?}", c[0]);
        assert!(c[0].actual["test"]["p_value"].as_f64().unwrap() < 0.05);
    }

    #[test]
    fn latency_regression_fails_the_canary() {
        let c = canary_checks(
            &policy(),
            &window(500.0, 0.0, &FAST),
            &window(100.0, 0.0, &SLOW),
        );
        assert_eq!(c[1].outcome, Outcome::Fail);
        assert_eq!(c[1].actual["test"]["method"], "exact");
    }

    #[test]
    fn errors_only_on_the_old_version_pass() {
        let c = canary_checks(
            &policy(),
            &window(500.0, 200.0, &SLOW),
            &window(100.0, 0.0, &FAST),
        );
        assert!(c.iter().all(|c| c.outcome == Outcome::Pass), "{c:?}");
    }

    #[test]
    fn empty_sparse_and_one_sided_canaries_are_inconclusive() {
        // Empty: an AllAtOnce deployment has no canary window at all.
        let c = canary_checks(
            &policy(),
            &VersionWindow::default(),
            &VersionWindow::default(),
        );
        assert!(c.iter().all(|c| c.outcome == Outcome::Inconclusive));
        // Sparse: a few invocations and periods.
        let c = canary_checks(
            &policy(),
            &window(5.0, 0.0, &[100.0]),
            &window(3.0, 3.0, &[900.0]),
        );
        assert!(
            c.iter().all(|c| c.outcome == Outcome::Inconclusive),
            "{c:?}"
        );
        // One-sided: only the new version has data.
        let c = canary_checks(
            &policy(),
            &VersionWindow::default(),
            &window(100.0, 50.0, &SLOW),
        );
        assert!(c.iter().all(|c| c.outcome == Outcome::Inconclusive));
    }

    #[test]
    fn bake_limits() {
        let p = policy();
        let ok = bake_checks(&p, &window(100.0, 1.0, &FAST));
        assert!(ok.iter().all(|c| c.outcome == Outcome::Pass), "{ok:?}");
        assert_eq!(ok.len(), 3);
        let bad = bake_checks(&p, &window(100.0, 10.0, &[100.0, 900.0]));
        assert_eq!(
            outcomes(&bad),
            vec![
                ("bake.error_rate".into(), Outcome::Fail),
                ("bake.p99".into(), Outcome::Fail),
                ("bake.throttles".into(), Outcome::Pass)
            ]
        );
        assert_eq!(bad[1].actual["worst_period_p99_ms"], 900.0);
        let throttled = VersionWindow {
            throttles: 3.0,
            ..window(100.0, 0.0, &FAST)
        };
        assert_eq!(bake_checks(&p, &throttled)[2].outcome, Outcome::Fail);
        // No data: nothing to judge, and not a failure by itself.
        let empty = bake_checks(&p, &VersionWindow::default());
        assert_eq!(empty[0].outcome, Outcome::Inconclusive);
        assert_eq!(empty[1].outcome, Outcome::Inconclusive);
        // Unset limits produce no check.
        let mut none = PostTrafficPolicy::default();
        none.bake.max_error_rate = None;
        assert!(bake_checks(&none, &window(1.0, 1.0, &[])).is_empty());
    }

    #[test]
    fn alarms() {
        let names = vec![
            "a".to_owned(),
            "b".to_owned(),
            "c".to_owned(),
            "gone".to_owned(),
        ];
        let found = [
            AlarmState {
                name: "a".into(),
                state: "OK".into(),
                reason: None,
            },
            AlarmState {
                name: "b".into(),
                state: "ALARM".into(),
                reason: Some("5xx".into()),
            },
            AlarmState {
                name: "c".into(),
                state: "INSUFFICIENT_DATA".into(),
                reason: None,
            },
        ];
        assert_eq!(
            outcomes(&alarm_checks(&names, &found)),
            vec![
                ("alarm[a]".into(), Outcome::Pass),
                ("alarm[b]".into(), Outcome::Fail),
                ("alarm[c]".into(), Outcome::Inconclusive),
                ("alarm[gone]".into(), Outcome::Fail),
            ]
        );
    }

    fn metric(statistic: &str, comparison: Comparison, threshold: f64) -> CustomMetric {
        CustomMetric {
            name: "m".into(),
            namespace: "App".into(),
            metric_name: "Failed".into(),
            dimensions: Default::default(),
            statistic: statistic.into(),
            comparison,
            threshold,
        }
    }

    #[test]
    fn custom_metrics() {
        let sum = metric("Sum", Comparison::GreaterThanThreshold, 5.0);
        assert_eq!(custom_check(&sum, &[1.0, 2.0]).outcome, Outcome::Pass);
        assert_eq!(custom_check(&sum, &[3.0, 3.0]).outcome, Outcome::Fail);
        assert_eq!(custom_check(&sum, &[]).outcome, Outcome::Inconclusive);
        let avg = metric("Average", Comparison::GreaterThanOrEqualToThreshold, 2.0);
        assert_eq!(custom_check(&avg, &[1.0, 2.0]).outcome, Outcome::Pass);
        let p99 = metric("p99", Comparison::GreaterThanThreshold, 100.0);
        assert_eq!(custom_check(&p99, &[50.0, 150.0]).outcome, Outcome::Fail);
        let low = metric("Minimum", Comparison::LessThanThreshold, 1.0);
        assert_eq!(custom_check(&low, &[5.0, 0.5]).outcome, Outcome::Fail);
        assert_eq!(custom_check(&low, &[5.0, 2.0]).outcome, Outcome::Pass);
    }

    #[test]
    fn no_traffic_follows_on_no_data() {
        let mut p = policy();
        p.min_invocations = 10;
        assert!(
            matches!(traffic_check(&p, 10.0, 0.0, false), Traffic::Decided(c) if c.outcome == Outcome::Pass && c.detail.is_none())
        );
        p.on_no_data = OnNoData::Pass;
        assert!(
            matches!(traffic_check(&p, 0.0, 0.0, false), Traffic::Decided(c) if c.outcome == Outcome::Pass && c.detail.is_some())
        );
        p.on_no_data = OnNoData::Fail;
        assert!(
            matches!(traffic_check(&p, 9.0, 0.0, false), Traffic::Decided(c) if c.outcome == Outcome::Fail)
        );
        p.on_no_data = OnNoData::Extend;
        p.max_extend_minutes = 1.0;
        assert_eq!(traffic_check(&p, 0.0, 30.0, false), Traffic::Extend);
        assert!(
            matches!(traffic_check(&p, 0.0, 60.0, false), Traffic::Decided(c) if c.outcome == Outcome::Fail)
        );
        assert!(
            matches!(traffic_check(&p, 50.0, 60.0, false), Traffic::Decided(c) if c.outcome == Outcome::Pass)
        );
        // The overall cap ends an extension early, and the evidence stays a real number.
        match traffic_check(&p, 0.0, 30.0, true) {
            Traffic::Decided(c) => {
                assert_eq!(c.outcome, Outcome::Fail);
                assert_eq!(c.actual["extended_s"], json!(30.0));
            }
            Traffic::Extend => panic!("extended past the cap"),
        }
    }

    #[test]
    fn a_probe_fails_early_only_without_tolerance() {
        let mut p = policy();
        p.probes = serde_json::from_value(json!([
            {"name": "strict", "url": "https://x"},
            {"name": "lenient", "url": "https://y", "max_failure_rate": 0.1}
        ]))
        .unwrap();
        let busy = window(100.0, 0.0, &FAST);
        let failed = |name: &str| vec![CheckResult::fail(name, json!(null), json!(null))];
        assert!(fails_early(&p, &failed("probe[strict]"), &busy));
        assert!(!fails_early(&p, &failed("probe[lenient]"), &busy));
    }

    #[test]
    fn early_failure_waits_for_enough_invocations_on_error_rate_only() {
        let p = policy();
        let first_error = window(2.0, 1.0, &FAST);
        let checks = bake_checks(&p, &first_error);
        assert_eq!(checks[0].outcome, Outcome::Fail);
        assert!(!fails_early(&p, &checks, &first_error));
        let many = window(100.0, 50.0, &FAST);
        assert!(fails_early(&p, &bake_checks(&p, &many), &many));
        let alarm = alarm_checks(&["x".into()], &[]);
        assert!(fails_early(&p, &alarm, &VersionWindow::default()));
    }
}
