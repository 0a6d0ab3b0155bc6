//! The judge at a step: the new version against the old one over the step's hold, on
//! their own metrics (`ExecutedVersion`) while traffic is split, with the post-traffic
//! policy's comparisons and limits (the same statistics as the post-traffic hook's
//! canary), and the alarms the policy names.

use super::decide::RolloutState;
use crate::appspec::LambdaTarget;
use crate::decision::{CheckResult, Outcome};
use crate::error::Result;
use crate::policy::post_traffic::PostTrafficPolicy;
use crate::ports::DeploymentInfo;
use crate::post_traffic::decide::{self, LatencyBins};
use crate::post_traffic::{
    Metrics, Span, bin_queries, latency_bins, round_queries, version_window,
};
use serde_json::json;

/// The rollout as the post-traffic queries name a deployment.
pub fn as_deployment(state: &RolloutState) -> DeploymentInfo {
    DeploymentInfo {
        deployment_id: state.id.clone(),
        application: "rollgate-rollout".into(),
        deployment_group: state.alias.clone(),
        status: "InProgress".into(),
        target: LambdaTarget {
            function_name: state.function.clone(),
            function_ref: state.function.clone(),
            alias: state.alias.clone(),
            current_version: state.from_version.clone(),
            target_version: state.to_version.clone(),
            hooks: Vec::new(),
        },
    }
}

/// What is judged: the release (old and new version), from when, and what the evidence
/// says about where the judgement stands (a rollout's step, a deployment's round).
pub struct Split<'a> {
    pub info: &'a DeploymentInfo,
    pub since_ms: i64,
    pub about: serde_json::Value,
}

/// Every check of one step's judgement, the evidence last. A read that fails is a Fail
/// (closed): the step is not passed on data nobody saw.
pub async fn judge<M: Metrics>(
    metrics: &M,
    state: &RolloutState,
    policy: &PostTrafficPolicy,
    now_ms: i64,
) -> Vec<CheckResult> {
    let info = as_deployment(state);
    let split = Split {
        info: &info,
        since_ms: state.step_started_ms,
        about: json!({"step": state.step + 1, "weight": state.weight()}),
    };
    judge_split(metrics, &split, policy, now_ms).await
}

/// [`judge`] of any split: the new version against the old since `since_ms`.
pub async fn judge_split<M: Metrics>(
    metrics: &M,
    split: &Split<'_>,
    policy: &PostTrafficPolicy,
    now_ms: i64,
) -> Vec<CheckResult> {
    match read(metrics, split, policy, now_ms).await {
        Ok(checks) => checks,
        Err(e) => vec![
            CheckResult::fail("metrics", json!("GetMetricData answers"), json!(null))
                .with_detail(e.to_string()),
        ],
    }
}

async fn read<M: Metrics>(
    metrics: &M,
    split: &Split<'_>,
    policy: &PostTrafficPolicy,
    now_ms: i64,
) -> Result<Vec<CheckResult>> {
    let info = split.info;
    let period = policy.period_seconds;
    let p = i64::from(period);
    let start_s = (split.since_ms / 1000).div_euclid(p) * p;
    let end_s = (now_ms / 1000 + 1).max(start_s + 1);
    let span = Span {
        starts_from_ms: split.since_ms + (policy.canary.warmup_seconds * 1000) as i64,
        ends_after_ms: i64::MIN,
        ends_by_ms: now_ms - (policy.ingestion_delay_seconds * 1000) as i64,
    };
    let data = metrics
        .metric_data(&round_queries(info, policy), start_s, end_s)
        .await?;
    let old = version_window(&data, "old", span, period);
    let new = version_window(&data, "new", span, period);
    let edges = decide::latency_edges(&old);
    let mut bins: Option<LatencyBins> = None;
    if !edges.is_empty() {
        let counts = metrics
            .metric_data(&bin_queries(info, policy, &edges), start_s, end_s)
            .await?;
        let (read, not_finite) = latency_bins(&counts, &edges, span, period);
        bins = (!not_finite).then_some(read);
    }
    let mut checks = decide::canary_checks(policy, &old, &new, bins.as_ref());
    checks.extend(decide::bake_checks(policy, &new));
    checks.push(traffic(policy, new.invocations));
    if !policy.alarms.is_empty() {
        let found = metrics.alarms(&policy.alarms).await?;
        checks.extend(decide::alarm_checks(&policy.alarms, &found));
    }
    checks.push(CheckResult::pass(
        "rollout.evidence",
        json!({"judged": split.about, "period_seconds": period}),
        json!({"from_ms": span.starts_from_ms, "to_ms": span.ends_by_ms,
               "new_version": new, "old_version": old, "latency_bins": bins}),
    ));
    Ok(checks)
}

/// Whether the new version served enough requests in the step to judge it.
fn traffic(policy: &PostTrafficPolicy, invocations: f64) -> CheckResult {
    let need = policy.canary.min_invocations as f64;
    let outcome = if invocations >= need {
        Outcome::Pass
    } else {
        Outcome::Inconclusive
    };
    CheckResult::new(
        "rollout.traffic",
        outcome,
        json!({"min_invocations": need}),
        json!({"invocations": invocations}),
    )
}
