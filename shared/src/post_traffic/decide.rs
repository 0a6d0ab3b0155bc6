//! The post-traffic decision table, as pure functions over already-fetched metrics.
//!
//! | check | window | Pass | Fail | Inconclusive |
//! |---|---|---|---|---|
//! | `canary.error_rate` | canary | the data show the new rate within `ratio x old + increase` | they show it beyond | neither yet, or a version < `canary.min_invocations` |
//! | `canary.latency` | canary | the data show the new requests, divided by `1 + pct/100`, no slower than the old ones | they show them slower | neither yet, too few requests or periods |
//! | `bake.error_rate` | bake | the exact interval of the new rate is within `bake.max_error_rate` | above it | it straddles it, or no invocations |
//! | `bake.p99` | bake | the interval of the share slower than `bake.max_p99_ms` is within 1% | above 1% | it straddles 1%, or no data |
//! | `bake.throttles` | bake | sum <= `bake.max_throttles` | above it | - |
//! | `alarm[<name>]` | now | OK | ALARM, or no such alarm | INSUFFICIENT_DATA |
//! | `metric[<name>]` | bake | condition not met | condition met | no data |
//! | `bake.traffic` | bake, at its end | enough invocations and no judgement inconclusive | otherwise, with `on_no_data: fail` (or `extend` at its cap) | - |
//!
//! Windows count only periods that ended `ingestion_delay_seconds` ago; the canary
//! window leaves out the new version's first `canary.warmup_seconds`. An Inconclusive
//! judgement never fails a deployment by itself: at the bake's end, `bake.traffic` decides
//! it by `on_no_data`. Any Fail fails it, and mid-bake ends the bake early.

use super::policy::{CustomMetric, OnNoData, PostTrafficPolicy};
use super::stats::{self, ErrorMargin, Finding};
use crate::decision::{CheckResult, Outcome};
use crate::rollback::ledger::{ShiftJudgement, ShiftVerdict};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One version's metrics over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionWindow {
    pub invocations: f64,
    pub errors: f64,
    pub throttles: f64,
    /// Requests with a Duration (its SampleCount).
    #[serde(default)]
    pub durations: f64,
    /// Requests slower than `bake.max_p99_ms` (a trimmed count), when the policy sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_limit: Option<f64>,
    /// Per-period Duration percentiles (periods with data only), milliseconds, by
    /// percentile (10, 25, 50, 75, 90, 95, 99).
    #[serde(default)]
    pub percentiles: Vec<(u8, Vec<f64>)>,
    /// Whether any value read was not a finite number.
    #[serde(default)]
    pub not_finite: bool,
}

/// The percentiles read per period for each version: the canary's latency bins are cut
/// at the old version's (medians over the window's periods).
pub const PERCENTILES: [u8; 7] = [10, 25, 50, 75, 90, 95, 99];

impl VersionWindow {
    pub fn error_rate(&self) -> Option<f64> {
        (self.invocations > 0.0).then(|| (self.errors / self.invocations).clamp(0.0, 1.0))
    }

    /// The per-period values of percentile `p`.
    pub fn percentile(&self, p: u8) -> &[f64] {
        self.percentiles
            .iter()
            .find(|(q, _)| *q == p)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// Periods with Duration data.
    pub fn periods(&self) -> usize {
        self.percentile(50).len()
    }

    fn summary(&self) -> serde_json::Value {
        json!({
            "invocations": self.invocations,
            "errors": self.errors,
            "throttles": self.throttles,
            "error_rate": self.error_rate(),
            "periods": self.periods(),
            "p50_median_ms": stats::median(self.percentile(50)),
            "p90_median_ms": stats::median(self.percentile(90)),
            "p99_median_ms": stats::median(self.percentile(99)),
        })
    }
}

/// Latency bin edges from the old version's canary window: the medians over its periods
/// of each per-period percentile, increasing, finite and positive. Empty when the old
/// version has no Duration data.
pub fn latency_edges(old: &VersionWindow) -> Vec<f64> {
    let mut edges: Vec<f64> = PERCENTILES
        .iter()
        .filter_map(|p| stats::median(old.percentile(*p)))
        .filter(|e| e.is_finite() && *e > 0.0)
        .collect();
    edges.sort_by(f64::total_cmp);
    edges.dedup();
    edges
}

/// Request counts per latency bin over the canary window: the old version's bins are cut
/// at `edges`, the new version's at `edges x (1 + tolerance)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyBins {
    pub edges_ms: Vec<f64>,
    pub old: Vec<f64>,
    pub new: Vec<f64>,
}

fn outcome(f: Finding) -> Outcome {
    match f {
        Finding::Pass => Outcome::Pass,
        Finding::Fail => Outcome::Fail,
        Finding::Inconclusive => Outcome::Inconclusive,
    }
}

/// New against old over the canary window: errors, and latency when the bins were read.
pub fn canary_checks(
    policy: &PostTrafficPolicy,
    old: &VersionWindow,
    new: &VersionWindow,
    bins: Option<&LatencyBins>,
) -> Vec<CheckResult> {
    let c = &policy.canary;
    let margin = ErrorMargin {
        ratio: c.max_error_rate_ratio,
        increase: c.max_error_rate_increase,
    };
    let finite = !(old.not_finite || new.not_finite);
    let mut errors = stats::error_rates(
        (old.errors, old.invocations),
        (new.errors, new.invocations),
        margin,
        policy.alpha,
        c.min_invocations as f64,
    );
    if !finite {
        errors.finding = Finding::Inconclusive;
        errors.why = "CloudWatch returned a value that is not a finite number".into();
    }
    vec![
        CheckResult::new(
            "canary.error_rate",
            outcome(errors.finding),
            json!({"max_error_rate_ratio": c.max_error_rate_ratio,
                   "max_error_rate_increase": c.max_error_rate_increase, "alpha": policy.alpha,
                   "min_invocations": c.min_invocations, "test": errors.method}),
            json!({"old": old.summary(), "new": new.summary(), "test": errors}),
        )
        .with_detail(errors.why.clone()),
        latency_check(policy, old, new, bins, finite),
    ]
}

fn latency_check(
    policy: &PostTrafficPolicy,
    old: &VersionWindow,
    new: &VersionWindow,
    bins: Option<&LatencyBins>,
    finite: bool,
) -> CheckResult {
    let c = &policy.canary;
    let expected = json!({"max_latency_increase_pct": c.max_latency_increase_pct,
        "alpha": policy.alpha, "min_invocations": c.min_invocations, "min_periods": c.min_periods,
        "test": "Mann-Whitney on request counts per latency bin, new divided by 1 + pct/100"});
    let inconclusive = |why: String, actual: serde_json::Value| {
        CheckResult::new(
            "canary.latency",
            Outcome::Inconclusive,
            expected.clone(),
            actual,
        )
        .with_detail(why)
    };
    let periods = json!({"old_periods": old.periods(), "new_periods": new.periods()});
    if old.periods() < c.min_periods || new.periods() < c.min_periods {
        return inconclusive(
            format!(
                "too few periods with latency data (old {}, new {}; at least {} each)",
                old.periods(),
                new.periods(),
                c.min_periods
            ),
            periods,
        );
    }
    let Some(bins) = bins.filter(|b| !b.edges_ms.is_empty()) else {
        return inconclusive(
            "no latency bins could be read for the canary window".into(),
            periods,
        );
    };
    let mut test = stats::slower_share(
        &bins.old,
        &bins.new,
        c.max_latency_increase_pct,
        policy.alpha,
        c.min_invocations as f64,
    );
    if !finite {
        test.finding = Finding::Inconclusive;
        test.why = "CloudWatch returned a value that is not a finite number".into();
    }
    let ratios: serde_json::Value = [50u8, 90, 99]
        .iter()
        .map(|p| {
            let ratio = stats::median(new.percentile(*p))
                .zip(stats::median(old.percentile(*p)))
                .map(|(n, o)| n / o)
                .filter(|r| r.is_finite());
            (format!("p{p}_ratio"), json!(ratio))
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    CheckResult::new(
        "canary.latency",
        outcome(test.finding),
        expected,
        json!({"old": old.summary(), "new": new.summary(), "edges_ms": bins.edges_ms,
               "median_period_ratios": ratios, "test": test}),
    )
    .with_detail(test.why.clone())
}

/// The new version against the policy's absolute limits over the bake window.
pub fn bake_checks(policy: &PostTrafficPolicy, new: &VersionWindow) -> Vec<CheckResult> {
    let b = &policy.bake;
    let mut out = Vec::new();
    let judged = |name: &str, expected: serde_json::Value, test: stats::LimitTest| {
        CheckResult::new(name, outcome(test.finding), expected, json!(test))
            .with_detail(test.why.clone())
    };
    if let Some(max) = b.max_error_rate {
        let test =
            stats::share_within(new.errors, new.invocations, max, policy.alpha, "error rate");
        out.push(judged(
            "bake.error_rate",
            json!({"max_error_rate": max, "alpha": policy.alpha}),
            test,
        ));
    }
    if let Some(max) = b.max_p99_ms {
        let what = format!("share of requests slower than {max} ms");
        let test = match new.over_limit {
            Some(over) => stats::share_within(over, new.durations, 0.01, policy.alpha, &what),
            None => stats::share_within(0.0, 0.0, 0.01, policy.alpha, &what),
        };
        out.push(judged(
            "bake.p99",
            json!({"max_p99_ms": max, "max_share_slower": 0.01, "alpha": policy.alpha}),
            test,
        ));
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
    if new.not_finite {
        for check in &mut out {
            if check.outcome != Outcome::Fail {
                check.outcome = Outcome::Inconclusive;
                check.detail =
                    Some("CloudWatch returned a value that is not a finite number".into());
            }
        }
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

/// What the lack (or presence) of traffic, or of conclusive judgements, at the end of
/// the bake means.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    Decided(Box<CheckResult>),
    /// `on_no_data: extend` and the cap is not reached: keep baking.
    Extend,
}

/// `elapsed_extension_s`: how far past the planned bake end we already are;
/// `inconclusive`: the judgements the data could not decide.
pub fn traffic_check(
    policy: &PostTrafficPolicy,
    new_invocations: f64,
    inconclusive: &[String],
    elapsed_extension_s: f64,
    cap_reached: bool,
) -> Traffic {
    let expected =
        json!({"min_invocations": policy.min_invocations, "on_no_data": policy.on_no_data});
    let actual = json!({"invocations": new_invocations, "extended_s": elapsed_extension_s,
                        "inconclusive": inconclusive});
    let short_of_traffic = new_invocations < policy.min_invocations as f64;
    if !short_of_traffic && inconclusive.is_empty() {
        return Traffic::Decided(Box::new(CheckResult::pass(
            "bake.traffic",
            expected,
            actual,
        )));
    }
    let short = if short_of_traffic {
        format!(
            "{new_invocations} invocations of the new version in the bake window, fewer than {}",
            policy.min_invocations
        )
    } else {
        format!("the data could not decide {}", inconclusive.join(", "))
    };
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

/// What the judge found during the deployment's traffic shift (the rollout function's
/// `shift#` rows), as one check of this gate: a failed round fails it (its stop did not
/// end the deployment), rounds that only passed or could not decide are carried as
/// evidence. `None` when the shift was never judged (no rounds, or the alias was never
/// seen split).
pub fn shift_check(rounds: &[ShiftJudgement]) -> Option<CheckResult> {
    let judged: Vec<&ShiftJudgement> = rounds.iter().filter(|r| r.verdict.is_some()).collect();
    let last = judged.last()?;
    let count = |v: ShiftVerdict| judged.iter().filter(|r| r.verdict == Some(v)).count();
    let expected = json!("no round of the judge during the traffic shift failed");
    if let Some(failed) = judged
        .iter()
        .find(|r| r.verdict == Some(ShiftVerdict::Fail))
    {
        let detail = format!(
            "the judge failed the new version at round {} of the traffic shift ({:.0}% of traffic; {}), and the deployment went on (stop: {})",
            failed.round,
            failed.weight.unwrap_or(0.0) * 100.0,
            failed.failed.join(", "),
            failed.stop.as_deref().unwrap_or("none")
        );
        return Some(CheckResult::fail(SHIFT_CHECK, expected, json!(failed)).with_detail(detail));
    }
    let (pass, undecided, unread) = (
        count(ShiftVerdict::Pass),
        count(ShiftVerdict::Inconclusive),
        count(ShiftVerdict::Unread),
    );
    let outcome = if pass > 0 {
        Outcome::Pass
    } else {
        Outcome::Inconclusive
    };
    let actual = json!({"rounds": judged.len(), "pass": pass, "inconclusive": undecided,
                        "unread": unread, "last": last});
    Some(
        CheckResult::new(SHIFT_CHECK, outcome, expected, actual).with_detail(format!(
            "judged {} time(s) during the traffic shift: {pass} passed, {undecided} undecided, {unread} unread",
            judged.len()
        )),
    )
}

/// The check of this gate that carries the judgements of the traffic shift.
pub const SHIFT_CHECK: &str = "shift.judgements";

/// The judgements the data could not decide: the canary's and the bake's limits.
pub fn undecided(checks: &[CheckResult]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.outcome == Outcome::Inconclusive)
        .filter(|c| c.name.starts_with("canary.") || c.name.starts_with("bake."))
        .map(|c| c.name.clone())
        .collect()
}

/// Whether a mid-bake round may stop the bake early with these checks: any Fail, except
/// a probe that tolerates some failures (its share is judged over the whole bake).
pub fn fails_early(policy: &PostTrafficPolicy, checks: &[CheckResult]) -> bool {
    checks.iter().any(|c| {
        let tolerant_probe = policy
            .probes
            .iter()
            .any(|p| p.max_failure_rate > 0.0 && c.name == format!("probe[{}]", p.name));
        c.outcome == Outcome::Fail && !tolerant_probe
    })
}

#[cfg(test)]
mod tests {
    use super::super::policy::{Comparison, CustomMetric, OnNoData, PostTrafficPolicy};
    use super::*;

    fn round(n: u32, verdict: Option<ShiftVerdict>) -> ShiftJudgement {
        ShiftJudgement {
            verdict,
            ..ShiftJudgement::new(1_000 * i64::from(n), n, verdict.map(|_| 0.1))
        }
    }

    #[test]
    fn a_shift_never_judged_adds_no_check() {
        assert_eq!(shift_check(&[]), None);
        // Rounds that found the alias not split judged nothing.
        assert_eq!(shift_check(&[round(1, None), round(2, None)]), None);
    }

    #[test]
    fn a_failed_round_of_the_shift_fails_the_gate_and_names_it() {
        let mut failed = round(3, Some(ShiftVerdict::Fail));
        failed.failed = vec!["canary.latency".into()];
        failed.stop = Some("failed: AccessDenied".into());
        let rounds = [
            round(1, Some(ShiftVerdict::Pass)),
            failed,
            round(4, Some(ShiftVerdict::Pass)),
        ];
        let check = shift_check(&rounds).unwrap();
        assert_eq!(
            (check.name.as_str(), check.outcome),
            (SHIFT_CHECK, Outcome::Fail)
        );
        let detail = check.detail.unwrap();
        assert!(
            detail.contains("round 3") && detail.contains("10%"),
            "{detail}"
        );
        assert!(
            detail.contains("canary.latency") && detail.contains("AccessDenied"),
            "{detail}"
        );
    }

    #[test]
    fn rounds_that_passed_or_could_not_decide_are_evidence_only() {
        let rounds = [
            round(1, None),
            round(2, Some(ShiftVerdict::Unread)),
            round(3, Some(ShiftVerdict::Inconclusive)),
            round(4, Some(ShiftVerdict::Pass)),
        ];
        let check = shift_check(&rounds).unwrap();
        assert_eq!(check.outcome, Outcome::Pass);
        assert_eq!(check.actual["rounds"], 3);
        assert_eq!(check.actual["last"]["round"], 4);
        assert_eq!(
            (
                check.actual["unread"].clone(),
                check.actual["inconclusive"].clone()
            ),
            (json!(1), json!(1))
        );
        // Nothing passed: undecided, which fails nothing and extends no bake.
        let check = shift_check(&rounds[..3]).unwrap();
        assert_eq!(check.outcome, Outcome::Inconclusive);
        assert!(undecided(std::slice::from_ref(&check)).is_empty());
    }

    fn policy() -> PostTrafficPolicy {
        let mut p = PostTrafficPolicy::default();
        p.canary.min_invocations = 20;
        p.canary.min_periods = 4;
        p.bake.max_p99_ms = Some(500.0);
        p.bake.max_throttles = Some(0);
        p
    }

    /// Six periods whose latency percentiles scale with `base_ms` (log-normal shape).
    fn window(invocations: f64, errors: f64, base_ms: f64) -> VersionWindow {
        let factor = [0.6, 0.8, 1.0, 1.25, 1.6, 1.9, 2.8];
        VersionWindow {
            invocations,
            errors,
            durations: invocations,
            percentiles: PERCENTILES
                .iter()
                .zip(factor)
                .map(|(p, f)| (*p, vec![base_ms * f; 6]))
                .collect(),
            ..Default::default()
        }
    }

    fn bins(old: &[f64], new: &[f64]) -> LatencyBins {
        LatencyBins {
            edges_ms: (1..old.len()).map(|i| 50.0 * i as f64).collect(),
            old: old.to_vec(),
            new: new.to_vec(),
        }
    }

    fn outcomes(checks: &[CheckResult]) -> Vec<(String, Outcome)> {
        checks.iter().map(|c| (c.name.clone(), c.outcome)).collect()
    }

    const OLD: [f64; 4] = [150.0, 150.0, 150.0, 50.0];
    const SAME: [f64; 4] = [50.0, 30.0, 18.0, 2.0];
    const SLOWER: [f64; 4] = [2.0, 8.0, 30.0, 60.0];

    #[test]
    fn healthy_canary_passes() {
        let c = canary_checks(
            &policy(),
            &window(50_000.0, 50.0, 100.0),
            &window(10_000.0, 5.0, 100.0),
            Some(&bins(&OLD, &SAME)),
        );
        assert_eq!(
            outcomes(&c),
            vec![
                ("canary.error_rate".into(), Outcome::Pass),
                ("canary.latency".into(), Outcome::Pass)
            ],
            "{c:#?}"
        );
        assert_eq!(c[0].actual["new"]["invocations"], 10_000.0);
        assert!(
            c[1].actual["test"]["slower_probability_interval"][1]
                .as_f64()
                .unwrap()
                < 0.5
        );
    }

    #[test]
    fn error_regression_fails_the_canary() {
        let c = canary_checks(
            &policy(),
            &window(500.0, 1.0, 100.0),
            &window(100.0, 30.0, 100.0),
            Some(&bins(&OLD, &SAME)),
        );
        assert_eq!(c[0].outcome, Outcome::Fail, "{:?}", c[0]);
        assert!(c[0].actual["test"]["p_worse"].as_f64().unwrap() < 0.05);
    }

    #[test]
    fn latency_regression_fails_the_canary() {
        let c = canary_checks(
            &policy(),
            &window(500.0, 0.0, 100.0),
            &window(100.0, 0.0, 300.0),
            Some(&bins(&OLD, &SLOWER)),
        );
        assert_eq!(c[1].outcome, Outcome::Fail, "{:?}", c[1]);
        assert_eq!(c[1].actual["test"]["method"], "normal (tie-corrected)");
        assert_eq!(c[1].actual["median_period_ratios"]["p50_ratio"], 3.0);
    }

    #[test]
    fn errors_only_on_the_old_version_pass() {
        let c = canary_checks(
            &policy(),
            &window(500.0, 200.0, 100.0),
            &window(100.0, 0.0, 100.0),
            Some(&bins(&OLD, &SAME)),
        );
        assert_eq!(c[0].outcome, Outcome::Pass, "{c:?}");
    }

    #[test]
    fn empty_sparse_and_one_sided_canaries_are_inconclusive() {
        // Empty: an AllAtOnce deployment has no canary window at all.
        let c = canary_checks(
            &policy(),
            &VersionWindow::default(),
            &VersionWindow::default(),
            None,
        );
        assert!(c.iter().all(|c| c.outcome == Outcome::Inconclusive));
        // Sparse: a few invocations.
        let c = canary_checks(
            &policy(),
            &window(5.0, 0.0, 100.0),
            &window(3.0, 3.0, 900.0),
            Some(&bins(&[2.0, 2.0, 1.0, 0.0], &[0.0, 0.0, 0.0, 3.0])),
        );
        assert!(
            c.iter().all(|c| c.outcome == Outcome::Inconclusive),
            "{c:?}"
        );
        // One-sided: only the new version has data.
        let c = canary_checks(
            &policy(),
            &VersionWindow::default(),
            &window(100.0, 50.0, 300.0),
            None,
        );
        assert!(c.iter().all(|c| c.outcome == Outcome::Inconclusive));
    }

    #[test]
    fn values_that_are_not_finite_make_the_canary_inconclusive_never_pass() {
        let mut new = window(500.0, 0.0, 100.0);
        new.not_finite = true;
        let c = canary_checks(
            &policy(),
            &window(5000.0, 5.0, 100.0),
            &new,
            Some(&bins(&OLD, &SAME)),
        );
        assert!(
            c.iter().all(|c| c.outcome == Outcome::Inconclusive),
            "{c:?}"
        );
        let b = bake_checks(&policy(), &new);
        assert!(
            b.iter().all(|c| c.outcome == Outcome::Inconclusive),
            "{b:?}"
        );
    }

    #[test]
    fn latency_edges_are_the_old_versions_median_percentiles() {
        let edges = latency_edges(&window(100.0, 0.0, 100.0));
        assert_eq!(edges, vec![60.0, 80.0, 100.0, 125.0, 160.0, 190.0, 280.0]);
        assert!(latency_edges(&VersionWindow::default()).is_empty());
    }

    #[test]
    fn bake_limits() {
        let p = policy();
        let clean = VersionWindow {
            over_limit: Some(0.0),
            ..window(1000.0, 1.0, 100.0)
        };
        let ok = bake_checks(&p, &clean);
        assert!(ok.iter().all(|c| c.outcome == Outcome::Pass), "{ok:#?}");
        assert_eq!(ok.len(), 3);
        let bad = VersionWindow {
            over_limit: Some(100.0),
            ..window(1000.0, 100.0, 100.0)
        };
        assert_eq!(
            outcomes(&bake_checks(&p, &bad)),
            vec![
                ("bake.error_rate".into(), Outcome::Fail),
                ("bake.p99".into(), Outcome::Fail),
                ("bake.throttles".into(), Outcome::Pass)
            ]
        );
        let throttled = VersionWindow {
            throttles: 3.0,
            ..clean.clone()
        };
        assert_eq!(bake_checks(&p, &throttled)[2].outcome, Outcome::Fail);
        // Little data: the interval straddles the limit, so the data cannot tell.
        let thin = VersionWindow {
            over_limit: Some(0.0),
            ..window(10.0, 1.0, 100.0)
        };
        let thin = bake_checks(&p, &thin);
        assert_eq!(thin[0].outcome, Outcome::Inconclusive, "{thin:#?}");
        assert_eq!(thin[1].outcome, Outcome::Inconclusive);
        // No data: nothing to judge, and not a failure by itself.
        let empty = bake_checks(&p, &VersionWindow::default());
        assert_eq!(empty[0].outcome, Outcome::Inconclusive);
        assert_eq!(empty[1].outcome, Outcome::Inconclusive);
        // Unset limits produce no check.
        let mut none = PostTrafficPolicy::default();
        none.bake.max_error_rate = None;
        assert!(bake_checks(&none, &window(1.0, 1.0, 100.0)).is_empty());
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
            matches!(traffic_check(&p, 10.0, &[], 0.0, false), Traffic::Decided(c) if c.outcome == Outcome::Pass && c.detail.is_none())
        );
        p.on_no_data = OnNoData::Pass;
        assert!(
            matches!(traffic_check(&p, 0.0, &[], 0.0, false), Traffic::Decided(c) if c.outcome == Outcome::Pass && c.detail.is_some())
        );
        p.on_no_data = OnNoData::Fail;
        assert!(
            matches!(traffic_check(&p, 9.0, &[], 0.0, false), Traffic::Decided(c) if c.outcome == Outcome::Fail)
        );
        p.on_no_data = OnNoData::Extend;
        p.max_extend_minutes = 1.0;
        assert_eq!(traffic_check(&p, 0.0, &[], 30.0, false), Traffic::Extend);
        assert!(
            matches!(traffic_check(&p, 0.0, &[], 60.0, false), Traffic::Decided(c) if c.outcome == Outcome::Fail)
        );
        assert!(
            matches!(traffic_check(&p, 50.0, &[], 60.0, false), Traffic::Decided(c) if c.outcome == Outcome::Pass)
        );
        // The overall cap ends an extension early, and the evidence stays a real number.
        match traffic_check(&p, 0.0, &[], 30.0, true) {
            Traffic::Decided(c) => {
                assert_eq!(c.outcome, Outcome::Fail);
                assert_eq!(c.actual["extended_s"], json!(30.0));
            }
            Traffic::Extend => panic!("extended past the cap"),
        }
    }

    #[test]
    fn undecided_judgements_follow_on_no_data_at_the_end() {
        let mut p = policy();
        let open = vec!["bake.p99".to_owned()];
        p.on_no_data = OnNoData::Fail;
        assert!(
            matches!(traffic_check(&p, 500.0, &open, 0.0, false), Traffic::Decided(c) if c.outcome == Outcome::Fail && c.detail.as_deref().unwrap().contains("bake.p99"))
        );
        p.on_no_data = OnNoData::Pass;
        assert!(
            matches!(traffic_check(&p, 500.0, &open, 0.0, false), Traffic::Decided(c) if c.outcome == Outcome::Pass)
        );
        p.on_no_data = OnNoData::Extend;
        assert_eq!(traffic_check(&p, 500.0, &open, 0.0, false), Traffic::Extend);
        let checks = vec![
            CheckResult::new(
                "canary.latency",
                Outcome::Inconclusive,
                json!(null),
                json!(null),
            ),
            CheckResult::new("alarm[x]", Outcome::Inconclusive, json!(null), json!(null)),
        ];
        assert_eq!(undecided(&checks), vec!["canary.latency".to_owned()]);
    }

    #[test]
    fn a_probe_fails_early_only_without_tolerance() {
        let mut p = policy();
        p.probes = serde_json::from_value(json!([
            {"name": "strict", "url": "https://x"},
            {"name": "lenient", "url": "https://y", "max_failure_rate": 0.1}
        ]))
        .unwrap();
        let failed = |name: &str| vec![CheckResult::fail(name, json!(null), json!(null))];
        assert!(fails_early(&p, &failed("probe[strict]")));
        assert!(!fails_early(&p, &failed("probe[lenient]")));
        let alarm = alarm_checks(&["x".into()], &[]);
        assert!(fails_early(&p, &alarm));
    }
}
